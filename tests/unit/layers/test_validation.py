"""Every object the example blueprints emit validates: core kinds strictly, custom kinds against their CRD schemas."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
from layer_support import REPO

from shipway import catalog
from shipway.render import gitops

KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"  # the one version every target runs
SCHEMAS = Path(os.environ.get("SHIPWAY_CRD_SCHEMAS", REPO.parent / "shared" / "schemas" / "crds"))
CORE_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io", "scheduling.k8s.io", "storage.k8s.io"}


def _group_version(obj: dict) -> tuple[str, str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    return group, version


def _unmasked(obj: dict) -> dict:
    # Synth masks whole secret-bearing fields; the real Secret is validated by test_repository_secret_is_valid.
    return {key: ({"masked": "x"} if value == "<secret>" and key == "stringData" else value)
            for key, value in obj.items()}


def test_core_kinds_validate_strictly(each_blueprint):
    for obj in each_blueprint.objects:
        if _group_version(obj)[0] not in CORE_GROUPS:
            continue
        # NodePatches register as kind Node: partial by design, but every Node field is optional,
        # so a partial Node still validates strictly.
        kubernetes_validate.validate(_unmasked(obj), KUBERNETES_VERSION, strict=True)


def test_repository_secret_is_valid(kind_dev):
    kubernetes_validate.validate(gitops.repository_secret(kind_dev.blueprint, "token"), KUBERNETES_VERSION,
                                 strict=True)


def test_custom_kinds_validate_against_crd_schemas(each_blueprint):
    if not SCHEMAS.is_dir():
        pytest.skip(f"CRD schemas not found at {SCHEMAS} (set SHIPWAY_CRD_SCHEMAS)")
    custom = [obj for obj in each_blueprint.objects if _group_version(obj)[0] not in CORE_GROUPS]
    assert custom
    for obj in custom:
        group, version = _group_version(obj)
        schema = json.loads((SCHEMAS / group / f"{obj['kind'].lower()}_{version}.json").read_text())
        errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
        assert not errors, (obj["kind"], obj["metadata"]["name"], errors)
