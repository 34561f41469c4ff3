"""A pull refuses a manifest whose digests, sizes or file lists could steer writes outside its staging folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from shipway.artifacts import pull as pull_module
from shipway.artifacts.errors import ArtifactError, BadReferenceError
from shipway.artifacts.layout import (
    ANNOTATION_BUNDLE_FILES,
    ANNOTATION_TITLE,
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    FILE_MEDIA_TYPE,
    parse_reference,
)

REF = "oci://registry.example.com/team/model:1"
GOOD = "sha256:" + "ab" * 32


def _manifest(*layers: dict[str, Any], config: Any = None) -> dict[str, Any]:
    return {"schemaVersion": 2, "artifactType": ARTIFACT_TYPE,
            "config": config or {"mediaType": CONFIG_MEDIA_TYPE, "digest": GOOD, "size": 2},
            "layers": list(layers)}


class _FakeClient:
    """Answers one manifest; writes blobs the way RegistryClient does: open the target, then check the digest."""

    manifest: dict[str, Any] = {}

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def get_manifest(self, _reference: Any) -> tuple[bytes, str]:
        raw = json.dumps(self.manifest).encode()
        return raw, f"sha256:{hashlib.sha256(raw).hexdigest()}"

    def pull_blob(self, _ref: Any, digest: str, size: int, target: Path, done: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            sink.write(b"not the blob")
        target.unlink()
        raise ArtifactError(f"blob {digest} is corrupt")


def _pull(monkeypatch: pytest.MonkeyPatch, manifest: dict[str, Any], destination: Path) -> None:
    monkeypatch.setattr(_FakeClient, "manifest", manifest)
    monkeypatch.setattr(pull_module, "RegistryClient", _FakeClient)
    pull_module.pull(REF, destination)


def test_a_layer_digest_with_path_segments_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.tar"
    victim.write_bytes(b"a user's archive")
    # The bundle is downloaded to staging/.bundle-<digest hex>.tar: this digest would name ../victim.tar.
    evil = {"mediaType": BUNDLE_MEDIA_TYPE, "digest": "sha256:/../../victim", "size": 1,
            "annotations": {ANNOTATION_TITLE: "small-files.tar", ANNOTATION_BUNDLE_FILES: "[]"}}
    with pytest.raises(ArtifactError, match="expected sha256: and 64 hex digits"):
        _pull(monkeypatch, _manifest(evil), tmp_path / "model")
    assert victim.read_bytes() == b"a user's archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.tar"]


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        (_manifest({"mediaType": FILE_MEDIA_TYPE, "size": 1, "annotations": {ANNOTATION_TITLE: "w"}}), "digest None"),
        (_manifest({"mediaType": FILE_MEDIA_TYPE, "digest": GOOD, "size": "1", "annotations": {ANNOTATION_TITLE: "w"}}),
         "expected a byte count"),
        (_manifest({"mediaType": BUNDLE_MEDIA_TYPE, "digest": GOOD, "size": 1,
                    "annotations": {ANNOTATION_TITLE: "small-files.tar", ANNOTATION_BUNDLE_FILES: "not json"}}),
         "not a JSON list"),
        (_manifest(config={"mediaType": CONFIG_MEDIA_TYPE, "digest": "md5:x", "size": 2}), "digest 'md5:x'"),
        (_manifest("a layer"), "malformed config or layer"),
        (_manifest({"mediaType": FILE_MEDIA_TYPE, "digest": GOOD, "size": 1, "annotations": {ANNOTATION_TITLE: 7}}),
         "titled 7"),
    ],
)
def test_malformed_manifests_are_errors_not_tracebacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: dict[str, Any], words: str
) -> None:
    with pytest.raises(ArtifactError, match=words):
        _pull(monkeypatch, manifest, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_bundle_file_names_and_titles_must_stay_inside_the_model() -> None:
    bundle = {"mediaType": BUNDLE_MEDIA_TYPE, "digest": GOOD, "size": 1,
              "annotations": {ANNOTATION_TITLE: "small-files.tar", ANNOTATION_BUNDLE_FILES: '["../x"]'}}
    with pytest.raises(BadReferenceError):
        pull_module._check_manifest(json.dumps(_manifest(bundle)).encode(), parse_reference(REF))
    for title in (".", "a\0b"):
        layer = {"mediaType": FILE_MEDIA_TYPE, "digest": GOOD, "size": 1, "annotations": {ANNOTATION_TITLE: title}}
        with pytest.raises(BadReferenceError):
            pull_module._check_manifest(json.dumps(_manifest(layer)).encode(), parse_reference(REF))
