"""Golden rendered objects for four models; every object valid for the catalog's Kubernetes version or its CRD schema."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
import pytest

from crd_support import crd_errors, is_core
from delivery_cases import CASES, DIGESTS, ROOT, model, profile_of
from shipway import catalog
from shipway.delivery.promote import rendered_files
from shipway.delivery.render import render

GOLDEN = ROOT / "tests" / "golden" / "models"
UPDATE = os.environ.get("SHIPWAY_UPDATE_GOLDEN") == "1"
KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"  # the one version every target runs


def _rendered(case: str) -> list[dict]:
    blueprint, environment, stable = CASES[case]
    return render(model(case), profile_of(blueprint), environment, stable, artifact_digest=DIGESTS.get(case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden(case: str) -> None:
    produced = "---\n".join(rendered_files(_rendered(case)).values())
    golden = GOLDEN / f"{case}.yaml"
    if UPDATE:
        golden.write_text(produced)
    assert golden.is_file(), f"no golden file {golden}; run SHIPWAY_UPDATE_GOLDEN=1 pytest and review it"
    assert produced == golden.read_text(), f"{case} differs from golden; review, then SHIPWAY_UPDATE_GOLDEN=1 pytest"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_deterministic(case: str) -> None:
    assert rendered_files(_rendered(case)) == rendered_files(_rendered(case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_core_objects_pass_strict_validation(case: str) -> None:
    checked = set()
    for obj in _rendered(case):
        if is_core(obj["apiVersion"]):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked.add(obj["kind"])
    assert {"Service", "PodDisruptionBudget"} <= checked


@pytest.mark.parametrize("case", sorted(CASES))
def test_rollout_pod_template_passes_strict_validation_as_a_deployment(case: str) -> None:
    # The Rollout CRD schema leaves the pod template loose; a Deployment holds it to the core schema.
    rollout = _rendered(case)[0]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": rollout["metadata"],
                  "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]}}
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_custom_resources_pass_their_crd_schema(case: str, crd_schemas: Path) -> None:
    checked = set()
    for obj in _rendered(case):
        if is_core(obj["apiVersion"]):
            continue
        errors = crd_errors(obj)
        assert not errors, (obj["kind"], obj["metadata"]["name"], errors)
        checked.add(obj["kind"])
    assert checked == {"Rollout", "ServiceMonitor", "HTTPRoute"}
