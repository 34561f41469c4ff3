"""Every object the example blueprints emit validates: core kinds strictly, custom kinds against their CRD schemas."""

from __future__ import annotations

import kubernetes_validate
import pytest
from crd_support import charts_dir, crd_errors, is_core, schema_dir

from shipway import catalog
from shipway.render import gitops

KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"  # the one version every target runs


def _unmasked(obj: dict) -> dict:
    # Synth masks whole secret-bearing fields; the real Secret is validated by test_repository_secret_is_valid.
    return {key: ({"masked": "x"} if value == "<secret>" and key == "stringData" else value)
            for key, value in obj.items()}


def test_core_kinds_validate_strictly(each_blueprint):
    for obj in each_blueprint.objects:
        if not is_core(obj["apiVersion"]):
            continue
        # NodePatches register as kind Node: partial by design, but every Node field is optional,
        # so a partial Node still validates strictly.
        kubernetes_validate.validate(_unmasked(obj), KUBERNETES_VERSION, strict=True)


def test_repository_secret_is_valid(kind_dev):
    kubernetes_validate.validate(gitops.repository_secret(kind_dev.blueprint, "token"), KUBERNETES_VERSION,
                                 strict=True)


def test_custom_kinds_validate_against_crd_schemas(each_blueprint):
    if schema_dir() is None or charts_dir() is None:
        pytest.skip("CRD schemas need ../shared/schemas/crds and ../shared/charts (set SHIPWAY_CRD_SCHEMAS and "
                    "SHIPWAY_CHARTS)")
    custom = [obj for obj in each_blueprint.objects if not is_core(obj["apiVersion"])]
    assert custom
    for obj in custom:
        errors = crd_errors(obj)
        assert not errors, (obj["kind"], obj["metadata"]["name"], errors)
