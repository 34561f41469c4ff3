"""The preflight checks, each run on a testinfra host and reported as one CheckResult."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from shipway.doctor.requirements import (
    CONTEXT_TIMEOUT_SECONDS,
    DEFAULT_DOCKER_ROOT,
    GIB,
    MIN_DISK_FREE_BYTES,
    MIN_MEMORY_BYTES,
    TOOLS,
    ToolRequirement,
)

# A version as tools print it: `v1.32.4-dispatcher`, `28.2.2,`, `v3.16.2+g13654a5`.
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?[^\s,]*")


class Status(StrEnum):
    """The outcome of one check."""

    OK = "ok"
    MISSING = "missing"
    TOO_OLD = "too-old"
    FAIL = "fail"
    SKIPPED = "skipped"


_BLOCKING = frozenset({Status.MISSING, Status.TOO_OLD, Status.FAIL})


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    name: str
    status: Status
    found: str
    required: str
    fix: str
    needed: bool
    detail: str = ""

    @property
    def blocking(self) -> bool:
        """True when this check is needed and did not pass."""
        return self.needed and self.status in _BLOCKING


@dataclass(frozen=True)
class Target:
    """What the machine is being prepared for, as far as the blueprint says."""

    cluster_kind: str | None = None
    context: str | None = None
    kind_cluster: str | None = None

    @property
    def uses_kind(self) -> bool:
        """Without a blueprint, assume the local kind-dev platform."""
        return self.cluster_kind in (None, "kind")


@dataclass(frozen=True)
class Report:
    """Every check's result, in the order they ran."""

    target: Target
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when nothing needed is missing, too old or failing."""
        return not any(result.blocking for result in self.results)

    def by_name(self) -> dict[str, CheckResult]:
        """The results keyed by check name."""
        return {result.name: result for result in self.results}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for `--format json`."""
        return {
            "ok": self.ok,
            "target": asdict(self.target),
            "checks": [{**asdict(result), "blocking": result.blocking} for result in self.results],
        }


@dataclass(frozen=True)
class _Engine:
    """What a reachable Docker engine says about itself."""

    root_dir: str
    memory_bytes: int


def parse_version(text: str) -> tuple[tuple[int, int, int], str] | None:
    """The first version in a tool's output, as numbers and as printed."""
    match = _VERSION.search(text)
    if match is None:
        return None
    major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
    return (int(major), int(minor), int(patch)), match.group(0)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _version_output(tool: ToolRequirement, stdout: str) -> str:
    if tool.name != "kubectl":
        return stdout
    # kubectl's JSON separates the client's version from kustomize's.
    try:
        return str(json.loads(stdout)["clientVersion"]["gitVersion"])
    except (ValueError, KeyError, TypeError):
        return stdout


def check_tool(host: Any, tool: ToolRequirement, target: Target, system: str, arch: str) -> CheckResult:
    """Is the tool on PATH, does it run, and is it new enough."""
    needed = tool.needed and (target.uses_kind or not tool.kind_only)
    install = tool.install(system, arch)
    required = f">= {tool.minimum_text}"

    def result(status: Status, found: str = "", fix: str = "", detail: str = "") -> CheckResult:
        return CheckResult(tool.name, status, found, required, fix, needed, detail or tool.purpose)

    if not host.exists(tool.name):
        return result(Status.MISSING, fix=install, detail=f"not on PATH; {tool.purpose}")
    run = host.run(tool.version_command)
    if run.rc != 0:
        message = _first_line(run.stderr) or _first_line(run.stdout)
        return result(
            Status.FAIL,
            fix=f"reinstall {tool.name}: {install}",
            detail=f"`{tool.version_command}` exited {run.rc}: {message}",
        )
    parsed = parse_version(_version_output(tool, run.stdout))
    if parsed is None:
        return result(
            Status.FAIL,
            fix=f"reinstall {tool.name}: {install}",
            detail=f"no version in the output of `{tool.version_command}`",
        )
    numbers, printed = parsed
    if numbers < tool.minimum:
        return result(Status.TOO_OLD, found=printed, fix=f"upgrade {tool.name}: {install}")
    return result(Status.OK, found=printed)


def _engine(host: Any) -> tuple[_Engine | None, str]:
    run = host.run("docker info --format %s", "{{.DockerRootDir}}|{{.MemTotal}}")
    # With the engine down, `docker info --format` still exits 0 on some clients,
    # printing empty fields and the error on stderr.
    fields = run.stdout.strip().split("|")
    if run.rc == 0 and len(fields) == 2 and fields[0] and fields[1].isdigit():
        return _Engine(root_dir=fields[0], memory_bytes=int(fields[1])), ""
    return None, _first_line(run.stderr) or f"`docker info` exited {run.rc}"


def check_engine(host: Any, docker: CheckResult, target: Target, system: str) -> tuple[CheckResult, _Engine | None]:
    """Does the Docker client reach a running engine, as kind needs."""
    name, required = "docker engine", "running, reachable by this user"
    needed = target.uses_kind
    if docker.status in (Status.MISSING, Status.FAIL):
        return CheckResult(name, Status.SKIPPED, "", required, "", needed, f"docker is {docker.status.value}"), None
    engine, error = _engine(host)
    if engine is not None:
        return CheckResult(name, Status.OK, "running", required, "", needed, f"data in {engine.root_dir}"), engine
    if "permission denied" in error.lower():
        fix = "sudo usermod -aG docker $USER, then log out and in again"
    elif system == "darwin":
        fix = "start Docker Desktop (open -a Docker)"
    else:
        fix = "sudo systemctl start docker"
    return CheckResult(name, Status.FAIL, "not reachable", required, fix, needed, error), None


def check_context(host: Any, kubectl: CheckResult, target: Target) -> CheckResult:
    """Is the kube context the blueprint names in the kubeconfig, and does its API answer."""
    name = "kube context"
    if target.context is None:
        return CheckResult(name, Status.SKIPPED, "", "", "", False, "no blueprint names a kube context")
    required = f"{target.context} reachable"
    if kubectl.status in (Status.MISSING, Status.FAIL):
        return CheckResult(name, Status.SKIPPED, "", required, "", True, f"kubectl is {kubectl.status.value}")
    contexts = host.run("kubectl config get-contexts -o name").stdout.split()
    if target.kind_cluster is not None and target.context not in contexts:
        return CheckResult(
            name,
            Status.SKIPPED,
            "not created yet",
            required,
            "",
            False,
            f"kind creates it with the cluster: shipway kind-config BLUEPRINT -o kind.yaml && "
            f"kind create cluster --name {target.kind_cluster} --config kind.yaml",
        )
    if target.context not in contexts:
        return CheckResult(
            name,
            Status.FAIL,
            "",
            required,
            f"add the context to your kubeconfig, or point KUBECONFIG at the file that has it "
            f"(kubectl config get-contexts lists {len(contexts)})",
            True,
            f"context {target.context!r} is not in the kubeconfig",
        )
    run = host.run(
        "kubectl --context %s --request-timeout=%s cluster-info",
        target.context,
        f"{CONTEXT_TIMEOUT_SECONDS}s",
    )
    if run.rc != 0:
        return CheckResult(
            name,
            Status.FAIL,
            "unreachable",
            required,
            f"start the cluster or renew its credentials, then retry: kubectl --context {target.context} cluster-info",
            True,
            _first_line(run.stderr) or f"cluster-info exited {run.rc}",
        )
    return CheckResult(name, Status.OK, "reachable", required, "", True, _first_line(run.stdout))


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def _host_memory(host: Any, system: str) -> int | None:
    if system == "darwin":
        run = host.run("sysctl -n hw.memsize")
        return int(run.stdout.strip()) if run.rc == 0 and run.stdout.strip().isdigit() else None
    meminfo = host.file("/proc/meminfo")
    if not meminfo.exists:
        return None
    match = re.search(r"^MemTotal:\s+(\d+)\s+kB", meminfo.content_string, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def check_memory(host: Any, engine: _Engine | None, target: Target, system: str) -> CheckResult:
    """Is there memory enough for the kind nodes and the platform on them."""
    name, required = "memory", f">= {_gib(MIN_MEMORY_BYTES)}"
    if not target.uses_kind:
        why = f"the cluster is {target.cluster_kind}, not kind"
        return CheckResult(name, Status.SKIPPED, "", required, "", False, why)
    # Docker Desktop runs kind inside a VM, whose memory is what counts.
    memory, source = (engine.memory_bytes, "docker engine") if engine else (_host_memory(host, system), "host")
    if memory is None:
        return CheckResult(name, Status.FAIL, "", required, "", True, "could not read the memory size")
    if memory < MIN_MEMORY_BYTES:
        fix = (
            "raise Docker Desktop's memory limit (Settings > Resources)"
            if source == "docker engine" and system == "darwin"
            else "use a machine with more memory"
        )
        return CheckResult(name, Status.FAIL, _gib(memory), required, fix, True, f"total, as the {source} reports it")
    return CheckResult(name, Status.OK, _gib(memory), required, "", True, f"total, as the {source} reports it")


def _existing_ancestor(host: Any, path: str) -> str:
    current = PurePosixPath(path)
    while not host.file(str(current)).exists and current != current.parent:
        current = current.parent
    return str(current)


def check_disk(host: Any, engine: _Engine | None, target: Target) -> CheckResult:
    """Is there free disk enough where Docker keeps kind's node images and volumes."""
    name, required = "disk", f">= {_gib(MIN_DISK_FREE_BYTES)} free"
    if not target.uses_kind:
        why = f"the cluster is {target.cluster_kind}, not kind"
        return CheckResult(name, Status.SKIPPED, "", required, "", False, why)
    path = _existing_ancestor(host, engine.root_dir if engine else DEFAULT_DOCKER_ROOT)
    run = host.run("df -Pk %s", path)
    lines = run.stdout.strip().splitlines()
    fields = lines[-1].split() if run.rc == 0 and len(lines) >= 2 else []
    if len(fields) < 4 or not fields[3].isdigit():
        return CheckResult(name, Status.FAIL, "", required, "", True, f"could not read free space of {path}")
    free = int(fields[3]) * 1024
    if free < MIN_DISK_FREE_BYTES:
        fix = f"free space on {path}: docker system prune, or move Docker's data-root"
        return CheckResult(name, Status.FAIL, _gib(free), required, fix, True, f"free on {path}")
    return CheckResult(name, Status.OK, _gib(free), required, "", True, f"free on {path}")


def run_checks(host: Any, target: Target) -> Report:
    """Run every check on the host, for the given target."""
    system = host.system_info.type or "linux"
    arch = host.system_info.arch or "x86_64"
    results = {tool.name: check_tool(host, tool, target, system, arch) for tool in TOOLS}
    engine_result, engine = check_engine(host, results["docker"], target, system)
    ordered = [
        *results.values(),
        engine_result,
        check_context(host, results["kubectl"], target),
        check_memory(host, engine, target, system),
        check_disk(host, engine, target),
    ]
    return Report(target=target, results=tuple(ordered))
