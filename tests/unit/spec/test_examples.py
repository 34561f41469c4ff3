"""Every example blueprint loads, and its derived facts are what the platform relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipway.spec import blueprint_json_schema, load_blueprint, schema_text
from shipway.spec.blueprint import MigSharing, TimeSlicing

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["kind-dev", "eks-prod", "gke-prod"])
def test_example_loads_with_schema_modeline(name: str) -> None:
    path = ROOT / "blueprints" / f"{name}.yaml"
    blueprint = load_blueprint(path)
    assert blueprint.metadata.name
    assert path.read_text().startswith("# yaml-language-server: $schema=schema/blueprint.schema.json")


def test_kind_dev_is_small_and_gets_working_defaults() -> None:
    path = ROOT / "blueprints" / "kind-dev.yaml"
    assert len([line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]) <= 18
    blueprint = load_blueprint(path)
    assert blueprint.simulate_gpus
    assert [pool.name for pool in blueprint.gpu_pools] == ["gpu-small", "gpu-large"]
    assert [team.name for team in blueprint.teams] == ["fraud", "search"]
    assert blueprint.namespaces["fraud"] == {"staging": "fraud-staging", "prod": "fraud-prod"}
    assert blueprint.gpu_pools[0].effective_taints[0].key == "nvidia.com/gpu"
    assert blueprint.gpu_tolerations[0].tolerates(blueprint.gpu_pools[0].effective_taints[0])
    assert not blueprint.gitops_high_availability


def test_eks_prod_partitions_h100_with_mig() -> None:
    blueprint = load_blueprint(ROOT / "blueprints" / "eks-prod.yaml")
    assert isinstance(blueprint.gpu_stack.sharing, MigSharing)
    assert [pool.name for pool in blueprint.mig_pools()] == ["h100"]
    h100 = next(pool for pool in blueprint.node_pools if pool.name == "h100")
    assert blueprint.schedulable_gpus(h100) == 8 * 7 * 2
    assert blueprint.gitops_high_availability


def test_gke_prod_time_slices_l4() -> None:
    blueprint = load_blueprint(ROOT / "blueprints" / "gke-prod.yaml")
    assert isinstance(blueprint.gpu_stack.sharing, TimeSlicing)
    l4 = next(pool for pool in blueprint.node_pools if pool.name == "l4")
    assert blueprint.schedulable_gpus(l4) == 1 * 4 * 8
    assert blueprint.namespaces["vision"] == {"prod": "vision-prod"}


def test_committed_schema_is_current() -> None:
    committed = ROOT / "blueprints" / "schema" / "blueprint.schema.json"
    assert committed.read_text() == schema_text(blueprint_json_schema()), "run `shipway schema` and commit"


def test_schema_documents_every_field() -> None:
    schema = blueprint_json_schema()
    missing = []
    for name, definition in {"Blueprint": schema, **schema.get("$defs", {})}.items():
        for field, spec in definition.get("properties", {}).items():
            if not spec.get("description"):
                missing.append(f"{name}.{field}")
    assert not missing, f"fields without description: {missing}"
    assert json.loads(schema_text(schema))["title"] == "Shipway blueprint"
