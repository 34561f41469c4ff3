"""The Pod Security Standards (baseline and restricted, as Kubernetes 1.31 enforces `latest`), pod by pod.

The rules follow kubernetes/pod-security-admission's policy checks (policy/check_*.go): each returns
what a pod breaks, worded like the admission message, so a finding reads like the rejection it predicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]
LEVELS = ("privileged", "baseline", "restricted")
ENFORCE = "pod-security.kubernetes.io/enforce"

_BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
_SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# The inline volume sources `restricted` allows, and nothing else (kubernetes/pod-security-admission
# policy/check_restrictedVolumes.go at v0.35.6, restrictedVolumes_1_0): csi volumes, the node model cache's
# among them, pass; hostPath and every other source do not.
_RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                                 "persistentVolumeClaim", "projected", "secret"})


def pod_templates(obj: Obj) -> Iterator[tuple[Obj, Obj]]:
    """(pod metadata, pod spec) of every pod an object runs: Pods, workload templates, CronJobs, Rollouts."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        yield obj.get("metadata") or {}, spec
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        yield template.get("metadata") or {}, template.get("spec") or {}
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController", "Rollout"):
        template = spec.get("template") or {}
        if template.get("spec"):
            yield template.get("metadata") or {}, template["spec"]


def _containers(spec: Obj) -> list[Obj]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
            *(spec.get("ephemeralContainers") or [])]


def _baseline(meta: Obj, spec: Obj) -> list[str]:
    broken = []
    pod_context = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            broken.append(f"{field}=true")
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        broken.append("hostProcess")
    host_paths = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        broken.append(f"hostPath volumes {host_paths}")
    if (pod_context.get("seccompProfile") or {}).get("type") == "Unconfined":
        broken.append("pod seccompProfile Unconfined")
    selinux = pod_context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in _SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        broken.append("pod seLinuxOptions")
    unsafe = [s.get("name") for s in pod_context.get("sysctls") or [] if s.get("name") not in _SAFE_SYSCTLS]
    if unsafe:
        broken.append(f"unsafe sysctls {unsafe}")
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                value == "runtime/default" or value.startswith("localhost/")):
            broken.append(f"AppArmor profile {value}")
    for container in _containers(spec):
        name, context = container.get("name"), container.get("securityContext") or {}
        if context.get("privileged"):
            broken.append(f"container {name} privileged")
        added = set((context.get("capabilities") or {}).get("add") or []) - _BASELINE_CAPABILITIES
        if added:
            broken.append(f"container {name} adds capabilities {sorted(added)}")
        ports = [p.get("hostPort") for p in container.get("ports") or [] if p.get("hostPort")]
        if ports:
            broken.append(f"container {name} hostPorts {ports}")
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
            broken.append(f"container {name} seccompProfile Unconfined")
        if context.get("procMount", "Default") != "Default":
            broken.append(f"container {name} procMount {context['procMount']}")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            broken.append(f"container {name} hostProcess")
        selinux = context.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in _SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            broken.append(f"container {name} seLinuxOptions")
        apparmor = (context.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            broken.append(f"container {name} appArmorProfile {apparmor}")
    return broken


def _restricted(spec: Obj) -> list[str]:
    broken = []
    pod_context = spec.get("securityContext") or {}
    volumes = [v.get("name") for v in spec.get("volumes") or []
               if not set(v) - {"name"} <= _RESTRICTED_VOLUMES]
    if volumes:
        broken.append(f"restricted volume types {volumes}")
    pod_non_root = pod_context.get("runAsNonRoot")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_context.get("runAsUser") == 0:
        broken.append("pod runAsUser=0")
    for container in _containers(spec):
        name, context = container.get("name"), container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            broken.append(f"container {name} allowPrivilegeEscalation != false")
        non_root = context.get("runAsNonRoot")
        if non_root is False or (non_root is None and pod_non_root is not True):
            broken.append(f"container {name} runAsNonRoot != true")
        if context.get("runAsUser") == 0:
            broken.append(f"container {name} runAsUser=0")
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost") and not (seccomp is None and pod_seccomp in
                                                                     ("RuntimeDefault", "Localhost")):
            broken.append(f"container {name} seccompProfile not RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            broken.append(f"container {name} does not drop ALL capabilities")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            broken.append(f"container {name} adds capabilities {sorted(added)}")
    return broken


def violations(meta: Obj, spec: Obj, level: str) -> list[str]:
    """What one pod breaks of a Pod Security level (nothing for privileged)."""
    if level == "privileged":
        return []
    broken = _baseline(meta, spec)
    return broken + _restricted(spec) if level == "restricted" else broken


def required_level(meta: Obj, spec: Obj) -> str:
    """The least Pod Security level that admits a pod."""
    return next(level for level in reversed(LEVELS) if not violations(meta, spec, level))
