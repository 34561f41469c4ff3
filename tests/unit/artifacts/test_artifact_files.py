"""Planning a push: file collection, layer grouping, the deterministic bundle and manifest."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from shipway.artifacts.bundle import extract_bundle, write_bundle
from shipway.artifacts.digest import file_digest, verify_file
from shipway.artifacts.errors import ArtifactError, DigestMismatchError
from shipway.artifacts.layout import (
    ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    DRIFT_PROFILE_MEDIA_TYPE,
    FILE_MEDIA_TYPE,
    LARGE_FILE_BYTES,
    MARKER_FILE,
    ModelMetadata,
)
from shipway.artifacts.push import _write_config, build_manifest, collect_files, plan_layers


def _model(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(b"\1" * LARGE_FILE_BYTES)
    (root / "config.json").write_text("{}")
    (root / "sub" / "vocab.txt").write_text("a b c")
    (root / "reference_profile.json").write_text('{"age": []}')
    (root / MARKER_FILE).write_text("{}")
    return root


def test_collect_files_walks_the_tree_and_skips_the_pull_marker(tmp_path: Path) -> None:
    titles = [title for title, _ in collect_files(_model(tmp_path / "m"))]
    assert titles == ["big.bin", "config.json", "reference_profile.json", "sub/vocab.txt"]


def test_collect_files_refuses_symlinks_and_empty_directories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no files"):
        collect_files(tmp_path / "empty")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "w").symlink_to("/etc/hostname")
    with pytest.raises(ArtifactError, match="symbolic link"):
        collect_files(tmp_path / "linked")


def test_plan_groups_small_files_and_separates_big_ones_and_the_drift_profile(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    layers = plan_layers(collect_files(model), "reference_profile.json", tmp_path)
    kinds = {layer.title: layer.media_type for layer in layers}
    assert kinds == {
        "big.bin": FILE_MEDIA_TYPE,
        "reference_profile.json": DRIFT_PROFILE_MEDIA_TYPE,
        "small-files.tar": BUNDLE_MEDIA_TYPE,
    }
    bundle = next(layer for layer in layers if layer.files)
    assert bundle.files == ("config.json", "sub/vocab.txt")
    assert layers[0].digest == file_digest(model / "big.bin")[0]


def test_the_bundle_digest_ignores_times_and_owners(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    files = [("config.json", model / "config.json"), ("sub/vocab.txt", model / "sub" / "vocab.txt")]
    write_bundle(files, tmp_path / "first.tar")
    os.utime(model / "config.json", (1, 1))
    write_bundle(list(reversed(files)), tmp_path / "second.tar")
    assert file_digest(tmp_path / "first.tar") == file_digest(tmp_path / "second.tar")


def test_the_manifest_is_byte_stable_and_typed(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    layers = plan_layers(collect_files(model), None, tmp_path)
    metadata = ModelMetadata(name="iris", version="1")
    config = _write_config(layers, metadata, tmp_path)
    raw = build_manifest(layers, config, metadata)
    assert raw == build_manifest(layers, config, metadata)
    manifest = json.loads(raw)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert [layer["digest"] for layer in manifest["layers"]] == [layer.digest for layer in layers]
    listed = {entry["path"] for entry in json.loads(config.path.read_bytes())["files"]}
    assert listed == {"big.bin", "config.json", "reference_profile.json", "sub/vocab.txt"}


def test_extraction_refuses_a_bundle_that_differs_from_its_listing(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    write_bundle([("a", tmp_path / "a")], tmp_path / "b.tar")
    with pytest.raises(DigestMismatchError, match="lists"):
        extract_bundle(tmp_path / "b.tar", tmp_path / "out", ["a", "b"])
    assert extract_bundle(tmp_path / "b.tar", tmp_path / "out", ["a"]) == ["a"]


def test_extraction_refuses_paths_outside_the_destination(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "evil.tar", "w") as archive:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArtifactError, match="outside the model"):
        extract_bundle(tmp_path / "evil.tar", tmp_path / "out", ["../escaped"])
    assert not (tmp_path / "escaped").exists()


def test_verify_file_names_both_digests(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_bytes(b"weights")
    digest, size = file_digest(path)
    verify_file(path, digest, size)
    path.write_bytes(b"weightz")
    with pytest.raises(DigestMismatchError, match=digest):
        verify_file(path, digest, size)
