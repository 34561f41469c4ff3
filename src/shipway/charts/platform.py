"""Render every Helm release of a synth through its pinned chart: the whole platform, offline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shipway import catalog
from shipway.charts.cache import Absent, ChartCache, chart_dir_name, helm_sdk
from shipway.charts.engine import (
    ParseCache, ReleaseInput, RenderedRelease, api_versions_of, chart_crds, render_release,
)
from shipway.charts.objects import crd_scopes, identity
from shipway.spec.blueprint import Blueprint
from shipway.yamlio import to_yaml


def kubernetes_version(blueprint: Blueprint) -> str:
    """The Kubernetes version (major.minor.patch) the blueprint's cluster runs, for Helm and schema validation."""
    return f"{catalog.KUBERNETES_VERSION}.0"


@dataclass
class PlatformRender:
    """Every release the cache could render, and those it could not."""

    kubernetes_version: str
    rendered: list[RenderedRelease] = field(default_factory=list)
    absent: list[tuple[ReleaseInput, Absent]] = field(default_factory=list)
    # For a chart that is there but lacks subcharts: the CRDs in its crds/ folders, which do not depend on
    # values, so custom resources can still be checked against them.
    crds_only: list[RenderedRelease] = field(default_factory=list)
    api_versions: tuple[str, ...] = ()  # what the platform's CRDs add to Helm's Capabilities.APIVersions
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Whether every release was rendered."""
        return not self.absent

    def summary(self) -> dict[str, object]:
        """What plan.json records about the chart renders."""
        return {
            "kubernetesVersion": self.kubernetes_version,
            "releases": {r.release.name: {"layer": r.release.layer, "chart": r.release.chart,
                                          "version": r.release.version, **r.counts()} for r in self.rendered},
            "objects": sum(r.counts()["objects"] for r in self.rendered),
            "missingCharts": [str(absent) for _, absent in self.absent],
        }


def render_platform(releases: Iterable[ReleaseInput], cache: ChartCache, kubernetes_version: str,
                    parse_cache: ParseCache | None = None) -> PlatformRender:
    """Render each release whose chart the cache holds; CRDs any release installs count as served for all.

    A chart's templates may ask Helm whether an API is served (`.Capabilities.APIVersions`); on the
    platform, the CRDs of the other releases are installed, so a first pass collects them and a second
    renders with them, as `helm install` on the running platform would see.
    """
    helm = helm_sdk()
    started = time.perf_counter()
    result = PlatformRender(kubernetes_version)
    loaded: list[tuple[ReleaseInput, Any]] = []
    try:
        for release in releases:
            found = cache.locate(release.chart, release.version, release.repo)
            if isinstance(found, Absent):
                result.absent.append((release, found))
                if found.missing_subcharts:
                    result.crds_only.append(chart_crds(cache.root / chart_dir_name(release.chart, release.version),
                                                       release, parse_cache))
            else:
                loaded.append((release, helm.Chart.load(found)))
        parsed: dict[str, list[tuple[dict[str, Any], str]]] = {}
        first = [render_release(chart, release, kubernetes_version, parsed=parsed, cache=parse_cache) for release, chart in loaded]
        result.api_versions = tuple(sorted(api_versions_of(
            [obj for rendered in [*first, *result.crds_only] for obj in rendered.objects()])))
        result.rendered = ([render_release(chart, release, kubernetes_version, result.api_versions, parsed,
                                           parse_cache) for release, chart in loaded] if result.api_versions else first)
    finally:
        for _, chart in loaded:
            chart.close()
    result.seconds = time.perf_counter() - started
    return result


def rendered_files(platform: PlatformRender, layer_stem: Callable[[str], str]) -> dict[str, str]:
    """rendered/<layer>--<release>/<kind>--<namespace>--<name>.yaml for every object, headed by its chart file."""
    files: dict[str, str] = {}
    scopes = crd_scopes(obj for rendered in platform.rendered for obj in rendered.objects())
    for rendered in platform.rendered:
        folder = f"rendered/{layer_stem(rendered.release.layer)}--{rendered.release.name}"
        for item in rendered.items:
            who = identity(item.obj, rendered.release.namespace, scopes)
            stem = "--".join(part.replace(".", "-").replace(":", "-").replace("/", "-")
                             for part in (who.kind.lower(), who.namespace or "_cluster", who.name))
            path, copy = f"{folder}/{stem}.yaml", 1
            while path in files:  # the same object twice in one release: both kept, for the owner check to name
                copy += 1
                path = f"{folder}/{stem}--{copy}.yaml"
            hook = " (hook)" if item.part == "hook" else ""
            # The chart's own text: it is what Helm sends, and re-dumping megabytes of CRDs costs seconds.
            files[path] = f"# Source: {item.source}{hook}\n{item.text or to_yaml(item.obj)}\n"
    return files
