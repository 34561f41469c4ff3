"""Dead settings: value paths Shipway sets that change nothing the chart renders.

Each leaf Shipway sets is rendered away (the chart's default takes its place) and, when that changes
nothing (the value may equal the default), rendered once more with the value altered. A setting whose
removal and alteration both leave every rendered file as it was is read by no template under these
values: dead. A chart that refuses the altered value (schema, `required`, `fail`) has read it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from shipway.charts.cache import helm_sdk
from shipway.charts.engine import ReleaseInput, _is_template_output

Obj = dict[str, Any]
Path = tuple[str, ...]


def leaves(values: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every leaf path of a values tree; lists and empty maps are leaves."""
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaves(value, (*prefix, str(key)))
    elif prefix:
        yield prefix


def _without(values: Obj, path: Path) -> Obj:
    copied = copy.deepcopy(values)
    node = copied
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copied


def _altered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return f"{value}-shipway-probe" if value else "shipway-probe"
    if isinstance(value, list):
        return value[:-1] if value else ["shipway-probe"]
    if isinstance(value, dict):
        return {"shipway-probe": "shipway-probe"}
    return "shipway-probe"


def _with(values: Obj, path: Path, value: Any) -> Obj:
    copied = copy.deepcopy(values)
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


def dotted(path: Path) -> str:
    """A value path as people write it: a.b.[key.with.dots]."""
    return ".".join(f"[{key}]" if "." in key else key for key in path)


class _Renderer:
    """Renders one chart repeatedly, answering with the installed files' text (None when the chart refuses)."""

    def __init__(self, chart: Any, release: ReleaseInput, kubernetes_version: str, api_versions: tuple[str, ...]):
        self.chart, self.release = chart, release
        self.options = json.dumps({"name": release.name, "namespace": release.namespace, "is_install": True,
                                   "kube_version": f"v{kubernetes_version}", "api_versions": list(api_versions)})

    def __call__(self, values: Obj) -> dict[str, str] | None:
        helm = helm_sdk()
        try:
            rendered = json.loads(helm._native.call_string("helm_render", self.chart._raw(), json.dumps(values),
                                                           self.options))
        except helm.HelmError:
            return None
        return {path: text for path, text in rendered.items() if _is_template_output(path)}


def dead_settings(chart: Any, release: ReleaseInput, kubernetes_version: str,
                  api_versions: tuple[str, ...] = ()) -> list[str]:
    """The value paths of a release that no template of its loaded chart reads (dotted, sorted)."""
    render = _Renderer(chart, release, kubernetes_version, api_versions)
    base = render(release.values)
    dead = []
    for path in leaves(release.values):
        if render(_without(release.values, path)) != base:
            continue
        node: Any = release.values
        for key in path:
            node = node[key]
        altered = render(_with(release.values, path, _altered(node)))
        if altered is not None and altered == base:
            dead.append(dotted(path))
    return sorted(dead)
