"""The node model cache: a DaemonSet owning a host folder per node, reached by model pods on their own node.

Model pods run under Pod Security `restricted`, which forbids host paths, so they never mount the cache:
their init container asks this service (`shipway model cache-serve`) for blobs, forwarding its registry
credentials, through a Service whose internalTrafficPolicy is Local, so a pod always reaches its own
node's cache. The cache checks every requester's access with the registry before serving a blob, and
serves only blobs whose digest it verified (shipway.artifacts.cache_service).
"""

from __future__ import annotations

from shipway.artifacts.layout import NODE_CACHE_PORT as PORT
from shipway.render import registry
from shipway.render.common import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    Obj,
    metadata,
    namespace,
    shipway_image,
)
from shipway.spec.blueprint import Blueprint, ZotRegistry

NAMESPACE = "shipway-cache"
NAME = "shipway-node-cache"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "node-cache"}
CACHE_MOUNT = "/cache"
USER = RESTRICTED_POD_SECURITY["runAsUser"]


def enabled(blueprint: Blueprint) -> bool:
    """Whether the blueprint runs the node cache."""
    return blueprint.registry.node_cache.enabled


def url() -> str:
    """Where a model pod's init container reaches its own node's cache."""
    return f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{PORT}"


def registry_host(blueprint: Blueprint) -> str:
    """The one registry host the cache serves blobs from: the one model references name."""
    return registry.url(blueprint).split("/")[0]


def daemon_set(blueprint: Blueprint) -> Obj:
    """One cache pod per node: non-root, read-only root, no capabilities, bounded; the host folder is its own."""
    cache = blueprint.registry.node_cache
    image = shipway_image(blueprint)
    args = ["model", "cache-serve", "--dir", CACHE_MOUNT, "--registry", registry_host(blueprint),
            "--max-size", cache.max_size, "--listen", f"0.0.0.0:{PORT}"]
    if isinstance(blueprint.registry, ZotRegistry):
        args.append("--plain-http")
    probe = {"httpGet": {"path": "/healthz", "port": "cache"}, "periodSeconds": 10}
    # The kubelet creates the host folder owned by root; this one step, as root with CHOWN alone, hands it to
    # the cache's user. Everything that serves runs as that user.
    prepare = {
        "name": "own-cache-folder", "image": image,
        "command": ["python", "-c", "import os, sys; os.chown(sys.argv[1], int(sys.argv[2]), int(sys.argv[2])); "
                    "os.chmod(sys.argv[1], 0o700)", CACHE_MOUNT, str(USER)],
        "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "cache", "mountPath": CACHE_MOUNT}],
    }
    serve = {
        "name": "cache", "image": image, "args": args,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "ports": [{"name": "cache", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe, "livenessProbe": {**probe, "failureThreshold": 6},
        "securityContext": dict(RESTRICTED_CONTAINER_SECURITY, capabilities={"drop": ["ALL"]}),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}},
        "volumeMounts": [{"name": "cache", "mountPath": CACHE_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_security = {key: value for key, value in RESTRICTED_POD_SECURITY.items() if key != "runAsNonRoot"}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata(NAME, NAMESPACE, LABELS),
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # Model pods run on every pool, tainted GPU pools included.
                    "tolerations": [{"operator": "Exists"}],
                    "securityContext": pod_security,
                    "initContainers": [prepare],
                    "containers": [serve],
                    "volumes": [
                        {"name": "cache", "hostPath": {"path": cache.path, "type": "DirectoryOrCreate"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def service() -> Obj:
    """The cache's Service: Local, so a pod's request never leaves its node."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(NAME, NAMESPACE, LABELS),
            "spec": {"selector": dict(LABELS), "internalTrafficPolicy": "Local",
                     "ports": [{"name": "cache", "port": PORT, "targetPort": "cache", "protocol": "TCP"}]}}


def render(blueprint: Blueprint) -> tuple[list[Obj], list[Obj]]:
    """The cache's namespace, and its DaemonSet and Service; nothing when the blueprint turns it off."""
    if not enabled(blueprint):
        return [], []
    return [namespace(NAMESPACE)], [daemon_set(blueprint), service()]
