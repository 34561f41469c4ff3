"""The node cache service against a real registry (Debian's docker-registry, htpasswd) on 127.0.0.1.

Two "pods" are two `shipway model pull --node-cache` processes, run at once, against one real
`shipway model cache-serve` process: the node downloads each blob from the registry once, a requester the
registry refuses gets nothing from the cache, and with the cache down the pull still works from the registry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import PASSWORD, USERNAME, Registry

from shipway.artifacts.layout import MARKER_FILE, PASSWORD_ENV, USERNAME_ENV

READY_TIMEOUT_S = 20.0
PULL_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    src = Path(__file__).resolve().parents[3] / "src"
    return {**os.environ, "PYTHONPATH": str(src), USERNAME_ENV: username, PASSWORD_ENV: password,
            "SHIPWAY_PLAIN_HTTP": "1", "NO_COLOR": "1", "COLUMNS": "200"}


@dataclass
class CacheProcess:
    url: str
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, int]:
        return dict(requests.get(f"{self.url}/stats", timeout=5).json())


@pytest.fixture
def node_cache(auth_registry: Registry, tmp_path: Path) -> Iterator[CacheProcess]:
    """One `shipway model cache-serve` for the registry, on a free port, stopped at the end."""
    port = _free_port()
    log = (tmp_path / "cache-serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shipway", "model", "cache-serve", "--dir", str(tmp_path / "node-cache"),
         "--registry", auth_registry.host, "--plain-http", "--max-size", "1Gi", "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=_env("", ""))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cache-serve did not start: {(tmp_path / 'cache-serve.log').read_text()}")
            time.sleep(0.1)
        yield CacheProcess(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _push(registry: Registry, tmp_path: Path) -> tuple[str, list[dict]]:
    """Push a model with a 24 MiB weights layer; its reference and the manifest's blobs."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.yaml").write_text("name: iris\nteam: ml\nversion: 1.0.0\nruntime: sklearn\n")
    (model / "weights.bin").write_bytes(os.urandom(24 * 2**20))
    ref = registry.ref("ml/iris", "1.0.0")
    subprocess.run([sys.executable, "-m", "shipway", "model", "push", str(model), ref], env=_env(),
                   check=True, capture_output=True, timeout=PULL_TIMEOUT_S)
    manifest = requests.get(f"http://{registry.host}/v2/ml/iris/manifests/1.0.0", auth=(USERNAME, PASSWORD),
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10).json()
    return ref, [manifest["config"], *manifest["layers"]]


def _pull(ref: str, destination: Path, node_cache_url: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shipway", "model", "pull", ref, str(destination), "--node-cache", node_cache_url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(**env))


def _finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=PULL_TIMEOUT_S)
    assert process.returncode == 0, output
    return output


def test_two_pods_on_a_node_download_each_blob_from_the_registry_once(auth_registry, node_cache, tmp_path) -> None:
    ref, blobs = _push(auth_registry, tmp_path)
    pods = [_pull(ref, tmp_path / f"pod-{n}" / "model", node_cache.url) for n in (1, 2)]
    outputs = [_finish(pod) for pod in pods]
    # Every byte came through the cache, none from the registry, in both pods.
    for output in outputs:
        assert " 0 B from the registry" in output, output
        assert "note" not in output, output
    stats = node_cache.stats()
    assert stats["downloads"] == len(blobs), stats
    assert stats["served"] == 2 * len(blobs), stats
    weights = [(tmp_path / f"pod-{n}" / "model" / "weights.bin").read_bytes() for n in (1, 2)]
    assert weights[0] == weights[1] == (tmp_path / "model" / "weights.bin").read_bytes()
    # A third pod later finds every blob on the node.
    _finish(_pull(ref, tmp_path / "pod-3" / "model", node_cache.url))
    assert node_cache.stats()["downloads"] == len(blobs)
    assert json.loads((tmp_path / "pod-3" / "model" / MARKER_FILE).read_text())["reference"] == ref


def test_a_requester_the_registry_refuses_gets_nothing_from_the_cache(auth_registry, node_cache, tmp_path) -> None:
    ref, blobs = _push(auth_registry, tmp_path)
    _finish(_pull(ref, tmp_path / "pod-1" / "model", node_cache.url))
    assert node_cache.stats()["downloads"] == len(blobs)
    weights = max(blobs, key=lambda blob: blob["size"])
    url = f"{node_cache.url}/v2/{auth_registry.host}/ml/iris/blobs/{weights['digest']}"
    # The blob is on the node, and its owner gets it ...
    allowed = requests.get(url, auth=(USERNAME, PASSWORD), timeout=30)
    assert allowed.status_code == 200 and len(allowed.content) == weights["size"]
    served = node_cache.stats()["served"]
    # ... but wrong credentials, none, or a repository the registry does not hold it in, get no byte of it.
    wrong = requests.get(url, auth=(USERNAME, "not the password"), timeout=30)
    assert wrong.status_code == 403 and weights["digest"] not in wrong.text and len(wrong.content) < 1024
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    other_repository = requests.get(url.replace("/ml/iris/", "/ml/other/"), auth=(USERNAME, PASSWORD), timeout=30)
    assert other_repository.status_code == 404
    other_registry = requests.get(url.replace(auth_registry.host, "registry.example.com"),
                                  auth=(USERNAME, PASSWORD), timeout=30)
    assert other_registry.status_code == 404
    assert node_cache.stats()["served"] == served
    # A pull with wrong credentials fails as it would against the registry, and writes nothing.
    refused = _pull(ref, tmp_path / "intruder" / "model", node_cache.url, password="not the password")
    output, _ = refused.communicate(timeout=PULL_TIMEOUT_S)
    assert refused.returncode != 0, output
    assert not (tmp_path / "intruder" / "model").exists()
    assert node_cache.stats()["served"] == served


def test_with_the_cache_down_a_pull_still_works_from_the_registry(auth_registry, node_cache, tmp_path) -> None:
    ref, blobs = _push(auth_registry, tmp_path)
    node_cache.process.terminate()
    node_cache.process.wait(timeout=10)
    output = _finish(_pull(ref, tmp_path / "pod-1" / "model", node_cache.url))
    assert "the node cache at" in output and "unreachable" in output, output
    assert " 0 B from the node cache" in output, output
    weights = (tmp_path / "pod-1" / "model" / "weights.bin").read_bytes()
    assert weights == (tmp_path / "model" / "weights.bin").read_bytes()
