"""Fixtures for the readiness tests: the kind-dev blueprint, a healthy fake cluster, baked model repos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from readiness_fakes import FakeCluster, healthy_cluster
from shipway.spec import load_blueprint
from shipway.spec.blueprint import Blueprint

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def kind_dev() -> Blueprint:
    """The kind-dev example blueprint."""
    return load_blueprint(ROOT / "blueprints" / "kind-dev.yaml")


@pytest.fixture
def make_healthy_cluster() -> Callable[[Blueprint], FakeCluster]:
    """Build a healthy fake cluster for a blueprint."""
    return healthy_cluster


@pytest.fixture(scope="session")
def baked_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model-repo template baked once per CI system, with its defaults (sklearn, canary)."""
    from shipway.cli.template import bake

    root = tmp_path_factory.mktemp("baked")
    return {ci: bake(root / ci, "fraud-score", "risk", ci=ci) for ci in ("github", "gitlab")}
