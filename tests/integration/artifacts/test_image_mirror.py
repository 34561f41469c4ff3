"""`shipway images mirror` against real registries on 127.0.0.1: every digest kept, reruns send nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from shipway.artifacts.auth import Credentials
from shipway.artifacts.layout import Reference
from shipway.artifacts.registry import RegistryClient
from shipway.images.mirror import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(name: str, text: str) -> bytes:
    """A gzipped tar with one file, byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 0
        archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class Source:
    """Pushes small synthetic images into a registry, as a build would."""

    def __init__(self, host: str, tmp_path: Path) -> None:
        self.host, self.tmp = host, tmp_path
        self.client = RegistryClient(host, plain_http=True, credentials=Credentials())

    def blob(self, repository: str, data: bytes) -> dict[str, object]:
        path = self.tmp / _digest(data).replace(":", "-")
        path.write_bytes(data)
        self.client.push_blob(Reference(self.host, repository), path, _digest(data), len(data), lambda _: None)
        return {"digest": _digest(data), "size": len(data)}

    def manifest(self, repository: str, arch: str, media_type: str, layer_media_type: str) -> bytes:
        layer = _layer(f"{arch}.txt", f"built for {arch}\n")
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": [_digest(gzip.decompress(layer))]}}, sort_keys=True).encode()
        config_type = ("application/vnd.oci.image.config.v1+json" if media_type == OCI_MANIFEST
                       else "application/vnd.docker.container.image.v1+json")
        document = {"schemaVersion": 2, "mediaType": media_type,
                    "config": {"mediaType": config_type, **self.blob(repository, config)},
                    "layers": [{"mediaType": layer_media_type, **self.blob(repository, layer)}]}
        return json.dumps(document, indent=2).encode()

    def put(self, repository: str, name: str, raw: bytes, media_type: str) -> str:
        return self.client.put_manifest(Reference(self.host, repository, name), raw, media_type)


def _get(host: str, repository: str, name: str, auth: tuple[str, str] | None = None) -> requests.Response:
    accept = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST])
    return requests.get(f"http://{host}/v2/{repository}/manifests/{name}", headers={"Accept": accept}, auth=auth,
                        timeout=10)


def _mirror(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipway", "images", "mirror", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env={**os.environ, **env})


def test_mirror_copies_a_multi_platform_index_and_a_digest_pinned_image_keeping_every_digest(
    registry, auth_registry, tmp_path: Path
) -> None:
    source = Source(registry.host, tmp_path)
    children = []
    for arch in ("amd64", "arm64"):
        raw = source.manifest("tools/probe", arch, OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+gzip")
        digest = source.put("tools/probe", _digest(raw), raw, OCI_MANIFEST)
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw),
                         "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, indent=1).encode()
    index_digest = source.put("tools/probe", "1.0", index, OCI_INDEX)
    single = source.manifest("library/single", "amd64", DOCKER_MANIFEST,
                             "application/vnd.docker.image.rootfs.diff.tar.gzip")
    single_digest = source.put("library/single", "2.0", single, DOCKER_MANIFEST)

    env = {"SHIPWAY_REGISTRY_USERNAME": auth_registry.username, "SHIPWAY_REGISTRY_PASSWORD": auth_registry.password,
           "PYTHONPATH": str(REPO / "src")}
    args = ["--to", f"oci://{auth_registry.host}/mirror", "--plain-http", "--insecure-registry", registry.host,
            "--image", f"{registry.host}/tools/probe:1.0", "--image", f"{registry.host}/library/single@{single_digest}"]
    first = _mirror(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr

    mirrored = f"mirror/{registry.host.replace(':', '_')}"
    auth = (auth_registry.username, auth_registry.password)
    got = _get(auth_registry.host, f"{mirrored}/tools/probe", "1.0", auth)
    assert got.status_code == 200 and got.content == index, "the index must be stored byte for byte"
    assert got.headers["Docker-Content-Digest"] == index_digest
    for child in children:
        stored = _get(auth_registry.host, f"{mirrored}/tools/probe", child["digest"], auth)
        assert stored.status_code == 200 and _digest(stored.content) == child["digest"]
        for blob in [json.loads(stored.content)["config"], *json.loads(stored.content)["layers"]]:
            head = requests.head(f"http://{auth_registry.host}/v2/{mirrored}/tools/probe/blobs/{blob['digest']}",
                                 auth=auth, timeout=10)
            assert head.status_code == 200, blob
    pinned = _get(auth_registry.host, f"{mirrored}/library/single", single_digest, auth)
    assert pinned.status_code == 200 and pinned.content == single
    assert f"{auth_registry.host}/{mirrored}/tools/probe:1.0@{index_digest}" in first.stdout
    assert "3 manifests, 4 blobs sent" in first.stdout and "1 manifests, 2 blobs sent" in first.stdout

    again = _mirror(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("0 blobs sent, 0 bytes") == 2, "a rerun must send nothing the mirror has"


def test_mirror_without_credentials_for_a_protected_mirror_says_so(registry, auth_registry, tmp_path: Path) -> None:
    source = Source(registry.host, tmp_path)
    raw = source.manifest("tools/probe", "amd64", OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+gzip")
    source.put("tools/probe", "1.0", raw, OCI_MANIFEST)
    env = {"PYTHONPATH": str(REPO / "src"), "DOCKER_CONFIG": str(tmp_path / "no-docker-config"), "HOME": str(tmp_path)}
    done = _mirror("--to", f"oci://{auth_registry.host}/mirror", "--plain-http", "--insecure-registry",
                   registry.host, "--image", f"{registry.host}/tools/probe:1.0", env=env)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "credentials" in done.stderr and "Traceback" not in done.stderr
