"""Shared test fixtures: where the repo, examples and CRD schemas are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = ROOT / "blueprints"
EXAMPLES = ("kind-dev", "eks-prod", "gke-prod")


def crd_schema_dir() -> Path | None:
    """The CRD JSON Schemas: $SHIPWAY_CRD_SCHEMAS, or ../shared/schemas/crds beside the repo."""
    env = os.environ.get("SHIPWAY_CRD_SCHEMAS")
    candidate = Path(env) if env else ROOT.parent / "shared" / "schemas" / "crds"
    return candidate if candidate.is_dir() else None


def chart_cache_dir() -> Path | None:
    """The chart cache (<name>-<version> folders): $SHIPWAY_CHARTS, or ../shared/charts beside the repo."""
    env = os.environ.get("SHIPWAY_CHARTS")
    candidate = Path(env) if env else ROOT.parent / "shared" / "charts"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def chart_cache() -> Path:
    """The chart cache folder, or a skip naming where it was looked for."""
    found = chart_cache_dir()
    if found is None:
        pytest.skip("chart cache not found: set SHIPWAY_CHARTS, place shared/charts beside the repo, "
                    "or run `shipway charts pull`")
    return found


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def crd_schemas() -> Path:
    """The CRD schema folder, or a skip naming where it was looked for."""
    found = crd_schema_dir()
    if found is None:
        pytest.skip("CRD schemas not found: set SHIPWAY_CRD_SCHEMAS or place shared/schemas/crds beside the repo")
    return found
