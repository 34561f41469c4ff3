"""What the CSI node plugin accepts before it touches the registry or a mount: attributes, targets, secrets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import pytest

from shipway.artifacts.auth import docker_config_credentials
from shipway.artifacts.csi.mounts import MS_NOEXEC
from shipway.artifacts.csi.node import (
    CsiError,
    check_target,
    endpoint_path,
    mount_flags,
    parse_attributes,
    registry_credentials,
)
from shipway.artifacts.errors import AuthError

REGISTRY = "registry.shipway.internal:5000"
DIGEST = "sha256:" + "ab" * 32


def _refused(call) -> str:  # noqa: ANN001 - a thunk
    with pytest.raises(CsiError) as raised:
        call()
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return raised.value.message


def test_an_artifact_by_digest_on_the_nodes_registry_is_accepted_with_its_bound() -> None:
    artifact = parse_attributes({"artifact": f"oci://{REGISTRY}/ml/iris@{DIGEST}", "maxSize": "20Gi",
                                 "csi.storage.k8s.io/pod.name": "iris-0", "csi.storage.k8s.io/ephemeral": "true"},
                                REGISTRY)
    assert (artifact.reference.repository, artifact.reference.digest, artifact.max_bytes) == ("ml/iris", DIGEST,
                                                                                               20 * 2**30)


def test_every_attribute_the_kubelet_adds_is_accepted() -> None:
    """podInfoOnMount adds pod.name, pod.namespace, pod.uid, serviceAccount.name and ephemeral (kubernetes
    pkg/volume/csi/csi_mounter.go podAttributes/getPodInfoAttrs); tokenRequests would add serviceAccount.tokens
    (podServiceAccountTokenAttrs). The kubelet merges them over the pod's volumeAttributes (mergeMap)."""
    kubelet = {f"csi.storage.k8s.io/{key}": "x" for key in (
        "pod.name", "pod.namespace", "pod.uid", "serviceAccount.name", "ephemeral", "serviceAccount.tokens")}
    artifact = parse_attributes({"artifact": f"oci://{REGISTRY}/ml/iris@{DIGEST}", **kubelet}, REGISTRY)
    assert artifact.reference.digest == DIGEST


def test_mount_flags_are_honoured_or_refused_by_name() -> None:
    assert mount_flags([]) == 0
    assert mount_flags(["ro", "nosuid", "nodev", "noatime", "nodiratime", "relatime"]) == 0
    assert mount_flags(["noexec", "ro"]) == MS_NOEXEC
    for flag in ("rw", "exec", "suid", "dev", "sync", "context=system_u:object_r:container_file_t:s0"):
        assert repr(flag) in _refused(lambda flag=flag: mount_flags([flag]))


@pytest.mark.parametrize(("attributes", "hint"), [
    ({}, "is missing"),
    ({"artifact": f"oci://{REGISTRY}/ml/iris:1.0.0"}, "names a tag"),
    ({"artifact": f"oci://other.example/ml/iris@{DIGEST}"}, f"pulls from {REGISTRY} only"),
    ({"artifact": f"oci://{REGISTRY}/ML/Iris@{DIGEST}"}, "lower-case"),
    ({"artifact": f"oci://{REGISTRY}/ml/iris@sha256:abc"}, "64 hex digits"),
    ({"artifact": f"oci://{REGISTRY}/ml/iris@{DIGEST}", "maxSize": "lots"}, "expected a size"),
    ({"artifact": f"oci://{REGISTRY}/ml/iris@{DIGEST}", "maxsize": "1Gi"}, "unknown volumeAttributes ['maxsize']"),
])
def test_attributes_the_plugin_refuses_say_what_to_fix(attributes: dict[str, str], hint: str) -> None:
    assert hint in _refused(lambda: parse_attributes(attributes, REGISTRY))


def test_a_target_inside_a_pods_folder_is_accepted(tmp_path: Path) -> None:
    kubelet = tmp_path / "kubelet"
    (kubelet / "pods").mkdir(parents=True)
    target = kubelet / "pods" / "uid-1" / "volumes" / "kubernetes.io~csi" / "model" / "mount"
    assert check_target(str(target), kubelet) == target


def test_targets_outside_a_pod_are_refused_symlinks_included(tmp_path: Path) -> None:
    kubelet = tmp_path / "kubelet"
    pods = kubelet / "pods"
    (pods / "uid-1").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (pods / "uid-1" / "volumes").symlink_to(tmp_path / "etc")
    (pods / "uid-2").symlink_to("/")
    cases = {
        "relative": "var/lib/kubelet/pods/uid-1/mount",
        "empty": "",
        "dot-dot": f"{pods}/uid-1/../../../etc/mount",
        "dot-dot that stays inside": f"{pods}/uid-1/volumes/../mount",
        "outside": str(tmp_path / "etc" / "mount"),
        "the pods folder itself": str(pods),
        "a symlink out of a pod": f"{pods}/uid-1/volumes/kubernetes.io~csi/model/mount",
        "a pod that is a symlink to /": f"{pods}/uid-2/etc",
        "a prefix look-alike": f"{pods}-evil/uid-1/mount",
    }
    for case, target in cases.items():
        message = _refused(lambda target=target: check_target(target, kubelet))
        assert "pods/<pod uid>/" in message, (case, message)


def test_the_pull_secret_gives_the_registrys_credentials_in_either_form() -> None:
    token = base64.b64encode(b"team-a-pull:s3cret").decode()
    for entry in ({"auth": token}, {"username": "team-a-pull", "password": "s3cret"}):
        for server in (REGISTRY, f"https://{REGISTRY}/v1/"):
            config = json.dumps({"auths": {"other.example": {"auth": "eDp5"}, server: entry}})
            credentials = registry_credentials({".dockerconfigjson": config}, REGISTRY)
            assert (credentials.username, credentials.password) == ("team-a-pull", "s3cret")


def test_a_pull_secret_the_plugin_cannot_use_is_refused_naming_the_problem() -> None:
    assert "no .dockerconfigjson" in _refused(lambda: registry_credentials({"token": "x"}, REGISTRY))
    assert "not for registry.shipway" in _refused(lambda: registry_credentials(
        {".dockerconfigjson": json.dumps({"auths": {"other.example": {"auth": "eDp5"}}})}, REGISTRY))
    for text in ("not json", "[]", '{"auths": []}', json.dumps({"auths": {REGISTRY: {"auth": "!!"}}})):
        with pytest.raises(AuthError):
            docker_config_credentials(text, REGISTRY, "the Secret")
    # No Secret at all: anonymous, and the registry decides.
    assert registry_credentials({}, REGISTRY).username is None


def test_a_token_the_kubelet_adds_to_the_secrets_is_not_taken_for_the_pull_secret() -> None:
    """A CSIDriver with serviceAccountTokenInSecrets (beta and on by default in 1.35: kubernetes/website
    feature-gates/CSIServiceAccountTokenSecrets.md) gets the pod's tokens in `secrets` under
    csi.storage.k8s.io/serviceAccount.tokens, beside the nodePublishSecretRef Secret's keys or alone."""
    token = {"csi.storage.k8s.io/serviceAccount.tokens": json.dumps({"": {"token": "t"}})}
    assert registry_credentials(token, REGISTRY).source == "no nodePublishSecretRef"
    auth = base64.b64encode(b"team-a:secret").decode()
    secret = {".dockerconfigjson": json.dumps({"auths": {REGISTRY: {"auth": auth}}})}
    assert registry_credentials({**secret, **token}, REGISTRY).username == "team-a"


def test_the_endpoint_is_a_unix_socket_path() -> None:
    assert endpoint_path("unix:///csi/csi.sock") == Path("/csi/csi.sock")
    for endpoint in ("tcp://127.0.0.1:10000", "unix://relative.sock", "/csi/csi.sock"):
        with pytest.raises(ValueError):
            endpoint_path(endpoint)


def test_a_volume_id_with_slashes_or_dots_names_no_file_the_record_is_named_by_its_hash() -> None:
    """volume_id comes from the kubelet but is a free string to the gRPC call; the record's file name is a hash of it
    and the target, never the string itself."""
    from pathlib import Path

    from shipway.artifacts.csi.node import publication_key

    for volume_id in ("../../../etc/cron.d/x", "a/b", "\0", "x" * 5000):
        key = publication_key(volume_id, Path("/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/m/mount"))
        assert len(key) == 64 and set(key) <= set("0123456789abcdef")


def test_a_share_of_the_disk_is_that_share_of_the_cache_folders_filesystem(tmp_path: Path) -> None:
    """`--max-size 40%` (the blueprint's default) bounds each node's cache by its own disk, whatever its size."""
    import os

    from shipway.cli.artifacts import _cache_bytes

    disk = os.statvfs(tmp_path)
    assert _cache_bytes("40%", tmp_path / "cache") == disk.f_blocks * disk.f_frsize * 40 // 100
    assert (tmp_path / "cache").is_dir()
    assert _cache_bytes("200Gi", tmp_path / "cache") == 200 * 2**30


def test_the_stats_line_walks_the_cache_at_most_once_in_its_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm publish takes milliseconds; walking a cache of 100,000 files for its log line takes about 0.2 s, so
    the line's byte count is at most USED_BYTES_TTL_S old instead of walked on every publish."""
    from shipway.artifacts.cache import NodeCache
    from shipway.artifacts.csi.node import USED_BYTES_TTL_S, NodeConfig, NodePlugin

    (tmp_path / "kubelet" / "pods").mkdir(parents=True)
    plugin = NodePlugin(NodeConfig(NodeCache(tmp_path / "cache", 2**30, keep_recent_s=0.0), "127.0.0.1:1", "node-1",
                                   tmp_path / "kubelet"))
    try:
        walks: list[int] = []
        real = plugin.config.cache.size
        monkeypatch.setattr(plugin.config.cache, "size", lambda: walks.append(1) or real())
        clock = [1000.0]
        monkeypatch.setattr("shipway.artifacts.csi.node.time.monotonic", lambda: clock[0])
        plugin._log_stats()
        plugin._log_stats()
        assert len(walks) == 1
        clock[0] += USED_BYTES_TTL_S + 1
        plugin._log_stats()
        assert len(walks) == 2
    finally:
        plugin.close()
