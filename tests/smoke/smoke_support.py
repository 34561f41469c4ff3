"""What the smoke fixtures and tests share: tool probes, setup commands, polling, the cluster handle."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
BLUEPRINT = REPO / "blueprints" / "kind-dev.yaml"
STACK = "dev"


def _blueprint_facts() -> dict[str, str]:
    """Cluster name, kubeconfig context and images, from the blueprint the dev stack deploys."""
    from shipway.render.cluster import cluster_facts
    from shipway.spec import load_blueprint

    return cluster_facts(load_blueprint(BLUEPRINT))


# One source of truth: the names come from the blueprint, as `shipway cluster-info` prints them for the workflow.
FACTS = _blueprint_facts()
CLUSTER_NAME = FACTS["cluster_name"]
CONTEXT = FACTS["kube_context"]
PROVISIONED = os.environ.get("SHIPWAY_SMOKE_PROVISIONED") == "1"

T = TypeVar("T")

# How each tool proves that it works, not only that its binary exists.
TOOL_PROBES: dict[str, list[str]] = {
    "docker": ["docker", "info", "--format", "{{.ServerVersion}}"],
    "kind": ["kind", "version"],
    "kubectl": ["kubectl", "version", "--client"],
    "pulumi": ["pulumi", "version"],
}


def tools_needed() -> list[str]:
    """The tools this session needs: all four, or only kubectl once the workflow provisioned."""
    return ["kubectl"] if PROVISIONED else ["docker", "kind", "kubectl", "pulumi"]


def tool_problem(tool: str) -> str | None:
    """Why the tool cannot be used here, or None when it works."""
    if shutil.which(tool) is None:
        return f"{tool} (not on PATH)"
    probe = TOOL_PROBES[tool]
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"{tool} (`{' '.join(probe[:2])}` timed out)"
    # An engine-less docker client prints empty fields and exits 0 on some versions.
    if run.returncode != 0 or (tool == "docker" and not run.stdout.strip()):
        message = next((line for line in (run.stderr + run.stdout).splitlines() if line.strip()), "")
        return f"{tool} (`{' '.join(probe[:2])}` failed: {message.strip()})"
    return None


def run(command: list[str], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a setup command; fail with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 3) -> T:
    """Poll until check returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last seen: {last!r})")


@dataclass(frozen=True)
class Cluster:
    """A reachable kind cluster with the dev stack deployed on it."""

    name: str
    context: str
    kubeconfig: Path

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster."""
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def testinfra_spec(self, pod: str, namespace: str, container: str | None = None) -> str:
        """A pytest-testinfra kubectl:// host spec for a pod of this cluster."""
        spec = f"kubectl://{pod}?namespace={namespace}&context={self.context}&kubeconfig={self.kubeconfig}"
        return spec + (f"&container={container}" if container else "")


def kubeconfig_path() -> Path:
    """The kubeconfig kind writes to and kubectl reads."""
    configured = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(configured) if configured else Path.home() / ".kube" / "config"


def create_or_reuse_kind_cluster(tmp: Path) -> None:
    """Create the smoke cluster from the blueprint's kind config, unless it exists already."""
    clusters = run(["kind", "get", "clusters"], timeout=60).stdout.split()
    if CLUSTER_NAME in clusters:
        return
    config = tmp / "kind.yaml"
    run(["shipway", "kind-config", str(BLUEPRINT), "-o", str(config)], timeout=120)
    # The config names the cluster (kind-config writes the blueprint's name), so no --name is given.
    run(["kind", "create", "cluster", "--config", str(config), "--wait", "180s"], timeout=900)


def pulumi_up(tmp: Path, context: str) -> None:
    """Deploy the dev stack on a local file backend, as the workflow does."""
    backend = Path(os.environ.get("SHIPWAY_SMOKE_PULUMI_BACKEND", tmp / "pulumi-state"))
    backend.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "shipway-smoke"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    run(["pulumi", "stack", "select", "--create", STACK], cwd=REPO, env=env, timeout=120)
    # The dev stack deploys through the current kubeconfig context, which kind set.
    run(["kubectl", "config", "use-context", context], timeout=30)
    run(["pulumi", "up", "--yes", "--skip-preview", "-s", STACK], cwd=REPO, env=env, timeout=1800)


TEAM_CREDENTIALS_ENV = "SHIPWAY_SMOKE_REGISTRY_TEAMS"


def team_identity(team: str, kind: str) -> tuple[str, str]:
    """A team's registry identity (kind: pull or push), from the dev stack's registryTeamCredentials output.

    The workflow puts the output in SHIPWAY_SMOKE_REGISTRY_TEAMS; a local run reads it from the stack.
    The platform's admin identity is used by nobody, the smoke tests included.
    """
    import json

    text = os.environ.get(TEAM_CREDENTIALS_ENV)
    if not text:
        if shutil.which("pulumi") is None:
            pytest.fail(f"set {TEAM_CREDENTIALS_ENV} to `pulumi stack output registryTeamCredentials --show-secrets "
                        f"--json -s {STACK}`")
        text = run(["pulumi", "stack", "output", "registryTeamCredentials", "--show-secrets", "--json", "-s", STACK],
                   cwd=REPO, timeout=120).stdout
    identity = json.loads(text)[team][kind]
    return identity["username"], identity["password"]


PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
GPU = "nvidia.com/gpu"


def restricted_container(name: str, image: str, resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A container that team namespaces (Pod Security `restricted`) admit."""
    return {
        "name": name,
        "image": image,
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


def gpu_pod(name: str, namespace: str, gpus: int, tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    """A pause pod asking for whole GPUs; pause needs no GPU, only the scheduler's consent."""
    resources = {
        "requests": {"cpu": "10m", "memory": "16Mi", GPU: str(gpus)},
        "limits": {"cpu": "100m", "memory": "32Mi", GPU: str(gpus)},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "shipway-smoke"}},
        "spec": {
            "containers": [restricted_container("pause", PAUSE_IMAGE, resources)],
            "tolerations": tolerations,
            "restartPolicy": "Never",
        },
    }


def tolerations_for(taints: list[Any]) -> list[dict[str, Any]]:
    """Tolerations matching a pool's taints (spec Taint objects)."""
    return [{"key": taint.key, "operator": "Exists", "effect": taint.effect} for taint in taints]


class GatewayClient:
    """HTTPS to the shared Gateway through kind's port mapping on 127.0.0.1, with the route's host as SNI and
    Host header (what `curl --resolve <host>:<port>:127.0.0.1` does), trusting the platform's CA."""

    def __init__(self, host: str, port: int, ca_pem: str) -> None:
        self.host, self.port = host, port
        self.context = ssl.create_default_context(cadata=ca_pem)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=10)
        # Connect to 127.0.0.1 but verify and name the route's host, as a resolver entry would.
        connection.sock = self.context.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10),
                                                   server_hostname=self.host)
        try:
            connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()
