"""Model facts for the manifest annotations, read from a model repo's model.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipway.artifacts.errors import ArtifactError
from shipway.artifacts.layout import ModelMetadata

# ModelSpec (issue 4) is still taking shape, so these are read leniently by
# the names it is expected to use; unknown keys are ignored, not errors.
_FIELD_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "name": (("name",), ("metadata", "name")),
    "version": (("version",), ("metadata", "version")),
    "framework": (("framework",), ("runtime", "framework"), ("runtime", "kind"), ("runtime", "name"), ("runtime",)),
    "training_data_digest": (("training_data_digest",), ("training", "data_digest")),
    "gate_report_digest": (("gate_report_digest",), ("gate", "report_digest")),
}
_DRIFT_PROFILE_PATHS = (("drift", "reference_profile"), ("drift", "reference"), ("drift", "profile"))


@dataclass(frozen=True)
class ModelFile:
    """What a model.yaml says about the artifact: its annotations and its drift profile path."""

    metadata: ModelMetadata
    drift_profile: str | None


def _lookup(document: dict[str, Any], path: tuple[str, ...]) -> str | None:
    node: Any = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return str(node) if isinstance(node, str | int | float) and not isinstance(node, bool) else None


def read_model_file(path: Path) -> ModelFile:
    """Read name, version, framework, data and gate digests, and the drift profile path from model.yaml."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ArtifactError(f"{path}: cannot be read as YAML: {error}") from None
    if not isinstance(document, dict):
        raise ArtifactError(f"{path}: expected a mapping at the top level, got {type(document).__name__}.")

    def first(paths: tuple[tuple[str, ...], ...]) -> str | None:
        return next((value for p in paths if (value := _lookup(document, p)) is not None), None)

    metadata = ModelMetadata(**{name: first(paths) for name, paths in _FIELD_PATHS.items()})
    return ModelFile(metadata, first(_DRIFT_PROFILE_PATHS))


def describe_model(source: Path, model_yaml: Path | None, overrides: ModelMetadata) -> tuple[ModelMetadata, Path | None]:
    """Merge a model.yaml (given, or found at the top of a model directory) with explicit overrides.

    Returns the metadata and the drift profile's path, resolved against the model.yaml's directory.
    """
    if model_yaml is None and source.is_dir() and (source / "model.yaml").is_file():
        model_yaml = source / "model.yaml"
    if model_yaml is None:
        return overrides, None
    found = read_model_file(model_yaml)
    merged = {name: value or getattr(found.metadata, name) for name, value in vars(overrides).items()}
    drift_profile = model_yaml.parent / found.drift_profile if found.drift_profile else None
    return ModelMetadata(**merged), drift_profile
