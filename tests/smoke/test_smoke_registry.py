"""The in-cluster zot registry accepts a pushed OCI artifact and serves it back."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smoke_support import Cluster

pytestmark = pytest.mark.smoke


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def registry_address(cluster: Cluster) -> Iterator[str]:
    """zot's service forwarded to 127.0.0.1; the port-forward is stopped by PID afterwards."""
    from shipway.render import registry

    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "--context", cluster.context, "-n", registry.NAMESPACE, "port-forward",
         f"svc/{registry.RELEASE}", f"{port}:{registry.SERVICE_PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("kubectl port-forward to zot never opened its port")
        yield f"127.0.0.1:{port}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_zot_accepts_a_pushed_artifact(registry_address: str, tmp_path: Path) -> None:
    import oras.client

    user = os.environ.get("SHIPWAY_SMOKE_REGISTRY_USER")
    password = os.environ.get("SHIPWAY_SMOKE_REGISTRY_PASSWORD")
    if not (user and password):
        pytest.fail("set SHIPWAY_SMOKE_REGISTRY_USER and SHIPWAY_SMOKE_REGISTRY_PASSWORD from the dev stack's outputs")
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(os.urandom(1024 * 1024))
    # zot authenticates with htpasswd, that is HTTP basic auth.
    client = oras.client.OrasClient(hostname=registry_address, insecure=True, auth_backend="basic")
    client.login(username=user, password=password, hostname=registry_address)
    target = f"{registry_address}/smoke/model:v1"
    client.push(target=target, files=[str(artifact)], disable_path_validation=True)

    assert "v1" in client.get_tags(f"{registry_address}/smoke/model")
    pulled = client.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert [Path(path).read_bytes() for path in pulled] == [artifact.read_bytes()]
