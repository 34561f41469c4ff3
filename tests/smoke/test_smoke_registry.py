"""The in-cluster zot registry accepts a pushed OCI artifact and serves it back."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smoke_support import Cluster, team_identity
from net_support import free_port

pytestmark = pytest.mark.smoke


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


def _client(registry_address: str, identity: tuple[str, str]):  # noqa: ANN202 - oras.client.OrasClient
    import oras.client

    # zot authenticates with htpasswd, that is HTTP basic auth.
    client = oras.client.OrasClient(hostname=registry_address, insecure=True, auth_backend="basic")
    client.login(username=identity[0], password=identity[1], hostname=registry_address)
    return client


def test_a_team_pushes_under_its_own_path_and_reads_it_back(registry_address: str, blueprint, tmp_path: Path) -> None:
    team = blueprint.teams[0].name
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(os.urandom(1024 * 1024))
    pusher = _client(registry_address, team_identity(team, "push"))
    target = f"{registry_address}/{team}/smoke-model:v1"
    pusher.push(target=target, files=[str(artifact)], disable_path_validation=True)

    reader = _client(registry_address, team_identity(team, "pull"))
    assert "v1" in reader.get_tags(f"{registry_address}/{team}/smoke-model")
    pulled = reader.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert [Path(path).read_bytes() for path in pulled] == [artifact.read_bytes()]


def test_zot_refuses_a_push_outside_the_teams_path_and_any_push_by_a_pull_identity(
    registry_address: str, blueprint, tmp_path: Path
) -> None:
    first, second = blueprint.teams[0].name, blueprint.teams[1].name
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"not yours")
    for identity, target in ((team_identity(first, "push"), f"{second}/stolen:v1"),
                             (team_identity(first, "pull"), f"{first}/readonly:v1")):
        with pytest.raises(Exception, match="401|403|denied|unauthorized|Unauthorized|Forbidden"):
            _client(registry_address, identity).push(target=f"{registry_address}/{target}", files=[str(artifact)],
                                                     disable_path_validation=True)
