"""Model facts for the manifest annotations, read from a model repo's model.yaml (its ModelSpec)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from shipway.artifacts.layout import ModelMetadata


@dataclass(frozen=True)
class ModelFile:
    """What a model.yaml says about the artifact: its annotations and its drift profile inside the artifact."""

    metadata: ModelMetadata
    drift_profile: str | None


def read_model_file(path: Path) -> ModelFile:
    """Name, version, framework (the runtime) and the drift profile's path, from a valid ModelSpec.

    An invalid model.yaml fails as `shipway promote` would fail on it (SpecError, exit code 2):
    an artifact is not pushed from a spec that cannot be delivered. The ModelSpec holds no data
    or gate digests; those come from flags only.
    """
    from shipway.spec import load_model_spec

    spec = load_model_spec(path)
    metadata = ModelMetadata(name=spec.name, version=spec.version, framework=spec.runtime.name)
    return ModelFile(metadata, spec.drift.reference_profile if spec.drift is not None else None)


def describe_model(
    source: Path, model_yaml: Path | None, overrides: ModelMetadata, tag: str | None = None
) -> tuple[ModelMetadata, Path | None]:
    """Merge a model.yaml (given, or found at the top of a model directory) under explicit overrides.

    The version is the override, else the push's tag, else the spec's: a ModelSpec's version is its
    artifact tag, and CI tags by commit as `shipway promote --version` does. Returns the metadata and
    the drift profile's path: the spec's `drift.referenceProfile`, which is relative to the artifact's
    root (SOURCE), so the file the sidecar is pointed at is the file pushed as the drift-profile layer.
    """
    if model_yaml is None and source.is_dir() and (source / "model.yaml").is_file():
        model_yaml = source / "model.yaml"
    if model_yaml is None:
        return replace(overrides, version=overrides.version or tag), None
    found = read_model_file(model_yaml)
    merged = {name: value or getattr(found.metadata, name) for name, value in vars(overrides).items()}
    merged["version"] = overrides.version or tag or found.metadata.version
    drift_profile = source / found.drift_profile if found.drift_profile and source.is_dir() else None
    return ModelMetadata(**merged), drift_profile
