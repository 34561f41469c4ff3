"""shipway synth: golden output for kind-dev, determinism, and every object valid for Kubernetes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shipway import catalog
from crd_support import crd_errors, is_core
from shipway.platform.synth import SECRET, UNKNOWN, synth

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "kind-dev"
UPDATE = os.environ.get("SHIPWAY_UPDATE_GOLDEN") == "1"
KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"  # the one version every target runs


@pytest.fixture(scope="module", params=["kind-dev", "eks-prod", "gke-prod"])
def synthesised(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / request.param
    synth(ROOT / "blueprints" / f"{request.param}.yaml", out)
    return out


def _tree(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_kind_dev_matches_golden(tmp_path: Path) -> None:
    out = tmp_path / "kind-dev"
    synth(ROOT / "blueprints" / "kind-dev.yaml", out)
    produced = _tree(out)
    if UPDATE:
        import shutil

        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    expected = _tree(GOLDEN)
    assert sorted(produced) == sorted(expected), "file set changed; review, then SHIPWAY_UPDATE_GOLDEN=1 pytest"
    for name, text in expected.items():
        assert produced[name] == text, f"{name} differs from golden; review, then SHIPWAY_UPDATE_GOLDEN=1 pytest"


@pytest.mark.parametrize("name", ["kind-dev", "eks-prod"])
def test_two_runs_are_byte_identical(tmp_path: Path, name: str) -> None:
    # One run in this process, one in a fresh interpreter: hash seeds and map orders differ between them.
    synth(ROOT / "blueprints" / f"{name}.yaml", tmp_path / "a")
    subprocess.run([sys.executable, "-m", "shipway", "synth", str(ROOT / "blueprints" / f"{name}.yaml"),
                    "-o", str(tmp_path / "b"), "-q", "--no-charts"], check=True, capture_output=True,
                   env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_output_layout(synthesised: Path) -> None:
    plan = json.loads((synthesised / "plan.json").read_text())
    assert plan["resources"] and all({"type", "name", "parent", "provider", "dependencies", "inputs"} <= set(r)
                                      for r in plan["resources"])
    profile = json.loads((synthesised / "platform.json").read_text())
    assert profile["environments"] and profile["registry"]["url"]
    assert list((synthesised / "manifests").glob("*.yaml"))
    for release in (synthesised / "releases").glob("*.yaml"):
        data = yaml.safe_load(release.read_text())
        assert {"name", "chart", "repo", "version", "namespace", "values"} <= set(data)


def test_cloud_outputs_are_marked_unknown(tmp_path: Path) -> None:
    synth(ROOT / "blueprints" / "eks-prod.yaml", tmp_path / "eks")
    plan = (tmp_path / "eks" / "plan.json").read_text()
    assert UNKNOWN in plan
    assert "_id" not in json.dumps([r["inputs"] for r in json.loads(plan)["resources"]
                                    if r["type"].startswith("eks:")])


def _objects(folder: Path) -> list[dict]:
    objects = [yaml.safe_load(path.read_text()) for path in sorted((folder / "manifests").glob("*.yaml"))]
    for obj in objects:
        # The engine sees a secret property as one opaque value; its schema type is checked by Pulumi, not here.
        for key in ("stringData", "data"):
            if obj.get(key) == SECRET:
                obj[key] = {"masked": "value"}
    return objects


def test_core_objects_pass_kubernetes_validate_strict(synthesised: Path) -> None:
    checked = 0
    for obj in _objects(synthesised):
        if not is_core(obj["apiVersion"]):
            continue
        if obj["kind"] == "Node":
            # A NodePatch is a partial object by design: only labels and taints are applied.
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=False)
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked > 5


def test_custom_resources_pass_their_crd_schema(synthesised: Path, crd_schemas: Path) -> None:
    checked = 0
    for obj in _objects(synthesised):
        if is_core(obj["apiVersion"]):
            continue
        errors = crd_errors(obj)
        assert not errors, (obj["kind"], obj["metadata"]["name"], errors)
        checked += 1
    assert checked >= 1


def test_a_failed_replace_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shipway.files as files_module
    import shipway.platform.synth as synth_module

    result = synth_module.run_program(ROOT / "blueprints" / "kind-dev.yaml")
    out = tmp_path / "out"
    synth_module.write(result, out)
    before = (out / "plan.json").read_text()
    real_replace = os.replace
    calls = []

    def failing_replace(source: object, target: object) -> None:
        calls.append(source)
        if len(calls) == 2:  # the staged output onto out/, after out/ was moved aside
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(files_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        synth_module.write(result, out)
    assert (out / "plan.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
