"""Which kinds kubernetes-validate knows, and the JSON Schema of every custom kind Shipway emits.

A custom kind's schema comes from ../shared/schemas/crds (JSON, $SHIPWAY_CRD_SCHEMAS) or, failing that,
from the CRDs the pinned charts install (../shared/charts, $SHIPWAY_CHARTS): Envoy Gateway's `crds`
subchart (the Gateway API and gateway.envoyproxy.io kinds) and cert-manager's CRD templates.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
# API groups under k8s.io that CRDs serve, not the API server itself.
CRD_SERVED_K8S_GROUPS = {"gateway.networking.k8s.io", "gateway.networking.x-k8s.io"}
_DIRECTIVE_LINE = re.compile(r"^\s*\{\{.*\}\}\s*$")


class _Loader(yaml.SafeLoader):
    """YAML 1.1's `=` value tag, which some CRDs carry as an enum member, is read as the string "="."""


_Loader.add_constructor("tag:yaml.org,2002:value", _Loader.construct_yaml_str)


def is_core(api_version: str) -> bool:
    """Whether the API server serves this group itself, so kubernetes-validate has its schema."""
    group = api_version.rpartition("/")[0]
    return "." not in group or (group.endswith("k8s.io") and group not in CRD_SERVED_K8S_GROUPS)


def _dir(variable: str, default: Path) -> Path | None:
    value = os.environ.get(variable)
    path = Path(value) if value else default
    return path if path.is_dir() else None


def schema_dir() -> Path | None:
    """The JSON CRD schemas folder."""
    return _dir("SHIPWAY_CRD_SCHEMAS", ROOT.parent / "shared" / "schemas" / "crds")


def charts_dir() -> Path | None:
    """The pinned charts folder."""
    return _dir("SHIPWAY_CHARTS", ROOT.parent / "shared" / "charts")


def strict_schema(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema that refuses unknown fields, as the API server prunes them."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: strict_schema(value) for key, value in schema.items()}
    if converted.pop("x-kubernetes-int-or-string", False):
        converted.pop("type", None)
        converted.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = converted.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in converted and "additionalProperties" not in converted and not preserve:
        converted["additionalProperties"] = False
    if converted.get("nullable"):
        converted.pop("nullable")
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
    return {key: value for key, value in converted.items() if not key.startswith("x-kubernetes-")}


@cache
def _chart_crds() -> dict[tuple[str, str, str], dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    charts = charts_dir()
    if charts is None:
        return found
    files = [*charts.glob("gateway-helm-*/charts/crds/crds/**/*.yaml"), *charts.glob("cert-manager-*/templates/crd-*.yaml")]
    for path in sorted(files):
        text = "\n".join(line for line in path.read_text().splitlines() if not _DIRECTIVE_LINE.match(line))
        for doc in yaml.load_all(text, Loader=_Loader):  # noqa: S506 - a SafeLoader subclass
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    found.setdefault((spec["group"], version["name"], spec["names"]["kind"]), strict_schema(schema))
    return found


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The JSON Schema of a custom kind, or None when neither source has it."""
    group, _, version = api_version.rpartition("/")
    shared = schema_dir()
    if shared is not None:
        path = shared / group / f"{kind.lower()}_{version}.json"
        if path.is_file():
            return json.loads(path.read_text())
    return _chart_crds().get((group, version, kind))


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Why a custom object does not validate against its CRD schema; a missing schema is an error."""
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    if schema is None:
        return [f"no CRD schema for {obj['apiVersion']} {obj['kind']}"]
    return [f"{list(error.path)}: {error.message}" for error in jsonschema.Draft7Validator(schema).iter_errors(obj)]
