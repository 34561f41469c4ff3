"""A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for artifact tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from net_support import free_port

REGISTRY_BINARY = "docker-registry"
READY_TIMEOUT_S = 15.0
USERNAME = "shipway"
PASSWORD = "correct horse battery staple"


def _htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry (distribution accepts only bcrypt), from the bcrypt package or htpasswd."""
    try:
        import bcrypt
    except ImportError:
        tool = shutil.which("htpasswd")
        if tool is None:
            pytest.skip("needs the `bcrypt` Python package or `htpasswd` (apt: apache2-utils) for registry auth")
        result = subprocess.run([tool, "-nbB", username, password], capture_output=True, text=True, check=True)
        return result.stdout.strip()
    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


@dataclass
class Registry:
    """One registry process with its storage, restartable on the same port and storage."""

    binary: str
    workdir: Path
    port: int
    with_auth: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    username: str = USERNAME
    password: str = PASSWORD

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def ref(self, repository: str, tag: str) -> str:
        return f"oci://{self.host}/{repository}:{tag}"

    def _write_config(self) -> Path:
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            # A fixed secret keeps upload-session tokens valid across a restart.
            "  secret: shipway-test-secret",
        ]
        if self.with_auth:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(_htpasswd_line(USERNAME, PASSWORD) + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: shipway-test", f"    path: {htpasswd}"]
        config = self.workdir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        config = self._write_config()
        log = (self.workdir / "registry.log").open("ab")
        self.process = subprocess.Popen([self.binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.workdir / 'registry.log').read_text()[-2000:]}")
            try:
                if requests.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry not ready on {self.host} within {READY_TIMEOUT_S} s")

    def kill(self) -> None:
        """Stop abruptly, as a crash would, and wait until the port is free."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def blobs_served(self) -> list[str]:
        """The digests of the blobs the registry sent (GET, 200), in order, from its access log (written at
        every log level)."""
        log = (self.workdir / "registry.log").read_text(errors="replace")
        return re.findall(r'"GET /v2/\S+/blobs/(sha256:[0-9a-f]{64}) HTTP/[\d.]+" 200 ', log)

    def stored_blob_bytes(self) -> int:
        """Bytes of blob data on disk, to show what a push really stored."""
        blobs = self.storage / "docker" / "registry" / "v2" / "blobs"
        return sum(path.stat().st_size for path in blobs.rglob("data")) if blobs.exists() else 0


def _registry(tmp_path: Path, with_auth: bool) -> Iterator[Registry]:
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        pytest.skip(f"needs `{REGISTRY_BINARY}` (apt: docker-registry)")
    workdir = tmp_path / ("registry-auth" if with_auth else "registry")
    workdir.mkdir()
    server = Registry(binary, workdir, free_port(), with_auth)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        # Blob storage can hold gigabytes; pytest would otherwise keep it in its last three tmp dirs.
        shutil.rmtree(server.storage, ignore_errors=True)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry without auth."""
    yield from _registry(tmp_path, with_auth=False)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry that wants USERNAME and PASSWORD (htpasswd, bcrypt)."""
    yield from _registry(tmp_path, with_auth=True)


def _write_random(path: Path, size: int, seed: int) -> Path:
    """Seeded pseudo-random bytes, written in 16 MiB blocks so memory stays flat."""
    rng = np.random.default_rng(seed)
    block = 16 * 1024 * 1024
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        remaining = size
        while remaining:
            count = min(block, remaining)
            sink.write(rng.bytes(count))
            remaining -= count
    return path


@pytest.fixture
def random_file() -> Callable[[Path, int, int], Path]:
    """Write `size` seeded random bytes to a path; tests delete big ones themselves."""
    return _write_random


@pytest.fixture
def hostile() -> Iterator[tuple[object, object]]:
    """A fake registry and a second server (blob storage, another origin) on 127.0.0.1, both recording requests."""
    from hostile_registry import FakeRegistry, serve

    registry_server, storage_server = FakeRegistry(credentials=(USERNAME, PASSWORD)), FakeRegistry()
    running = serve(registry_server, storage_server)
    next(running)
    try:
        yield registry_server, storage_server
    finally:
        running.close()
