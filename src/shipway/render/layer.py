"""What a layer renders: its namespaces, Helm releases and other objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipway.catalog import Chart
from shipway.render.common import Obj


@dataclass(frozen=True)
class Release:
    """A Helm release of a catalog chart with Shipway's values (user values already merged)."""

    name: str
    chart: Chart
    namespace: str
    values: Obj
    # Leave the chart's crds/ folder out, where a separate CRD chart owns those CRDs.
    skip_crds: bool = False


@dataclass
class LayerRender:
    """Everything one platform layer creates in the cluster, in creation order."""

    namespaces: list[Obj] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    objects: list[Obj] = field(default_factory=list)
