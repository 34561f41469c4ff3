"""What the doctor needs from a blueprint: the cluster's kind and the kube context it names."""

from __future__ import annotations

from pathlib import Path

from shipway.doctor.checks import Target
from shipway.errors import ShipwayError
from shipway.spec import load_blueprint


def target_from_blueprint(path: Path) -> Target:
    """The doctor's target for this blueprint; SpecError when the blueprint is invalid."""
    if not path.is_file():
        raise ShipwayError(f"{path}: no such blueprint file")
    blueprint = load_blueprint(path)
    cluster = blueprint.cluster
    if cluster.kind == "kind":
        name = cluster.name or blueprint.metadata.name
        # kind names the context after the cluster, and creates both together.
        return Target(cluster_kind="kind", context=cluster.context or f"kind-{name}", kind_cluster=name)
    if cluster.kind == "existing":
        return Target(cluster_kind="existing", context=cluster.context)
    return Target(cluster_kind=cluster.kind)
