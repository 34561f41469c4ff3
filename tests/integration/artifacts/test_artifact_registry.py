"""Model push and pull against a real docker-registry on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from shipway.artifacts.auth import resolve_credentials
from shipway.artifacts.digest import file_digest
from shipway.artifacts.errors import (
    AuthError,
    DigestMismatchError,
    RegistryUnavailableError,
    TagExistsError,
)
from shipway.artifacts.layout import (
    ANNOTATION_FRAMEWORK,
    ANNOTATION_GATE_REPORT_DIGEST,
    ANNOTATION_NAME,
    ANNOTATION_TITLE,
    ANNOTATION_TRAINING_DATA_DIGEST,
    ANNOTATION_VERSION,
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    DRIFT_PROFILE_MEDIA_TYPE,
    FILE_MEDIA_TYPE,
    MARKER_FILE,
    PASSWORD_ENV,
    USERNAME_ENV,
    ModelMetadata,
)
from shipway.artifacts.metadata import describe_model
from shipway.artifacts.pull import pull
from shipway.artifacts.push import push
from shipway.artifacts.registry import RetryPolicy

pytestmark = pytest.mark.integration

GIB = 1024**3
MIB = 1024**2
PATIENT_RETRY = RetryPolicy(attempts=6, first_delay_s=0.2, max_delay_s=1.0)
NO_RETRY = RetryPolicy(attempts=1)
MODEL_YAML = """\
name: churn
team: growth
version: 2.1.0
runtime: sklearn
drift: {referenceProfile: reference_profile.json}
"""
# The ModelSpec holds no digests: CI passes them as flags.
DIGESTS = ModelMetadata(training_data_digest="sha256:" + "1" * 64, gate_report_digest="sha256:" + "2" * 64)


def _small_model(root: Path, random_file: Callable[[Path, int, int], Path], weights_bytes: int = 20 * MIB) -> Path:
    random_file(root / "weights.bin", weights_bytes, 7)
    (root / "model.yaml").write_text(MODEL_YAML)
    (root / "reference_profile.json").write_text('{"features": {"age": [1, 2, 3]}}')
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return root


def _manifest(host: str, repository: str, tag: str) -> dict[str, object]:
    response = requests.get(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _same_tree(left: Path, right: Path) -> None:
    """Assert two directories hold the same files with the same digests (ignoring the pull marker)."""
    def listing(root: Path) -> dict[str, tuple[str, int]]:
        return {
            p.relative_to(root).as_posix(): file_digest(p)
            for p in root.rglob("*")
            if p.is_file() and p.name != MARKER_FILE
        }

    assert listing(left) == listing(right)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def test_round_trip_of_a_multi_file_model_with_a_1_gib_file(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file)
    big = random_file(model / "shards" / "model-00001.safetensors", GIB, 42)
    out = tmp_path / "pulled" / "model"
    try:
        metadata, drift = describe_model(model, None, DIGESTS)
        pushed = push(model, registry.ref("team/churn", "2.1.0"), metadata=metadata, drift_profile=drift, plain_http=True)
        pulled = pull(registry.ref("team/churn", "2.1.0"), out, plain_http=True)

        assert pulled.manifest_digest == pushed.manifest_digest
        assert pulled.files == (
            "model.yaml", "reference_profile.json", "shards/model-00001.safetensors", "tokenizer/vocab.txt", "weights.bin"
        )
        _same_tree(model, out)
        assert pushed.bytes_uploaded > GIB
        manifest = _manifest(registry.host, "team/churn", "2.1.0")
        assert manifest["artifactType"] == ARTIFACT_TYPE
        assert manifest["annotations"] == {
            ANNOTATION_NAME: "churn",
            ANNOTATION_VERSION: "2.1.0",
            ANNOTATION_FRAMEWORK: "sklearn",
            ANNOTATION_TRAINING_DATA_DIGEST: "sha256:" + "1" * 64,
            ANNOTATION_GATE_REPORT_DIGEST: "sha256:" + "2" * 64,
        }
        kinds = {layer["annotations"][ANNOTATION_TITLE]: layer["mediaType"] for layer in manifest["layers"]}
        assert kinds == {
            "reference_profile.json": DRIFT_PROFILE_MEDIA_TYPE,
            "shards/model-00001.safetensors": FILE_MEDIA_TYPE,
            "weights.bin": FILE_MEDIA_TYPE,
            "small-files.tar": BUNDLE_MEDIA_TYPE,
        }
        assert json.loads((out / MARKER_FILE).read_text())["manifest_digest"] == pushed.manifest_digest
    finally:
        big.unlink(missing_ok=True)
        (out / "shards" / "model-00001.safetensors").unlink(missing_ok=True)


def test_re_push_of_a_new_version_sends_only_changed_blobs(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=40 * MIB)
    first = push(model, registry.ref("team/churn", "1"), plain_http=True)
    stored_after_first = registry.stored_blob_bytes()
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\nc\nd\n")
    second = push(model, registry.ref("team/churn", "2"), plain_http=True)

    assert {layer.title for layer in second.skipped} == {"weights.bin", "reference_profile.json"}
    assert {layer.title for layer in second.uploaded} == {"small-files.tar", "config.json"}
    assert second.bytes_uploaded < MIB < first.bytes_uploaded
    assert registry.stored_blob_bytes() - stored_after_first < MIB


def test_tags_are_immutable_unless_forced(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=MIB)
    ref = registry.ref("team/churn", "3.0.0")
    original = push(model, ref, plain_http=True)

    assert push(model, ref, plain_http=True).unchanged
    (model / "weights.bin").write_bytes(b"retrained")
    with pytest.raises(TagExistsError, match="--force") as refused:
        push(model, ref, plain_http=True)
    assert original.manifest_digest in str(refused.value)
    assert _manifest(registry.host, "team/churn", "3.0.0")["layers"] == _manifest(
        registry.host, "team/churn", f"{original.manifest_digest}"
    )["layers"]

    forced = push(model, ref, plain_http=True, force=True)
    assert forced.manifest_digest != original.manifest_digest
    assert pull(ref, tmp_path / "out", plain_http=True).manifest_digest == forced.manifest_digest


class _CrashOnce:
    """A progress sink that kills the registry once a file is partly sent, and restarts it a moment later."""

    def __init__(self, registry, title: str, after_bytes: int, down_s: float) -> None:  # noqa: ANN001
        self.registry, self.title, self.after_bytes, self.down_s = registry, title, after_bytes, down_s
        self.restart: threading.Thread | None = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if what == f"push {self.title}" and done >= self.after_bytes and self.restart is None:
            self.registry.kill()
            self.restart = threading.Thread(target=self._restart_later)
            self.restart.start()

    def _restart_later(self) -> None:
        time.sleep(self.down_s)
        self.registry.start()

    def wait_until_restarted(self) -> None:
        assert self.restart is not None, "the registry was never killed"
        self.restart.join(timeout=30)


def test_a_rerun_after_the_registry_restarts_mid_push_completes_the_artifact(
    registry, random_file, tmp_path: Path
) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=64 * MIB)
    ref = registry.ref("team/churn", "4")
    crash = _CrashOnce(registry, "weights.bin", after_bytes=16 * MIB, down_s=0.5)

    with pytest.raises(RegistryUnavailableError, match="rerun"):
        push(model, ref, plain_http=True, retry=NO_RETRY, chunk_bytes=8 * MIB, progress=crash)
    crash.wait_until_restarted()
    assert requests.head(f"http://{registry.host}/v2/team/churn/manifests/4", timeout=5).status_code == 404

    rerun = push(model, ref, plain_http=True, retry=NO_RETRY, chunk_bytes=8 * MIB)
    assert {layer.title for layer in rerun.skipped} == {"reference_profile.json"}
    out = tmp_path / "out"
    assert pull(ref, out, plain_http=True).manifest_digest == rerun.manifest_digest
    _same_tree(model, out)


def test_retries_ride_through_a_registry_restart_in_one_push(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=64 * MIB)
    ref = registry.ref("team/churn", "5")
    crash = _CrashOnce(registry, "weights.bin", after_bytes=16 * MIB, down_s=0.3)

    pushed = push(model, ref, plain_http=True, retry=PATIENT_RETRY, chunk_bytes=8 * MIB, progress=crash)
    crash.wait_until_restarted()
    out = tmp_path / "out"
    assert pull(ref, out, plain_http=True).manifest_digest == pushed.manifest_digest
    _same_tree(model, out)


def test_credentials_are_checked_and_wrong_ones_give_a_clear_error(
    auth_registry, random_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no stray ~/.docker/config.json
    model = _small_model(tmp_path / "model", random_file, weights_bytes=MIB)
    ref = auth_registry.ref("team/churn", "1")

    wrong = resolve_credentials("shipway", "not-the-password")
    with pytest.raises(AuthError, match=r"refused .* 401 .* using --username/--password: check the username"):
        push(model, ref, plain_http=True, credentials=wrong)
    with pytest.raises(AuthError, match="asks for credentials and none were found"):
        push(model, ref, plain_http=True, credentials=resolve_credentials(environ={}))

    from_env = resolve_credentials(environ={USERNAME_ENV: auth_registry.username, PASSWORD_ENV: auth_registry.password})
    pushed = push(model, ref, plain_http=True, credentials=from_env)

    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    secret = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {auth_registry.host: {"auth": secret}}}))
    from_config = resolve_credentials(environ={"DOCKER_CONFIG": str(config.parent)})
    assert from_config.docker_config == config
    assert pull(ref, tmp_path / "out", plain_http=True, credentials=from_config).manifest_digest == pushed.manifest_digest


def test_a_corrupt_blob_fails_the_pull_and_leaves_nothing(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=17 * MIB)
    pushed = push(model, registry.ref("team/churn", "6"), plain_http=True)
    weights = next(layer for layer in pushed.uploaded if layer.title == "weights.bin")
    hex_digest = weights.digest.removeprefix("sha256:")
    stored = registry.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"
    stored.write_bytes(b"\0" * weights.size)

    out = tmp_path / "pulled" / "model"
    with pytest.raises(DigestMismatchError, match=f"blob {weights.digest} .* is corrupt"):
        pull(registry.ref("team/churn", "6"), out, plain_http=True)
    assert not out.exists()
    assert _leftovers(out.parent) == []


def test_an_interrupted_pull_leaves_nothing_that_looks_complete(registry, random_file, tmp_path: Path) -> None:
    model = _small_model(tmp_path / "model", random_file, weights_bytes=8 * MIB)
    push(model, registry.ref("team/churn", "7"), plain_http=True)

    def interrupt(what: str, done: int, total: int) -> None:
        if done >= 2 * MIB:
            raise KeyboardInterrupt

    out = tmp_path / "pulled" / "model"
    with pytest.raises(KeyboardInterrupt):
        pull(registry.ref("team/churn", "7"), out, plain_http=True, progress=interrupt)
    assert not out.exists()
    assert _leftovers(out.parent) == []

    assert not pull(registry.ref("team/churn", "7"), out, plain_http=True).up_to_date
    assert pull(registry.ref("team/churn", "7"), out, plain_http=True).up_to_date
