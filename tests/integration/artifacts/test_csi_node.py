"""The node model cache's CSI plugin, called over gRPC on a unix socket as the kubelet calls it, against a real
registry (Debian's docker-registry) on 127.0.0.1 and real bind mounts (mount(2) as root with CAP_SYS_ADMIN).

What the kubelet itself does (registering the plugin, calling on pod start and stop) is not here: the calls are
made the way the kubelet makes them (kubernetes pkg/volume/csi, recent stored versions: csi_mounter.go SetUpAt,
csi_client.go NodePublishVolume, csi_plugin.go NewMounter), to targets under a kubelet folder in tmp_path whose
parent (with the kubelet's vol_data.json in it) the test makes, as SetUpAt does before it calls the plugin.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from conftest import PASSWORD, USERNAME, Registry

from shipway.artifacts.auth import Credentials
from shipway.artifacts.cache import NodeCache
from shipway.artifacts.csi import DRIVER, messages
from shipway.artifacts.csi.mounts import MountError, bind_read_only_at, mount_points, open_folder, unmount
from shipway.artifacts.csi.node import NodeConfig, NodePlugin, start
from shipway.artifacts.layout import MANIFEST_MEDIA_TYPE, MARKER_FILE, ModelMetadata
from shipway.artifacts.push import push
from shipway.artifacts.registry import RetryPolicy

pytestmark = pytest.mark.integration

CALL_TIMEOUT_S = 120.0
SRC = Path(__file__).resolve().parents[3] / "src"


def _mounts_under(root: Path) -> list[str]:
    prefix = os.path.realpath(root)
    return sorted(point for point in mount_points() if point == prefix or point.startswith(prefix + "/"))


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[Path]:
    """A kubelet root with its pods/ folder; whatever is still mounted under tmp_path is unmounted at the end."""
    root = tmp_path / "kubelet"
    (root / "pods").mkdir(parents=True)
    probe_source, probe_target = tmp_path / "probe-source", tmp_path / "probe-target"
    probe_source.mkdir()
    probe_target.mkdir()
    parent = open_folder(tmp_path)
    try:
        bind_read_only_at(probe_source, parent, probe_target.name)
    except MountError as error:
        if os.environ.get("SHIPWAY_REQUIRE_MOUNTS") == "1":  # CI's root step: these tests must run there
            pytest.fail(f"SHIPWAY_REQUIRE_MOUNTS=1 but mount(2) is refused: {error}")
        pytest.skip(f"needs mount(2) (root with CAP_SYS_ADMIN) for bind mounts: {error}")
    finally:
        os.close(parent)
    unmount(probe_target)
    try:
        yield root
    finally:
        left = _mounts_under(tmp_path)
        for point in sorted(left, key=len, reverse=True):
            unmount(Path(point))
        assert not _mounts_under(tmp_path)
        assert not left, f"the test left mounts behind: {left}"


@dataclass
class Plugin:
    """A plugin served on a unix socket, and a channel to it."""

    plugin: NodePlugin | None
    socket: Path
    channel: grpc.Channel

    def call(self, method: str, request: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        request_class, response_class = messages.method_paths()[method]
        stub = self.channel.unary_unary(method, request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
        return stub(request, timeout=timeout)


def _socket_dir() -> Path:
    # A unix socket path is at most 107 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix="csi-", dir="/tmp"))


@pytest.fixture
def serve_plugin(kubelet: Path, tmp_path: Path) -> Iterator[Callable[..., Plugin]]:
    """Start the plugin in this process for a registry; stopped (and its socket removed) at the end."""
    running: list[tuple[grpc.Server, grpc.Channel, Path, NodePlugin]] = []

    def serve(registry: Registry, max_size: int = 2**30, **settings: Any) -> Plugin:
        cache = NodeCache(tmp_path / "node-cache", max_size, keep_recent_s=0.0)
        config = NodeConfig(cache, registry.host, "node-1", kubelet, plain_http=True, retry=RetryPolicy(attempts=1),
                            **settings)
        socket = _socket_dir() / "csi.sock"
        server, plugin = start(config, socket)
        channel = grpc.insecure_channel(f"unix://{socket}")
        running.append((server, channel, socket, plugin))
        return Plugin(plugin, socket, channel)

    yield serve
    for server, channel, socket, plugin in running:
        channel.close()
        server.stop(None).wait()
        plugin.close()
        shutil.rmtree(socket.parent, ignore_errors=True)


def _push(registry: Registry, tmp_path: Path, name: str, weights_bytes: int = 6 * 2**20) -> tuple[str, Path]:
    """Push a model (one large weights file, two small files); its digest reference and its source folder."""
    model = tmp_path / f"source-{name}"
    (model / "conf").mkdir(parents=True)
    (model / "weights.bin").write_bytes(os.urandom(weights_bytes))
    (model / "model-settings.json").write_text(json.dumps({"name": name}))
    (model / "conf" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    credentials = Credentials(USERNAME, PASSWORD) if registry.with_auth else None
    result = push(model, registry.ref(f"team-a/{name}", "1.0.0"), metadata=ModelMetadata(name=name),
                  plain_http=True, credentials=credentials)
    return f"oci://{registry.host}/team-a/{name}@{result.manifest_digest}", model


def _blobs(registry: Registry, artifact: str) -> set[str]:
    """The digests of the config and layers the artifact's manifest lists."""
    repository, _, digest = artifact.removeprefix(f"oci://{registry.host}/").partition("@")
    auth = (USERNAME, PASSWORD) if registry.with_auth else None
    manifest = requests.get(f"http://{registry.host}/v2/{repository}/manifests/{digest}", auth=auth, timeout=10,
                            headers={"Accept": MANIFEST_MEDIA_TYPE}).json()
    return {descriptor["digest"] for descriptor in [manifest["config"], *manifest["layers"]]}


def _secrets(registry: Registry, username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    """A dockerconfigjson Secret's data, as the kubelet passes a nodePublishSecretRef."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {".dockerconfigjson": json.dumps({"auths": {registry.host: {"auth": token}}})}


def _target(kubelet: Path, pod: str) -> Path:
    """Where the kubelet publishes a pod's inline volume `model`: <kubelet>/pods/<uid>/volumes/kubernetes.io~csi/
    <volume>/mount (csi_mounter.go GetPath: GetPodVolumeDir(uid, "kubernetes.io~csi", volume) + "/mount")."""
    return kubelet / "pods" / pod / "volumes" / "kubernetes.io~csi" / "model" / "mount"


def _volume_id(target: Path) -> str:
    """The kubelet's volume_id for an inline volume (csi_mounter.go makeVolumeHandle): csi-<sha256(pod uid + volume
    name)>, hex, the two strings joined with nothing between them."""
    return "csi-" + hashlib.sha256(f"{target.parts[-5]}{target.parts[-2]}".encode()).hexdigest()


def _kubelet_parent(target: Path) -> None:
    """What SetUpAt does before NodePublishVolume: MkdirAll(filepath.Dir(dir), 0750) and vol_data.json in it."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    (target.parent / "vol_data.json").write_text(json.dumps({
        "specVolID": target.parts[-2], "volumeHandle": _volume_id(target), "driverName": DRIVER,
        "nodeName": "node-1", "volumeLifecycleMode": "Ephemeral"}))


def _publish(plugin: Plugin, artifact: str, target: Path, secrets: dict[str, str] | None = None,
             volume_id: str | None = None, readonly: bool = True, mount_flags: tuple[str, ...] = (),
             fs_type: str = "", timeout: float = CALL_TIMEOUT_S, make_parent: bool = True, **attributes: str) -> Any:
    """NodePublishVolume as the kubelet sends it for an inline volume with `readOnly: true` on a CSIDriver with
    podInfoOnMount: the pod's attributes merged into volume_context (csi_mounter.go getPodInfoAttrs), a mount
    capability with the volume's fsType and no mount options, access mode ReadWriteOnce mapped to
    SINGLE_NODE_WRITER (csi_client.go asCSIAccessModeV1: the plugin has no SINGLE_NODE_MULTI_WRITER capability)."""
    if make_parent:
        _kubelet_parent(target)
    pod = target.parts[-5]
    request = messages.NodePublishVolumeRequest(
        volume_id=volume_id or _volume_id(target), target_path=str(target), readonly=readonly,
        secrets=secrets or {},
        volume_context={"artifact": artifact, "csi.storage.k8s.io/pod.name": pod,
                        "csi.storage.k8s.io/pod.namespace": "team-a", "csi.storage.k8s.io/pod.uid": pod,
                        "csi.storage.k8s.io/serviceAccount.name": "default", "csi.storage.k8s.io/ephemeral": "true",
                        **attributes})
    request.volume_capability.mount.fs_type = fs_type
    request.volume_capability.mount.mount_flags.extend(mount_flags)
    request.volume_capability.mount.SetInParent()
    request.volume_capability.access_mode.mode = 1  # SINGLE_NODE_WRITER
    return plugin.call("/csi.v1.Node/NodePublishVolume", request, timeout=timeout)


def _unpublish(plugin: Plugin, target: Path, volume_id: str | None = None) -> Any:
    request = messages.message_class("NodeUnpublishVolumeRequest")(
        volume_id=volume_id or _volume_id(target), target_path=str(target))
    return plugin.call("/csi.v1.Node/NodeUnpublishVolume", request)


def _mounts_at(target: Path) -> int:
    """How many mounts are stacked at `target` (mountinfo field 5)."""
    return sum(1 for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if line.split(" ")[4] == str(target))


def _refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def _same_tree(mounted: Path, source: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            assert (mounted / path.relative_to(source)).read_bytes() == path.read_bytes(), path


def test_a_publish_mounts_the_verified_model_read_only_and_unpublish_removes_it(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    artifact, source = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry)
    target = _target(kubelet, "pod-1")
    _publish(plugin, artifact, target)
    assert _mounts_under(kubelet) == [str(target)]
    _same_tree(target, source)
    assert json.loads((target / MARKER_FILE).read_text())["manifest_digest"] == artifact.rpartition("@")[2]
    for path in [target / "weights.bin", target / "conf" / "labels.txt", target / MARKER_FILE]:
        assert path.stat().st_mode & 0o777 == 0o444, path
    for attempt in (lambda: (target / "new.bin").write_bytes(b"x"),
                    lambda: (target / "weights.bin").open("r+b"),
                    lambda: (target / "conf" / "labels.txt").unlink(),
                    lambda: os.chmod(target / "weights.bin", 0o666)):
        with pytest.raises(OSError) as raised:
            attempt()
        assert raised.value.errno == errno.EROFS
    # The same publish again (a kubelet retry) is OK and mounts nothing more.
    _publish(plugin, artifact, target)
    assert [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if f" {target} " in line].__len__() == 1
    _unpublish(plugin, target)
    assert not _mounts_under(kubelet) and not target.exists()
    assert not list(plugin.plugin.config.cache.publications.iterdir())
    # Unpublishing what is gone is OK too; the cache still holds the model for the next pod.
    _unpublish(plugin, target)
    assert (plugin.plugin.config.cache.model_folder(artifact.rpartition("@")[2]) / "weights.bin").is_file()


def test_a_second_pod_mounts_the_cached_model_without_a_download(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """...and the plugin's log says so: after every publish and unpublish, one INFO line of what it counted and of
    the cache's bytes against its bound (what an operator reading the plugin's logs sees cache use by)."""
    import shipway.artifacts.csi.node as node

    monkeypatch.setattr(node, "USED_BYTES_TTL_S", 0.0)  # every line walks the cache, so the last is exact
    caplog.set_level(logging.INFO, logger="shipway.csi")
    artifact, source = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry)
    first, second = _target(kubelet, "pod-1"), _target(kubelet, "pod-2")
    _publish(plugin, artifact, first)
    served = registry.blobs_served()
    assert sorted(served) == sorted(_blobs(registry, artifact))
    _publish(plugin, artifact, second)
    assert registry.blobs_served() == served, "the second publish downloaded blobs"
    assert plugin.plugin.stats.downloads == 1 and plugin.plugin.stats.published == 2
    _same_tree(second, source)
    # Both pods see the node's one copy: the same inode, no bytes copied.
    assert (first / "weights.bin").stat().st_ino == (second / "weights.bin").stat().st_ino
    for target in (first, second):
        _unpublish(plugin, target)
    cache = plugin.plugin.config.cache
    weights = (source / "weights.bin").stat().st_size
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("node cache: ")]
    assert len(lines) == 4, lines
    assert re.fullmatch(r"node cache: 1 published \(0 already on the node\), 0 unpublished, 1 downloads \((\d+) "
                        rf"bytes\), 0 refused, 0 answered in progress; \d+ of {cache.max_bytes} bytes used", lines[0])
    downloaded = int(re.search(r"1 downloads \((\d+) bytes", lines[0])[1])
    assert weights < downloaded == plugin.plugin.stats.bytes_downloaded
    assert lines[-1] == (f"node cache: 2 published (1 already on the node), 2 unpublished, 1 downloads ({downloaded} "
                         f"bytes), 0 refused, 0 answered in progress; {cache.size()} of {cache.max_bytes} bytes used")


def test_two_pods_publishing_at_once_download_once(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    artifact, source = _push(registry, tmp_path, "iris", weights_bytes=48 * 2**20)
    plugin = serve_plugin(registry)
    targets = [_target(kubelet, f"pod-{n}") for n in range(1, 5)]
    errors: list[BaseException] = []
    start_line = threading.Barrier(len(targets))

    def publish(target: Path) -> None:
        start_line.wait(timeout=30)
        try:
            _publish(plugin, artifact, target)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CALL_TIMEOUT_S)
    assert not errors, errors
    served = registry.blobs_served()
    assert sorted(served) == sorted(_blobs(registry, artifact)), served
    assert plugin.plugin.stats.downloads == 1
    for target in targets:
        _same_tree(target, source)
        _unpublish(plugin, target)


def test_credentials_are_asked_of_the_registry_on_every_publish_even_when_the_model_is_cached(
        auth_registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """Team B's pod cannot mount team A's model from the node, though its bytes are there."""
    artifact, _ = _push(auth_registry, tmp_path, "iris")
    plugin = serve_plugin(auth_registry)
    owner = _target(kubelet, "team-a-pod")
    _publish(plugin, artifact, owner, _secrets(auth_registry))
    records = sorted(plugin.plugin.config.cache.publications.iterdir())
    intruders = {
        "wrong password": _secrets(auth_registry, password="not the password"),
        "unknown user": _secrets(auth_registry, username="team-b", password="team-b's password"),
        "no secret": {},
    }
    for pod, secrets in intruders.items():
        target = _target(kubelet, pod.replace(" ", "-"))
        error = _refused(lambda: _publish(plugin, artifact, target, secrets))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (pod, error.details())
        assert auth_registry.host in error.details() and "Secret" in error.details(), error.details()
        assert not target.exists(), pod
    assert _mounts_under(kubelet) == [str(owner)]
    assert sorted(plugin.plugin.config.cache.publications.iterdir()) == records
    # The owner's next pod is asked too, and let in; a digest the registry lacks is NOT_FOUND.
    _publish(plugin, artifact, _target(kubelet, "team-a-pod-2"), _secrets(auth_registry))
    missing = artifact.rpartition("@")[0] + "@sha256:" + "0" * 64
    error = _refused(lambda: _publish(plugin, missing, _target(kubelet, "pod-x"), _secrets(auth_registry)))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    for pod in ("team-a-pod", "team-a-pod-2"):
        _unpublish(plugin, _target(kubelet, pod))


def test_requests_the_plugin_must_refuse_are_refused_with_what_to_fix(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    artifact, _ = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry)
    target = _target(kubelet, "pod-1")
    by_tag = artifact.rpartition("@")[0] + ":1.0.0"
    outside = tmp_path / "elsewhere" / "mount"
    escape = kubelet / "pods" / "pod-2" / "volumes"
    escape.parent.mkdir(parents=True)
    escape.symlink_to(tmp_path / "elsewhere")
    cases = {
        "a tag": (lambda: _publish(plugin, by_tag, target), "digest"),
        "another registry": (lambda: _publish(plugin, artifact.replace(registry.host, "registry.example.com"), target),
                             "pulls from"),
        "a writable publish": (lambda: _publish(plugin, artifact, target, readonly=False), "readOnly: true"),
        "a target outside the pods": (lambda: _publish(plugin, artifact, outside), "outside any pod"),
        "a symlink out of the pods": (lambda: _publish(plugin, artifact, escape / "x" / "model" / "mount"),
                                      "outside any pod"),
        "a typo in the attributes": (lambda: _publish(plugin, artifact, target, artefact="x"), "artefact"),
    }
    for case, (call, hint) in cases.items():
        error = _refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, error.details())
        assert hint in error.details(), (case, error.details())
    # Larger than the volume's maxSize: final (the kubelet retries RESOURCE_EXHAUSTED forever), naming the fix.
    too_small = _refused(lambda: _publish(plugin, artifact, target, maxSize="1Mi"))
    assert too_small.code() == grpc.StatusCode.INVALID_ARGUMENT, too_small.details()
    assert "maxSize" in too_small.details() and "spec.resources.model_storage" in too_small.details()
    assert not _mounts_under(tmp_path) and registry.blobs_served() == []
    # Nothing was made outside the pods (the parents are the test's, as the kubelet's would be).
    assert sorted(path.name for path in (tmp_path / "elsewhere").rglob("*")) == sorted(
        ["x", "model", "vol_data.json", "vol_data.json"])


def test_eviction_skips_a_mounted_model_and_evicts_an_unmounted_one(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    # Each model is about 6 MiB; the cache holds two, not three.
    artifacts = {name: _push(registry, tmp_path, name)[0] for name in ("alpha", "beta", "gamma")}
    plugin = serve_plugin(registry, max_size=14 * 2**20)
    cache = plugin.plugin.config.cache
    mounted = _target(kubelet, "pod-alpha")
    _publish(plugin, artifacts["alpha"], mounted)
    _publish(plugin, artifacts["beta"], _target(kubelet, "pod-beta"))
    _unpublish(plugin, _target(kubelet, "pod-beta"))
    # alpha is the least recently used; only its mount keeps it.
    _publish(plugin, artifacts["gamma"], _target(kubelet, "pod-gamma"))
    folders = {name: cache.model_folder(reference.rpartition("@")[2]) for name, reference in artifacts.items()}
    assert folders["alpha"].is_dir() and not folders["beta"].exists() and folders["gamma"].is_dir()
    assert (mounted / "weights.bin").read_bytes() == (tmp_path / "source-alpha" / "weights.bin").read_bytes()
    assert cache.size() <= cache.max_bytes
    for pod in ("pod-alpha", "pod-gamma"):
        _unpublish(plugin, _target(kubelet, pod))


def test_a_cache_full_of_mounted_models_refuses_a_new_one_before_downloading_it(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    artifacts = {name: _push(registry, tmp_path, name)[0] for name in ("alpha", "beta", "gamma")}
    plugin = serve_plugin(registry, max_size=14 * 2**20)
    cache = plugin.plugin.config.cache
    for name in ("alpha", "beta"):
        _publish(plugin, artifacts[name], _target(kubelet, f"pod-{name}"))
    served = registry.blobs_served()
    error = _refused(lambda: _publish(plugin, artifacts["gamma"], _target(kubelet, "pod-gamma")))
    # It can clear (pods unmount): not final, so the kubelet retries; the answer promises nothing else.
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-size" in error.details(), error.details()
    assert "registry.nodeCache.maxSize" in error.details() and "another node" not in error.details()
    assert registry.blobs_served() == served and cache.size() <= cache.max_bytes
    assert not _target(kubelet, "pod-gamma").exists()
    # Once a pod lets its model go, the new one fits.
    _unpublish(plugin, _target(kubelet, "pod-beta"))
    _publish(plugin, artifacts["gamma"], _target(kubelet, "pod-gamma"))
    assert cache.size() <= cache.max_bytes
    for name in ("alpha", "gamma"):
        _unpublish(plugin, _target(kubelet, f"pod-{name}"))


def test_identity_and_node_info_and_anything_else_unimplemented(registry: Registry, serve_plugin) -> None:
    plugin = serve_plugin(registry)
    info = plugin.call("/csi.v1.Identity/GetPluginInfo", messages.message_class("GetPluginInfoRequest")())
    assert info.name == DRIVER and info.vendor_version
    probe = plugin.call("/csi.v1.Identity/Probe", messages.message_class("ProbeRequest")())
    assert probe.ready.value is True
    node = plugin.call("/csi.v1.Node/NodeGetInfo", messages.message_class("NodeGetInfoRequest")())
    assert node.node_id == "node-1"
    capabilities = plugin.call("/csi.v1.Node/NodeGetCapabilities",
                               messages.message_class("NodeGetCapabilitiesRequest")())
    assert list(capabilities.capabilities) == []  # no staging: the kubelet calls NodePublishVolume directly
    stage = plugin.channel.unary_unary("/csi.v1.Node/NodeStageVolume", request_serializer=lambda _: b"",
                                       response_deserializer=lambda raw: raw)
    error = _refused(lambda: stage(b"", timeout=10))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_hostile_registrys_model_is_neither_kept_nor_mounted(hostile, serve_plugin, kubelet: Path) -> None:
    """A blob that does not hash to its digest, or a bundle with a link in it: the pod gets an error naming it, the
    node keeps nothing of it and mounts nothing."""
    from hostile_registry import bundle_layer, digest_of, file_layer, tar_of

    server, _ = hostile
    tampered = server.add_model([file_layer("weights.bin", b"tampered", size=8, digest=digest_of(b"original"))],
                                tag="tampered")
    link = tarfile.TarInfo("labels.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    linked = server.add_model([bundle_layer(tar_of([(link, None)]), ["labels.txt"])], tag="linked")
    plugin = serve_plugin(server)
    cache = plugin.plugin.config.cache
    for raw, code, hint in ((tampered, grpc.StatusCode.DATA_LOSS, "corrupt"),
                            (linked, grpc.StatusCode.FAILED_PRECONDITION, "symbolic link")):
        target = _target(kubelet, f"pod-{code.name.lower()}")
        artifact = f"oci://{server.host}/team/model@{digest_of(raw)}"
        error = _refused(lambda: _publish(plugin, artifact, target, _secrets(server)))
        assert error.code() == code and hint in error.details(), error.details()
        assert not target.exists()
    assert list(cache.models.iterdir()) == []
    # Blobs that did verify may stay (unlinked, first to be evicted); the tampered one never entered.
    for blob in cache.blobs.iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert not cache.has(digest_of(b"original"), 8)
    assert list(cache.incoming.iterdir()) == [] and list(cache.publications.iterdir()) == []
    assert not _mounts_under(kubelet)


def _cli_plugin(registry_host: str, cache: Path, kubelet: Path, socket: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    socket.unlink(missing_ok=True)  # a killed run's socket: wait for the new one
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipway", "model", "csi-node", "--endpoint", f"unix://{socket}", "--dir",
             str(cache), "--max-size", "1Gi", "--registry", registry_host, "--plain-http", "--node-id", "node-1",
             "--kubelet-dir", str(kubelet)], stdout=sink, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"csi-node did not start: {log.read_text()}")
        time.sleep(0.05)
    return process


def test_an_identity_the_registry_knows_but_does_not_let_read_the_repository_cannot_mount_it_from_the_node(
        hostile, serve_plugin, kubelet: Path) -> None:
    """Per-repository access control (zot's): team B's own valid pull identity gets 403 on team A's repository,
    and so no mount of team A's model, which is on the node already."""
    from hostile_registry import digest_of, file_layer

    server, _ = hostile
    raw = server.add_model([file_layer("weights.bin", os.urandom(64 << 10))])
    artifact = f"oci://{server.host}/team/model@{digest_of(raw)}"
    plugin = serve_plugin(server)
    _publish(plugin, artifact, _target(kubelet, "team-a-pod"), _secrets(server))
    server.forbidden.add("team/model")
    target = _target(kubelet, "team-b-pod")
    error = _refused(lambda: _publish(plugin, artifact, target, _secrets(server)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "403" in error.details(), error.details()
    assert not target.exists() and _mounts_under(kubelet) == [str(_target(kubelet, "team-a-pod"))]
    _unpublish(plugin, _target(kubelet, "team-a-pod"))


def test_the_command_serves_until_sigterm_then_removes_its_socket(tmp_path: Path) -> None:
    kubelet, socket = tmp_path / "kubelet", _socket_dir() / "csi.sock"
    (kubelet / "pods").mkdir(parents=True)
    process = _cli_plugin("127.0.0.1:1", tmp_path / "node-cache", kubelet, socket, tmp_path / "csi-node.log")
    channel = grpc.insecure_channel(f"unix://{socket}")
    try:
        info = Plugin(None, socket, channel).call("/csi.v1.Identity/GetPluginInfo",
                                                  messages.message_class("GetPluginInfoRequest")())
        assert info.name == DRIVER
    finally:
        channel.close()
        process.terminate()
        returncode = process.wait(timeout=30)
    assert returncode == 0, (tmp_path / "csi-node.log").read_text()
    assert not socket.exists()
    socket.parent.rmdir()


@pytest.mark.slow
def test_a_publish_killed_mid_pull_leaves_nothing_to_mount_and_the_next_run_cleans_it(
        registry: Registry, kubelet: Path, tmp_path: Path) -> None:
    artifact, source = _push(registry, tmp_path, "big", weights_bytes=768 * 2**20)
    cache_dir, socket, log = tmp_path / "node-cache", _socket_dir() / "csi.sock", tmp_path / "csi-node.log"
    target = _target(kubelet, "pod-1")
    process = _cli_plugin(registry.host, cache_dir, kubelet, socket, log)
    channel = grpc.insecure_channel(f"unix://{socket}")
    try:
        plugin = Plugin(None, socket, channel)
        publishing = threading.Thread(target=lambda: _refused(lambda: _publish(plugin, artifact, target)))
        publishing.start()
        deadline = time.monotonic() + 60
        while not any(path.stat().st_size > 16 * 2**20 for path in (cache_dir / "incoming").glob("*")):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        publishing.join(timeout=30)
    finally:
        channel.close()
    # Nothing a publish would mount: no model folder, only hidden debris and a partial blob.
    cache = NodeCache(cache_dir, 2**30)
    assert [path for path in cache.models.iterdir() if not path.name.startswith(".")] == []
    debris = [*cache.incoming.iterdir(), *[path for path in cache.models.iterdir() if ".partial-" in path.name]]
    assert debris and not _mounts_under(kubelet)
    # The next run removes the debris as it starts, before any publish, and then publishes the model whole.
    process = _cli_plugin(registry.host, cache_dir, kubelet, socket, log)
    channel = grpc.insecure_channel(f"unix://{socket}")
    try:
        assert not any(path.exists() for path in debris)
        assert not list(cache.publications.glob("*.json"))
        plugin = Plugin(None, socket, channel)
        _publish(plugin, artifact, target)
        _same_tree(target, source)
        _unpublish(plugin, target)
    finally:
        channel.close()
        process.terminate()
        returncode = process.wait(timeout=30)
    # SIGTERM: the server stops and removes its socket.
    assert returncode == 0, log.read_text()
    assert not socket.exists()
    socket.parent.rmdir()


# --- What a real kubelet does around the calls (kubernetes pkg/volume/csi) ------------------------------------


HELD_BYTES = 16 << 20  # four of the client's 4 MiB reads: the pull reports progress after each


def _held_model(server: Any, release: threading.Event, size: int = HELD_BYTES) -> str:
    """A model on the fake registry whose one weights blob sends half its bytes and holds the rest until `release`:
    a cold pull that stays in flight as long as the test needs (a 100 GB pull, scaled down)."""
    from hostile_registry import digest_of, file_layer, held_body

    weights = os.urandom(size)
    server.behaviours[digest_of(weights)] = held_body(weights, release, server)
    raw = server.add_model([file_layer("weights.bin", weights)], tag=f"held-{len(server.manifests)}")
    return f"oci://{server.host}/team/model@{digest_of(raw)}"


def _held_setup(hostile: Any, serve_plugin: Callable[..., Plugin], kubelet: Path
                ) -> tuple[Any, threading.Event, str, Plugin, Path]:
    """A held model on the fake registry, a plugin whose publishes wait up to 30 s for pulls, and pod-1's target."""
    server, _ = hostile
    release = threading.Event()
    artifact = _held_model(server, release)
    return server, release, artifact, serve_plugin(server, publish_wait_s=30.0), _target(kubelet, "pod-1")


def _pulled_so_far(details: str) -> int:
    """X of an ABORTED answer's "a publish of this volume is in progress: pulling X of Y bytes" (Y: the
    weights and the 2-byte config)."""
    match = re.search(r"in progress: pulling (\d+) of (\d+) bytes", details)
    assert match and int(match[2]) == HELD_BYTES + 2, details
    return int(match[1])


def _blob_gets(server: Any) -> int:
    """How many times the registry was asked for a held blob's bytes."""
    return sum(1 for seen in server.seen
               if seen.method == "GET" and "/blobs/" in seen.path and seen.path.rpartition("/")[2] in server.behaviours)


def _in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` on a thread; its result or the error it raised lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 - looked at by the test
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_kubelet_retry_while_the_first_publish_still_pulls_is_aborted_at_once_and_the_target_is_mounted_once(
        hostile, serve_plugin, kubelet: Path) -> None:
    """The kubelet lost track of a call (csiTimeout ran out, or it restarted) and calls NodePublishVolume again,
    same volume_id and target, while the first call still waits for its cold pull. The CSI spec ("Concurrency",
    spec.md v1.12.0: the plugin MAY answer ABORTED to secondary calls for a volume with an operation pending) lets
    the plugin refuse it at once, and the kubelet treats ABORTED as "in progress" and retries (csi_client.go
    isFinalError). Before: the retry blocked a worker thread on the pull lock and then bind-mounted a second
    time onto the same target."""
    server, release, artifact, plugin, target = _held_setup(hostile, serve_plugin, kubelet)
    try:
        first, first_outcome = _in_background(lambda: _publish(plugin, artifact, target, _secrets(server)))
        _until(lambda: server.bytes_sent > 0, "the first publish's pull to start")
        started = time.monotonic()
        retry = _refused(lambda: _publish(plugin, artifact, target, _secrets(server), timeout=10))
        assert time.monotonic() - started < 2.0, "the retry waited for the pull instead of answering at once"
        assert retry.code() == grpc.StatusCode.ABORTED, retry.details()
        assert _pulled_so_far(retry.details()) > 0, retry.details()
    finally:
        release.set()
        first.join(timeout=30)  # before the fixtures unmount: a publish still running would mount after them
    assert first_outcome and not isinstance(first_outcome[0], BaseException), first_outcome
    # The kubelet's next retry finds the volume published: OK, and nothing stacked on the target.
    _publish(plugin, artifact, target, _secrets(server))
    assert _mounts_at(target) == 1
    assert _blob_gets(server) == 1 and plugin.plugin.stats.downloads == 1
    _unpublish(plugin, target)
    assert _mounts_at(target) == 0


def test_an_unpublish_while_the_publish_still_pulls_is_aborted_so_nothing_is_mounted_after_it(
        hostile, serve_plugin, kubelet: Path) -> None:
    """The pod is deleted during its cold pull: the kubelet's publish ran out (an "uncertain" mount to it), so it
    calls NodeUnpublishVolume for the target (operation_generator.go markVolumeErrorState and the reconciler
    unmount uncertain volumes). Answered OK while the plugin's publish still ran, the target would be mounted
    after the kubelet removed it from its books: a mount left on a deleted pod's folder. ABORTED until the
    publish is done, and the kubelet's retry then unmounts it."""
    server, release, artifact, plugin, target = _held_setup(hostile, serve_plugin, kubelet)
    try:
        first, first_outcome = _in_background(lambda: _publish(plugin, artifact, target, _secrets(server)))
        _until(lambda: server.bytes_sent > 0, "the first publish's pull to start")
        error = _refused(lambda: _unpublish(plugin, target))
        assert error.code() == grpc.StatusCode.ABORTED and "a publish of this volume is in progress: pulling" in \
            error.details(), error.details()
    finally:
        release.set()
        first.join(timeout=30)  # before the fixtures unmount
    assert first_outcome and not isinstance(first_outcome[0], BaseException), first_outcome
    _unpublish(plugin, target)
    assert not target.exists() and not _mounts_under(kubelet)
    assert not list(plugin.plugin.config.cache.publications.iterdir())


def test_a_publish_that_outlasts_its_wait_answers_aborted_with_its_progress_and_the_pull_goes_on(
        hostile, serve_plugin, kubelet: Path) -> None:
    """A cold pull longer than the kubelet's csiTimeout (2 minutes, csi_plugin.go; scaled here): the kubelet's
    call runs out and is cancelled, the plugin's pull goes on without it, a retry waits at most publish_wait_s
    (under the kubelet's bound) and answers ABORTED saying how far the pull got, and the retry after the pull
    ends mounts the model. The registry sends the model once."""
    server, _ = hostile
    release = threading.Event()
    artifact = _held_model(server, release)
    plugin = serve_plugin(server, publish_wait_s=1.0)
    target = _target(kubelet, "pod-1")
    records = plugin.plugin.config.cache.publications
    try:
        gave_up = _refused(lambda: _publish(plugin, artifact, target, _secrets(server), timeout=0.5))
        assert gave_up.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The cancelled call frees its volume: the kubelet's retry is not refused as a second call, it waits.
        time.sleep(0.5)
        started = time.monotonic()
        waited = _refused(lambda: _publish(plugin, artifact, target, _secrets(server), timeout=10))
        assert 0.9 < time.monotonic() - started < 5.0
        assert waited.code() == grpc.StatusCode.ABORTED, waited.details()
        assert 0 < _pulled_so_far(waited.details()) < HELD_BYTES, waited.details()
        # Still pulling: the record stays, so eviction cannot take the model between the pull and the retry.
        assert len(list(records.iterdir())) == 1 and not target.exists()
    finally:
        release.set()
    _until(lambda: plugin.plugin.pulls.running(artifact.rpartition("@")[2]) is None, "the pull to end")
    _publish(plugin, artifact, target, _secrets(server))
    assert _mounts_at(target) == 1 and (target / "weights.bin").stat().st_size == HELD_BYTES
    assert _blob_gets(server) == 1 and plugin.plugin.stats.downloads == 1
    _unpublish(plugin, target)


def _answers_while_publishes_hang(plugin: Plugin, kubelet: Path) -> None:
    """Probe, NodeGetCapabilities (which the kubelet calls before every publish, csi_client.go
    getNodeV1AccessModeMapper) and an unpublish answer at once: publishes left them worker threads."""
    started = time.monotonic()
    assert plugin.call("/csi.v1.Identity/Probe", messages.message_class("ProbeRequest")(), timeout=5).ready.value
    plugin.call("/csi.v1.Node/NodeGetCapabilities", messages.message_class("NodeGetCapabilitiesRequest")(), timeout=5)
    _unpublish(plugin, _target(kubelet, "pod-gone"))
    assert time.monotonic() - started < 3.0


@dataclass
class _Crowd:
    """Pods publishing one artifact at once on a plugin with 4 worker threads, while the registry holds back."""

    plugin: Plugin
    server: Any
    artifact: str
    kubelet: Path
    release: threading.Event

    def run(self, targets: list[Path], code: grpc.StatusCode, hint: str,
            after_first: Callable[[], None] = lambda: None) -> int:
        """Publish at every target (the rest once `after_first` returns): all but the two that fill the publish
        slots answer `code` with `hint` at once, and other calls still answer; then the registry lets go. How many
        publishes succeeded."""
        calls: list[tuple[threading.Thread, list[Any]]] = []
        try:
            for n, target in enumerate(targets):
                calls.append(_in_background(lambda target=target: _publish(
                    self.plugin, self.artifact, target, _secrets(self.server), timeout=20)))
                if n == 0:
                    after_first()
            _until(lambda: sum(1 for _, outcome in calls if outcome) == len(targets) - 2, "all but two to answer")
            answers = [outcome[0] for _, outcome in calls if outcome]
            assert all(isinstance(error, grpc.RpcError) and error.code() == code and hint in error.details()
                       for error in answers), [getattr(error, "details", lambda: error)() for error in answers]
            _answers_while_publishes_hang(self.plugin, self.kubelet)
        finally:
            self.release.set()
            for thread, _ in calls:
                thread.join(timeout=30)  # before the fixtures unmount
        return sum(1 for _, outcome in calls if not isinstance(outcome[0], BaseException))


def test_pods_waiting_on_one_cold_digest_never_take_every_worker_thread(
        hostile, serve_plugin, kubelet: Path) -> None:
    """More pods than worker threads publish one cold digest from a registry that holds the bytes back. Publishes
    take at most half the threads; the others answer ABORTED at once with the pull's progress (the kubelet
    retries), and probes, capabilities and unpublishes still answer. Before: every thread blocked on the pull
    lock and everything else queued behind them."""
    server, _ = hostile
    release = threading.Event()
    artifact = _held_model(server, release)
    plugin = serve_plugin(server, workers=4, publish_wait_s=30.0)
    targets = [_target(kubelet, f"pod-{n}") for n in range(10)]
    crowd = _Crowd(plugin, server, artifact, kubelet, release)
    published = crowd.run(targets, grpc.StatusCode.ABORTED, "in progress: pulling", after_first=lambda: _until(
        lambda: server.bytes_sent > 0, "the first publish's pull to start"))
    assert published == 2
    # Every retry mounts the one copy the node pulled.
    for target in targets:
        _publish(plugin, artifact, target, _secrets(server))
        assert _mounts_at(target) == 1
    assert _blob_gets(server) == 1 and plugin.plugin.stats.downloads == 1
    for target in targets:
        _unpublish(plugin, target)


def test_pods_whose_registry_does_not_answer_never_take_every_worker_thread(
        hostile, serve_plugin, kubelet: Path) -> None:
    """The registry answers the credential check but not the manifest of a cold model: the publishes asking it
    take at most half the threads, the others answer UNAVAILABLE at once (the kubelet retries), and probes,
    capabilities and unpublishes still answer."""
    from hostile_registry import after, digest_of, file_layer

    server, _ = hostile
    raw = server.add_model([file_layer("weights.bin", os.urandom(64 << 10))])
    artifact = f"oci://{server.host}/team/model@{digest_of(raw)}"
    release = threading.Event()

    async def manifest(_request: Any) -> Any:
        from aiohttp import web

        return web.Response(body=raw, headers={"Content-Type": MANIFEST_MEDIA_TYPE, "Docker-Content-Digest":
                                               digest_of(raw)})

    server.manifest_behaviour = after(release, manifest)
    plugin = serve_plugin(server, workers=4)
    targets = [_target(kubelet, f"pod-{n}") for n in range(6)]
    assert _Crowd(plugin, server, artifact, kubelet, release).run(
        targets, grpc.StatusCode.UNAVAILABLE, "already runs as many publishes") == 2
    for target in targets:
        _publish(plugin, artifact, target, _secrets(server))
        _unpublish(plugin, target)
    assert not _mounts_under(kubelet)


def test_the_plugin_creates_and_removes_the_target_only_never_the_kubelets_parent(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """SetUpAt (csi_mounter.go) makes the target's parent (0750) and writes vol_data.json there; creating
    target_path is the plugin's job (csi.proto NodePublishVolumeRequest.target_path), and so is deleting it on
    unpublish (NodeUnpublishVolumeRequest.target_path); the parent and vol_data.json are the kubelet's, removed by
    its removeMountDir after the plugin answers."""
    artifact, source = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry)
    target = _target(kubelet, "pod-1")
    _publish(plugin, artifact, target)
    _same_tree(target, source)
    _unpublish(plugin, target)
    assert not target.exists()
    assert (target.parent / "vol_data.json").is_file() and target.parent.stat().st_mode & 0o777 == 0o750
    # Without the kubelet's parent there is nothing to publish into: refused, and nothing is made.
    orphan = _target(kubelet, "pod-2")
    orphan.parent.parent.mkdir(parents=True)
    error = _refused(lambda: _publish(plugin, artifact, orphan, make_parent=False))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "kubelet creates" in error.details()
    assert not orphan.parent.exists() and not list(plugin.plugin.config.cache.publications.iterdir())


def test_the_volume_capability_the_kubelet_may_send_is_honoured_or_refused_by_name(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """An inline volume's fsType reaches volume_capability.mount.fs_type (csi_mounter.go SetUpAt, csi_client.go
    NodePublishVolume): accepted, unused (a bind mount formats nothing). mount_flags: those the read-only bind
    mount has anyway, and noexec, which it adds; any other (rw, an SELinux context=) is refused naming it."""
    artifact, _ = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry)
    target = _target(kubelet, "pod-1")
    _publish(plugin, artifact, target, fs_type="ext4", mount_flags=("noexec", "ro", "nosuid", "nodev", "noatime"))
    options = next(line.split(" ")[5] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                   if line.split(" ")[4] == str(target)).split(",")
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(options), options
    _unpublish(plugin, target)
    for flag in ("rw", "exec", "context=system_u:object_r:container_file_t:s0"):
        error = _refused(lambda: _publish(plugin, artifact, _target(kubelet, "pod-2"), mount_flags=(flag,)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and repr(flag) in error.details(), error.details()
    assert not _mounts_under(kubelet) and not _target(kubelet, "pod-2").exists()


# --- Attacks: a tenant, a hostile registry, and the node's own state ------------------------------------------


def test_a_symbolic_link_swapped_into_the_target_after_it_was_checked_is_not_followed_by_the_mount(
        hostile, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """check_target resolves the path once; the mount comes after the credential check and the pull (minutes on a
    cold model). A link swapped into the path in between (the volume folder renamed, a link to elsewhere put in
    its place) must not carry the root-owned mount (mount(2) follows links in its target) out of the pods
    folder: the plugin walks to the target without following links and mounts through the descriptor it got."""
    from hostile_registry import after, digest_of, file_layer

    server, _ = hostile
    raw = server.add_model([file_layer("weights.bin", os.urandom(64 << 10))])
    artifact = f"oci://{server.host}/team/model@{digest_of(raw)}"
    release = threading.Event()

    async def manifest(_request: Any) -> Any:
        from aiohttp import web

        return web.Response(body=raw, headers={"Content-Type": MANIFEST_MEDIA_TYPE,
                                               "Docker-Content-Digest": digest_of(raw)})

    server.manifest_behaviour = after(release, manifest)  # the GET before the pull waits; the HEAD does not
    plugin = serve_plugin(server)
    target = _target(kubelet, "pod-1")
    elsewhere = tmp_path / "host-etc"
    elsewhere.mkdir()
    thread, outcome = _in_background(lambda: _publish(plugin, artifact, target, _secrets(server)))
    _until(lambda: any(seen.method == "GET" and "/manifests/" in seen.path for seen in server.seen),
           "the publish to read the manifest")
    target.parent.rename(target.parent.with_name("model-moved"))
    target.parent.symlink_to(elsewhere)
    release.set()
    thread.join(30)
    assert isinstance(outcome[0], grpc.RpcError), outcome
    assert outcome[0].code() == grpc.StatusCode.FAILED_PRECONDITION, outcome[0].details()
    assert "symbolic link" in outcome[0].details(), outcome[0].details()
    assert not _mounts_under(tmp_path) and list(elsewhere.iterdir()) == []
    assert list(plugin.plugin.config.cache.publications.iterdir()) == []


def test_a_bundle_of_folder_entries_or_a_manifest_of_too_many_files_is_refused_before_the_node_spends_inodes(
        hostile, serve_plugin, kubelet: Path) -> None:
    """A team's own artifact, pushed to its own repository and named in its own pod, is hostile input to the root
    plugin. Empty folder entries cost no bytes (the size bounds never see them) but an inode each and a few hundred
    bytes of the plugin's memory while tarfile lists them: a 2 GB bundle is four million of them, past the
    plugin's 512Mi limit. A folder entry no listed file is in is refused as it is read, and a manifest listing
    more files than a model may hold is refused before any blob is fetched."""
    from hostile_registry import bundle_layer, digest_of, tar_of

    from shipway.artifacts.bundle import MAX_MODEL_FILES

    server, _ = hostile
    label = tarfile.TarInfo("labels.txt")
    folders = []
    for n in range(2000):
        folder = tarfile.TarInfo(f"d{n}")
        folder.type = tarfile.DIRTYPE
        folders.append((folder, None))
    padded = server.add_model([bundle_layer(tar_of([*folders, (label, b"setosa\n")]), ["labels.txt"])],
                              tag="folders")
    many = [f"f{n}" for n in range(MAX_MODEL_FILES + 1)]
    crowded = server.add_model([bundle_layer(tar_of([(label, b"x")]), many)], tag="crowded")
    plugin = serve_plugin(server)
    cache = plugin.plugin.config.cache
    for raw, hint in ((padded, "none of the files its manifest lists is in"),
                      (crowded, f"more than the {MAX_MODEL_FILES} a model may hold")):
        target = _target(kubelet, f"pod-{digest_of(raw)[7:15]}")
        error = _refused(lambda: _publish(plugin, f"oci://{server.host}/team/model@{digest_of(raw)}", target,
                                          _secrets(server)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and hint in error.details(), error.details()
        assert not target.exists()
    assert list(cache.models.iterdir()) == [] and list(cache.publications.iterdir()) == []
    assert [seen for seen in server.seen if "/blobs/" in seen.path and seen.method == "GET"
            and seen.path.endswith(digest_of(tar_of([(label, b"x")])))] == []
    assert not _mounts_under(kubelet)


def test_huge_attributes_and_secrets_get_a_short_answer_and_cost_the_plugin_no_more_than_the_message(
        registry: Registry, serve_plugin, kubelet: Path) -> None:
    """A tenant controls volumeAttributes (keys and values) and the Secret's data; gRPC bounds a request at 4 MiB.
    Echoing a 3 MB value into the error would put 3 MB in the status (past what the kubelet's gRPC client takes
    as trailers) and in the plugin's log on every retry; the answer names the field and its size instead."""
    plugin = serve_plugin(registry)
    target = _target(kubelet, "pod-1")
    huge = "x" * (3 << 20)
    digest = "sha256:" + "0" * 64
    for attributes, secrets in (({"artifact": huge}, None), ({"artifact": f"oci://{registry.host}/a/b:{huge}"}, None),
                                ({huge: "1"}, None), ({"maxSize": huge}, None),
                                ({}, {".dockerconfigjson": huge}), ({}, {huge: "1"})):
        attributes = {"artifact": f"oci://{registry.host}/team-a/model@{digest}", **attributes}
        error = _refused(lambda: _publish(plugin, attributes.pop("artifact"), target, secrets, **attributes))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details()[:200])
        assert len(error.details()) < 2000, error.details()[:300]
    assert not target.exists() and not _mounts_under(kubelet)


def test_what_a_plugin_killed_after_the_record_or_after_the_mount_leaves_is_recovered_by_the_next_run(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """SIGKILL between the record and the mount leaves a record, maybe an empty target; between the mount and the
    answer, a mount and its record; during the swap into place, staging and a retired copy. The next run keeps the
    mounted one's record (its model stays pinned), drops the unmounted one's (so it pins nothing) and sweeps the
    debris; the kubelet's retries then mount each target once, and its unpublishes leave nothing."""
    from shipway.artifacts.csi.node import publication_key

    artifact, source = _push(registry, tmp_path, "iris")
    digest = artifact.rpartition("@")[2]
    first = serve_plugin(registry)
    mounted, unmounted = _target(kubelet, "pod-1"), _target(kubelet, "pod-2")
    _publish(first, artifact, mounted)  # killed before its answer reached the kubelet
    cache = first.plugin.config.cache
    model = cache.model_folder(digest)
    _kubelet_parent(unmounted)
    unmounted.mkdir()  # killed after the record and the target, before the mount
    cache.record_publication(publication_key(_volume_id(unmounted), unmounted), digest,
                             {"volume_id": _volume_id(unmounted), "target_path": str(unmounted)})
    debris = [cache.models / f".{model.name}.partial-dead", cache.models / f".{model.name}.old-dead"]
    for path in debris:
        path.mkdir()
        (path / "weights.bin").write_bytes(b"half")
    second = serve_plugin(registry)
    assert cache.published_models() == {model.name} and len(cache.publications_by_key()) == 1
    assert not any(path.exists() for path in debris)
    for target in (mounted, unmounted):
        _publish(second, artifact, target)
        assert _mounts_at(target) == 1
        _same_tree(target, source)
    for target in (mounted, unmounted):
        _unpublish(second, target)
    assert not _mounts_under(kubelet) and cache.publications_by_key() == {}


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM in /proc/PID/status), MiB."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_the_plugins_peak_memory_under_the_largest_inputs_it_accepts_stays_under_its_512Mi_limit(
        hostile, kubelet: Path, tmp_path: Path) -> None:
    """The DaemonSet limits the plugin to 512Mi (shipway.render.node_cache.PLUGIN_RESOURCES); past it the kernel
    kills it and every pod on the node waits. The `shipway model csi-node` process, measured (VmHWM) after what a
    tenant and its registry can make it hold at most: a bundle of MAX_MODEL_FILES files, a manifest near the 4 MiB
    cap (thousands of layers) published by 16 pods at once, and 16 publishes of near-4 MiB attributes."""
    from hostile_registry import bundle_layer, digest_of, file_layer, tar_of

    from shipway.artifacts.bundle import MAX_MODEL_FILES
    from shipway.artifacts.transfer import TransferLimits

    server, _ = hostile
    names = [f"f{n:06d}" for n in range(MAX_MODEL_FILES)]
    files = server.add_model([bundle_layer(tar_of([(tarfile.TarInfo(name), b"") for name in names]), names)],
                             tag="files")
    one = b"x"
    layers = []
    while len(json.dumps([descriptor for descriptor, _ in layers])) < TransferLimits().max_manifest_bytes - 200_000:
        layers += [file_layer(f"layer-{n:05d}-" + "p" * 100, one) for n in range(len(layers), len(layers) + 500)]
    wide = server.add_model(layers, tag="wide")
    assert TransferLimits().max_manifest_bytes - 300_000 < len(wide) <= TransferLimits().max_manifest_bytes
    cache_dir, socket, log = tmp_path / "node-cache", _socket_dir() / "csi.sock", tmp_path / "csi-node.log"
    process = _cli_plugin(server.host, cache_dir, kubelet, socket, log)
    channel = grpc.insecure_channel(f"unix://{socket}")
    plugin = Plugin(None, socket, channel)
    peaks = {"started": _peak_rss_mib(process.pid)}
    targets: list[Path] = []
    try:
        target = _target(kubelet, "files")
        _publish(plugin, f"oci://{server.host}/team/model@{digest_of(files)}", target, _secrets(server))
        targets.append(target)
        peaks["bundle"] = _peak_rss_mib(process.pid)
        wide_targets = [_target(kubelet, f"wide-{n}") for n in range(16)]
        calls = [_in_background(lambda target=target: _publish(
            plugin, f"oci://{server.host}/team/model@{digest_of(wide)}", target, _secrets(server)))
            for target in wide_targets]
        for thread, _ in calls:
            thread.join(300)
        assert all(outcome and not isinstance(outcome[0], BaseException) for _, outcome in calls), calls
        targets += wide_targets
        peaks["wide"] = _peak_rss_mib(process.pid)
        huge = "x" * (4 * 2**20 - 64 * 1024)
        calls = [_in_background(lambda n=n: _publish(plugin, huge, _target(kubelet, f"huge-{n}"), _secrets(server)))
                 for n in range(16)]
        for thread, outcome in calls:
            thread.join(60)
            assert outcome[0].code() == grpc.StatusCode.INVALID_ARGUMENT, outcome
        peaks["attributes"] = _peak_rss_mib(process.pid)
        print(f"csi-node peak RSS, MiB, after each step: {peaks}; manifest {len(wide)} bytes, {len(layers)} layers")
        assert peaks["attributes"] < 512, peaks
    finally:
        for target in targets:
            _unpublish(plugin, target)
        channel.close()
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(socket.parent, ignore_errors=True)


def test_a_record_the_kubelet_stopped_asking_about_stops_pinning_its_model_while_the_plugin_runs(
        hostile, serve_plugin, kubelet: Path) -> None:
    """A publish answered ABORTED keeps its record so the model just pulled is not evicted before the retry. If the
    retry never comes (the pod went away, and the kubelet lost the uncertain mount, so no unpublish either), the
    record must not pin the model until the plugin happens to restart: once it is not mounted, no call works on it
    and no publish rewrote it for stale_record_s, the reaper drops it. A later publish records and mounts again."""
    server, _ = hostile
    release = threading.Event()
    artifact = _held_model(server, release)
    plugin = serve_plugin(server, publish_wait_s=0.3, stale_record_s=1.0, reap_every_s=0.1)
    cache = plugin.plugin.config.cache
    target = _target(kubelet, "pod-1")
    error = _refused(lambda: _publish(plugin, artifact, target, _secrets(server)))
    assert error.code() == grpc.StatusCode.ABORTED, error.details()
    model = cache.model_folder(artifact.rpartition("@")[2])
    release.set()
    _until(lambda: (model / MARKER_FILE).exists(), "the pull to finish")
    assert cache.published_models() == {model.name}  # pinned while the kubelet may still retry
    _until(lambda: cache.published_models() == set(), "the stale record to be dropped")
    _publish(plugin, artifact, target, _secrets(server))
    time.sleep(1.5)  # mounted: the reaper leaves it, however old
    assert cache.published_models() == {model.name} and _mounts_at(target) == 1
    _unpublish(plugin, target)
    assert cache.publications_by_key() == {} and not _mounts_under(kubelet)


def test_a_digest_cached_from_one_teams_repository_is_asked_about_in_the_repository_the_pod_names(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """The cache is keyed by manifest digest alone, so the credential check must ask about the repository the pod
    names, not the one the cached copy came from: team B naming team A's digest in its own repository, which does
    not hold it, gets NOT_FOUND with the model on the node and mounted. Once team B pushes the same bytes (so the
    same digest) to its own repository, the registry says yes there and B's pod shares the node's one copy."""
    artifact, source = _push(registry, tmp_path, "iris")
    digest = artifact.rpartition("@")[2]
    plugin = serve_plugin(registry)
    _publish(plugin, artifact, _target(kubelet, "team-a-pod"))
    theirs = f"oci://{registry.host}/team-b/iris@{digest}"
    target = _target(kubelet, "team-b-pod")
    error = _refused(lambda: _publish(plugin, theirs, target))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "team-b/iris" in error.details(), error.details()
    assert not target.exists()
    pushed = push(source, registry.ref("team-b/iris", "1.0.0"), metadata=ModelMetadata(name="iris"),
                  plain_http=True, credentials=Credentials(USERNAME, PASSWORD))
    assert pushed.manifest_digest == digest
    _publish(plugin, theirs, target)
    assert plugin.plugin.stats.downloads == 1
    for pod in ("team-a-pod", "team-b-pod"):
        _unpublish(plugin, _target(kubelet, pod))


# --- Review findings on eviction, refusals and what a mount shows (notes/review-s3.md 3, 4, 6; csi-attack) -------


def test_eviction_takes_the_least_recently_used_model_a_warm_publish_and_an_unpublish_mark_it_used(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """Least recently used, not least recently pulled: a model a pod mounted from the cache, warm, is used then, and
    until the pod lets it go. The cache holds two of the three 6 MiB models."""
    artifacts = {name: _push(registry, tmp_path, name)[0] for name in ("alpha", "beta", "gamma")}
    plugin = serve_plugin(registry, max_size=14 * 2**20)
    cache = plugin.plugin.config.cache
    folders = {name: cache.model_folder(reference.rpartition("@")[2]) for name, reference in artifacts.items()}
    for name in ("alpha", "beta"):  # pulled in this order
        _publish(plugin, artifacts[name], _target(kubelet, f"pod-{name}-1"))
        _unpublish(plugin, _target(kubelet, f"pod-{name}-1"))
    # Both mounted warm, beta after alpha; alpha's pod stops last, so alpha was used last.
    _publish(plugin, artifacts["alpha"], _target(kubelet, "pod-alpha-2"))
    _publish(plugin, artifacts["beta"], _target(kubelet, "pod-beta-2"))
    _unpublish(plugin, _target(kubelet, "pod-beta-2"))
    _unpublish(plugin, _target(kubelet, "pod-alpha-2"))
    _publish(plugin, artifacts["gamma"], _target(kubelet, "pod-gamma"))
    assert folders["alpha"].is_dir() and not folders["beta"].exists() and folders["gamma"].is_dir()
    _unpublish(plugin, _target(kubelet, "pod-gamma"))
    # A warm publish whose mount went away without an unpublish (the node restarted): its publish was the last use.
    lost = _target(kubelet, "pod-alpha-3")
    _publish(plugin, artifacts["alpha"], lost)
    unmount(lost)
    plugin.plugin.recover()  # what the plugin does as it starts: the record of a target not mounted goes
    assert cache.published_models() == set()
    _publish(plugin, artifacts["beta"], _target(kubelet, "pod-beta-3"))
    assert folders["alpha"].is_dir() and not folders["gamma"].exists() and folders["beta"].is_dir()
    _unpublish(plugin, _target(kubelet, "pod-beta-3"))
    assert plugin.plugin.stats.downloads == 4 and cache.size() <= cache.max_bytes


def test_an_eviction_that_picked_a_model_before_a_warm_publish_recorded_it_never_leaves_the_pod_a_partial_model(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """The interleaving of review finding 4, forced: gamma's publish evicts alpha, and has checked the publication
    records (none names alpha) with alpha's lock held, when a warm publish of alpha records itself and goes to
    mount alpha. The eviction must not remove alpha under that mount: the publish waits for the model's lock, finds
    alpha gone (renamed aside whole), pulls it again, and mounts the whole model."""
    artifacts = {name: _push(registry, tmp_path, name)[0] for name in ("alpha", "beta", "gamma")}
    plugin = serve_plugin(registry, max_size=14 * 2**20)
    cache = plugin.plugin.config.cache
    for name in ("alpha", "beta"):
        _publish(plugin, artifacts[name], _target(kubelet, f"pod-{name}-1"))
        _unpublish(plugin, _target(kubelet, f"pod-{name}-1"))
    alpha = cache.model_folder(artifacts["alpha"].rpartition("@")[2])
    checked, go_on = threading.Event(), threading.Event()
    records = cache.published_models

    def records_then_hold() -> set[str]:
        found = records()
        if not checked.is_set():  # the first model eviction looks at: alpha, the least recently used
            checked.set()
            assert go_on.wait(30)
        return found

    cache.published_models = records_then_hold  # type: ignore[method-assign]
    evicting, evicted = _in_background(lambda: _publish(plugin, artifacts["gamma"], _target(kubelet, "pod-gamma")))
    _until(checked.is_set, "gamma's eviction to check alpha's records")
    target = _target(kubelet, "pod-alpha-2")
    publishing, published = _in_background(lambda: _publish(plugin, artifacts["alpha"], target))
    _until(lambda: alpha.name in records(), "the warm publish to record itself")
    publishing.join(timeout=1.0)  # the mount, unless the publish waits for alpha's lock
    go_on.set()
    for thread in (evicting, publishing):
        thread.join(timeout=CALL_TIMEOUT_S)
    assert not isinstance(evicted[0], BaseException), evicted
    assert not isinstance(published[0], BaseException), published
    _same_tree(target, tmp_path / "source-alpha")
    assert alpha.is_dir() and plugin.plugin.stats.downloads == 4  # alpha pulled again
    assert not [path for path in cache.models.iterdir() if ".old-" in path.name]
    for pod in ("pod-alpha-2", "pod-gamma"):
        _unpublish(plugin, _target(kubelet, pod))


def test_an_artifact_larger_than_the_whole_cache_is_refused_for_good_naming_the_blueprint_field(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """It can never fit on this node, so the answer is final (FAILED_PRECONDITION), not RESOURCE_EXHAUSTED, which
    the kubelet takes for "in progress" and retries forever (csi-kubelet notes: isFinalError)."""
    artifact, _ = _push(registry, tmp_path, "iris")
    plugin = serve_plugin(registry, max_size=4 * 2**20)
    target = _target(kubelet, "pod-1")
    error = _refused(lambda: _publish(plugin, artifact, target))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert "registry.nodeCache.maxSize" in error.details() and "never" in error.details(), error.details()
    assert registry.blobs_served() == [] and not target.exists()
    assert plugin.plugin.config.cache.publications_by_key() == {}


def test_a_team_mounting_a_digest_another_team_pulled_first_sees_nothing_of_that_teams_repository(
        registry: Registry, serve_plugin, kubelet: Path, tmp_path: Path) -> None:
    """The node's copy of a digest is shared by every repository that holds it: what team B's pod reads in its
    mount holds no trace of team A's repository, which pulled the digest onto the node first."""
    artifact, source = _push(registry, tmp_path, "iris")
    digest = artifact.rpartition("@")[2]
    pushed = push(source, registry.ref("team-b/iris", "1.0.0"), metadata=ModelMetadata(name="iris"), plain_http=True)
    assert pushed.manifest_digest == digest
    plugin = serve_plugin(registry)
    _publish(plugin, artifact, _target(kubelet, "team-a-pod"))
    target = _target(kubelet, "team-b-pod")
    _publish(plugin, f"oci://{registry.host}/team-b/iris@{digest}", target)
    assert plugin.plugin.stats.downloads == 1 and plugin.plugin.stats.hits == 1
    seen = [path for path in target.rglob("*") if path.is_file()]
    assert target / MARKER_FILE in seen
    for path in seen:
        assert b"team-a" not in path.read_bytes(), path
    marker = json.loads((target / MARKER_FILE).read_text())
    assert marker["manifest_digest"] == digest and "reference" not in marker
    for pod in ("team-a-pod", "team-b-pod"):
        _unpublish(plugin, _target(kubelet, pod))
    # A node cache an older plugin filled recorded the repository: the next plugin forgets it as it starts, and keeps
    # the model's age (least recently used eviction reads it).
    model = plugin.plugin.config.cache.model_folder(digest)
    old = model / MARKER_FILE
    old.chmod(0o644)
    old.write_text(json.dumps({**marker, "reference": artifact}, indent=2, sort_keys=True))
    os.utime(old, (1_700_000_000, 1_700_000_000))
    restarted = serve_plugin(registry)
    assert json.loads(old.read_text()) == marker and old.stat().st_mtime == 1_700_000_000
    assert old.stat().st_mode & 0o777 == 0o444 and list(restarted.plugin.config.cache.incoming.iterdir()) == []
    _publish(restarted, f"oci://{registry.host}/team-b/iris@{digest}", target)
    assert restarted.plugin.stats.downloads == 0 and b"team-a" not in (target / MARKER_FILE).read_bytes()
    _unpublish(restarted, target)


def test_a_registry_whose_head_names_another_digest_is_not_taken_at_its_word(
        hostile, serve_plugin, kubelet: Path) -> None:
    """The credential check's yes must be about the digest the pod names: a HEAD that answers 200 with another
    manifest's Docker-Content-Digest (a proxy answering by tag, a registry that lies) is refused, warm or cold, and
    nothing is mounted."""
    from hostile_registry import digest_of, file_layer

    server, _ = hostile
    asked = server.add_model([file_layer("weights.bin", os.urandom(64 << 10))], tag="asked")
    other = server.add_model([file_layer("weights.bin", os.urandom(64 << 10))], tag="other")
    artifact = f"oci://{server.host}/team/model@{digest_of(asked)}"
    plugin = serve_plugin(server)
    _publish(plugin, artifact, _target(kubelet, "pod-1"), _secrets(server))
    server.manifests[digest_of(asked)] = other  # the HEAD (and GET) of the asked digest now answer another manifest
    target = _target(kubelet, "pod-2")
    error = _refused(lambda: _publish(plugin, artifact, target, _secrets(server)))
    assert error.code() == grpc.StatusCode.DATA_LOSS, error.details()
    assert "Docker-Content-Digest" in error.details() and digest_of(other) in error.details(), error.details()
    assert not target.exists() and _mounts_under(kubelet) == [str(_target(kubelet, "pod-1"))]
    assert len(plugin.plugin.config.cache.publications_by_key()) == 1
    _unpublish(plugin, _target(kubelet, "pod-1"))
