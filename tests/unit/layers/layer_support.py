"""Shared helpers for the layer tests: each example blueprint synthesised once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipway.platform.synth import Registered, SynthResult, kubernetes_objects, releases, run_program

REPO = Path(__file__).resolve().parents[3]
BLUEPRINTS = ("kind-dev", "eks-prod", "gke-prod")


class Synthesised:
    """One blueprint's synth result with lookups the layer tests share."""

    def __init__(self, result: SynthResult) -> None:
        self.result = result
        self.blueprint = result.blueprint
        self.objects = [obj for _, obj in kubernetes_objects(result)]
        self.releases = {release["name"]: release for _, release in releases(result)}
        self.by_urn = {resource.urn: resource for resource in result.resources}

    def of_type(self, type_: str) -> list[Registered]:
        """Every registration of a Pulumi type."""
        return [resource for resource in self.result.resources if resource.type == type_]

    def named(self, name: str) -> Registered:
        """The one registration with this Pulumi name."""
        [found] = [resource for resource in self.result.resources if resource.name == name]
        return found

    def kind(self, kind: str) -> list[dict[str, Any]]:
        """Every emitted Kubernetes object of a kind."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def parent_type(self, resource: Registered) -> str:
        """The Pulumi type of a registration's parent."""
        return self.by_urn[resource.parent].type


_CACHE: dict[str, Synthesised] = {}


def synthesised(name: str) -> Synthesised:
    """The session's synth of blueprints/<name>.yaml."""
    if name not in _CACHE:
        _CACHE[name] = Synthesised(run_program(REPO / "blueprints" / f"{name}.yaml"))
    return _CACHE[name]


def dotted(values: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; a segment in [brackets] may itself contain dots."""
    node: Any = values
    for key in _split(path):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"{path}: no {key!r}")
        node = node[key]
    return node


def _split(path: str) -> list[str]:
    parts, current, bracket = [], "", False
    for char in path:
        if char == "[" and not current:
            bracket = True
        elif char == "]" and bracket:
            bracket = False
        elif char == "." and not bracket:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts
