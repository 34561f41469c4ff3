"""Typed specs: the platform blueprint (and the per-model spec), with precise loading errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipway.errors import Problem
from shipway.spec.blueprint import Blueprint
from shipway.spec.loader import load_spec, locate
from shipway.spec.model import ModelSpec

__all__ = ["Blueprint", "ModelSpec", "load_blueprint", "blueprint_warnings", "blueprint_json_schema",
           "load_model_spec", "model_json_schema"]


def load_blueprint(path: str | Path) -> Blueprint:
    """Load a blueprint YAML file; every problem is raised together as a SpecError."""
    return load_spec(path, Blueprint, "blueprint")


def blueprint_warnings(path: str | Path, blueprint: Blueprint) -> list[Problem]:
    """What is legal in a loaded blueprint but likely wrong, at file:line."""
    from shipway.spec.advice import warnings

    return locate(path, warnings(blueprint))


def blueprint_json_schema() -> dict[str, Any]:
    """The blueprint's JSON Schema, as editors and `yaml-language-server` use it."""
    schema = Blueprint.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://shipway.dev/schema/blueprint.schema.json"
    schema["title"] = "Shipway blueprint"
    return schema


def load_model_spec(path: str | Path) -> ModelSpec:
    """Load a model.yaml (ModelSpec); every problem is raised together as a SpecError."""
    return load_spec(path, ModelSpec, "model spec")


def model_json_schema() -> dict[str, Any]:
    """The ModelSpec's JSON Schema, for editors validating model.yaml."""
    schema = ModelSpec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://shipway.dev/schema/model.schema.json"
    schema["title"] = "Shipway model spec"
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    """A schema serialised deterministically."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
