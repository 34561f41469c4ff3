"""Helm's own engine, offline: render a release through its chart the way `helm install` would.

helm-python-sdk binds Helm's Go SDK (no helm binary). Its render applies the chart's values
schema, `required`/`fail`, subchart conditions and hooks; the install action's Kubernetes
version gate is checked here, since the offline render has no install action.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.charts.cache import helm_sdk
from shipway.errors import ShipwayError
from shipway.files import write_atomic
from shipway.yamlio import from_yaml

Obj = dict[str, Any]
HOOK = "helm.sh/hook"


class ChartRenderError(ShipwayError):
    """A chart refused the values or the Kubernetes version, as `helm install` would."""


@dataclass(frozen=True)
class ReleaseInput:
    """What a release asks of its chart: the synth output's releases/ entry."""

    layer: str
    name: str
    chart: str
    version: str
    repo: str
    namespace: str
    values: Obj
    # `helm install --skip-crds`: the chart's crds/ folder is left out (another release owns those CRDs).
    skip_crds: bool = False


@dataclass(frozen=True)
class RenderedObject:
    """One object a release creates, with the chart file it came from and when Helm applies it."""

    obj: Obj
    source: str
    part: str  # "crd" (the chart's crds/), "hook", or "template"
    text: str = ""  # the object's YAML as the chart rendered it


@dataclass
class RenderedRelease:
    """Every object one release creates, in Helm's install order: crds/, then hooks and templates."""

    release: ReleaseInput
    items: list[RenderedObject] = field(default_factory=list)

    def objects(self, part: str | None = None) -> list[Obj]:
        """The release's objects, or those of one part."""
        return [item.obj for item in self.items if part is None or item.part == part]

    def counts(self) -> dict[str, int]:
        """How many objects the release creates, and how many of them are CRDs and hooks."""
        return {"objects": len(self.items), "crds": len(self.objects("crd")), "hooks": len(self.objects("hook"))}


def chart_name(reference: str) -> str:
    """The chart's own name from a release's chart reference (`oci://host/path/name` or `name`)."""
    return reference.rstrip("/").rsplit("/", 1)[-1]


def release_input(layer: str, release: Obj) -> ReleaseInput:
    """A ReleaseInput from one synth releases/ entry."""
    return ReleaseInput(layer=layer, name=release["name"], chart=chart_name(release["chart"]),
                        version=str(release["version"]), repo=release.get("repo", ""),
                        namespace=release.get("namespace", "default"), values=release.get("values") or {},
                        skip_crds=bool(release.get("skipCrds")))


# --- Kubernetes version gate (Chart.yaml `kubeVersion`, Masterminds semver constraints) ---------------------

_CLAUSE = re.compile(r"^\s*(>=|<=|!=|=>|=<|>|<|=|~|\^)?\s*v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(-[0-9A-Za-z.-]+)?\s*$")


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not parts:
        raise ChartRenderError(f"not a Kubernetes version: {version!r}")
    return int(parts[1]), int(parts[2]), int(parts[3] or 0)


def _clause_holds(have: tuple[int, int, int], clause: str, constraint: str) -> bool:
    match = _CLAUSE.match(clause)
    if not match:
        raise ChartRenderError(f"kubeVersion constraint {constraint!r}: cannot read {clause!r}")
    op, *numbers, _pre = match.groups()
    wild = [n is None or n in "xX*" for n in numbers]
    want = tuple(0 if w else int(n) for n, w in zip(numbers, wild, strict=True))
    given = wild.index(True) if any(wild) else 3  # how many leading parts the clause names
    if op == "~":  # ~1.2.3: same major.minor; ~1: same major
        return have >= want and have[:min(given, 2)] == want[:min(given, 2)]
    if op == "^":  # ^1.2.3: same major (same minor when major is 0)
        depth = 1 if want[0] else 2
        return have >= want and have[:depth] == want[:depth]
    if op in (None, "=") and given < 3:  # 1.31.x
        return have[:given] == want[:given]
    return {
        None: have == want, "=": have == want, "!=": have != want, ">": have > want, "<": have < want,
        ">=": have >= want, "=>": have >= want, "<=": have <= want, "=<": have <= want,
    }[op]


def kube_version_allows(constraint: str, kubernetes_version: str) -> bool:
    """Whether a chart's `kubeVersion` constraint admits the cluster's version (`||` of comma/space ANDs)."""
    have = _version_tuple(kubernetes_version)
    for alternative in constraint.split("||"):
        clauses = [c for c in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", alternative.strip()) if c]
        if all(_clause_holds(have, clause, constraint) for clause in clauses):
            return True
    return False


# --- rendering ------------------------------------------------------------------------------------------------


# Helm splits manifests on `---` at a line start, which may be followed by a comment on its line.
_SEPARATOR = re.compile(r"^---", re.MULTILINE)


class ParseCache:
    """Parsed manifests kept on disk by the hash of their text: most of a chart's output (its CRDs above
    all) is the same from one run to the next, and parsing YAML costs far more than reading JSON."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def documents(self, text: str, source: str) -> list[tuple[Obj, str]]:
        """The objects in one rendered file, as the API server would read them (YAML turned into JSON),
        each with its own YAML text as the chart rendered it."""
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        path = self.root / key[:2] / f"{key}.json" if self.root else None
        if path is not None:
            try:
                parts = _parts(text)
                return [(doc, parts[index]) for index, doc in json.loads(path.read_text(encoding="utf-8"))]
            except (OSError, ValueError, IndexError, TypeError):
                pass  # absent or unreadable: parse again
        found = _documents(text, source)
        if path is not None:
            with contextlib.suppress(OSError):  # a read-only cache only costs speed
                write_atomic(path, json.dumps([[index, doc] for index, doc, _ in found]))
        return [(doc, part) for _, doc, part in found]


def default_parse_cache() -> ParseCache:
    """The parse cache in the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return ParseCache(Path(base) / "shipway" / "parsed-manifests")


def _parts(text: str) -> list[str]:
    return [part.strip("\n") for part in _SEPARATOR.split(text) if part.strip()]


def _documents(text: str, source: str) -> list[tuple[int, Obj, str]]:
    """(index of the part, object, its text) for every object in a rendered file."""
    parts = _parts(text)
    try:
        docs = [from_yaml(part) for part in parts]
    except yaml.YAMLError as error:
        raise ChartRenderError(f"{source} rendered YAML that does not parse: {error}") from None
    # Through JSON, as the API server sees it: timestamps become strings, keys become strings.
    kept = [(index, doc) for index, doc in enumerate(docs) if isinstance(doc, dict) and doc]
    return [(index, doc, parts[index])
            for index, doc in json.loads(json.dumps(kept, default=str))]


def _is_template_output(path: str) -> bool:
    # Helm drops NOTES.txt from what it installs; partials (`_*.tpl`) render to nothing.
    name = path.rsplit("/", 1)[-1]
    return not name.startswith("_") and name != "NOTES.txt"


def render_release(chart: Any, release: ReleaseInput, kubernetes_version: str,
                   api_versions: tuple[str, ...] = (), parsed: dict[str, list[tuple[Obj, str]]] | None = None,
                   cache: ParseCache | None = None) -> RenderedRelease:
    """Render one release through its loaded chart (helm_python.Chart) for a Kubernetes version, as an install would.

    `parsed` memoises parsing by text across renders in one run, `cache` across runs; objects are then
    shared and must be treated as read-only.
    """
    helm = helm_sdk()
    constraint = chart.metadata.get("kubeVersion")
    if constraint and not kube_version_allows(str(constraint), kubernetes_version):
        raise ChartRenderError(
            f"release {release.name}: chart {release.chart} {release.version} requires Kubernetes "
            f"{constraint}, and the blueprint targets {kubernetes_version}")
    options = {"name": release.name, "namespace": release.namespace, "is_install": True,
               "kube_version": f"v{kubernetes_version}", "api_versions": list(api_versions)}
    try:
        # The SDK's Chart.render has no Kubernetes version option; its native call takes one.
        manifests: dict[str, str] = json.loads(helm._native.call_string(
            "helm_render", chart._raw(), json.dumps(release.values), json.dumps(options)))
        # Read after the render: rendering drops the subcharts whose condition is off, with their crds/.
        crd_files = chart.crds
    except helm.HelmError as error:
        raise ChartRenderError(f"release {release.name} ({release.chart} {release.version}) does not "
                               f"render: {error}") from None
    memo = {} if parsed is None else parsed

    def documents(text: str, source: str) -> list[tuple[Obj, str]]:
        if text not in memo:
            memo[text] = (cache or ParseCache(None)).documents(text, source)
        return memo[text]

    rendered = RenderedRelease(release)
    for crd in [] if release.skip_crds else sorted(crd_files, key=lambda item: item["filename"]):
        rendered.items += [RenderedObject(doc, crd["filename"], "crd", part)
                           for doc, part in documents(crd["data"], crd["filename"])]
    for path in sorted(manifests):
        if _is_template_output(path):
            rendered.items += [RenderedObject(doc, path, "hook" if HOOK in annotations(doc) else "template", part)
                               for doc, part in documents(manifests[path], path) if not _is_test_hook(doc)]
    return rendered


def _is_test_hook(obj: Obj) -> bool:
    # `helm test` runs these; `helm install` keeps them in the release record and never creates them.
    hooks = {hook.strip() for hook in str(annotations(obj).get(HOOK, "")).split(",") if hook.strip()}
    return bool(hooks) and hooks <= {"test", "test-success", "test-failure"}


def chart_crds(folder: Path, release: ReleaseInput, cache: ParseCache | None = None) -> RenderedRelease:
    """The CRDs in a chart's crds/ folders (its own and every subchart's), without rendering it."""
    helm = helm_sdk()
    with helm.Chart.load(folder) as chart:
        crd_files = chart.crds
    rendered = RenderedRelease(release)
    for crd in sorted(crd_files, key=lambda item: item["filename"]):
        rendered.items += [RenderedObject(doc, crd["filename"], "crd", part)
                           for doc, part in (cache or ParseCache(None)).documents(crd["data"], crd["filename"])]
    return rendered


def annotations(obj: Obj) -> dict[str, str]:
    """An object's annotations, empty when it has none."""
    return (obj.get("metadata") or {}).get("annotations") or {}


def api_versions_of(crds: list[Obj]) -> set[str]:
    """The `group/version` and `group/version/Kind` entries installed CRDs add to Helm's Capabilities."""
    found: set[str] = set()
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            if version.get("served", True):
                group_version = f"{spec.get('group')}/{version.get('name')}"
                found |= {group_version, f"{group_version}/{(spec.get('names') or {}).get('kind')}"}
    return found
