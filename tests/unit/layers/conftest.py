"""Fixtures for the layer tests: each example blueprint synthesised once per session under recording mocks."""

from __future__ import annotations

import pytest
from layer_support import BLUEPRINTS, Synthesised, synthesised


@pytest.fixture(scope="session")
def kind_dev() -> Synthesised:
    return synthesised("kind-dev")


@pytest.fixture(scope="session")
def eks_prod() -> Synthesised:
    return synthesised("eks-prod")


@pytest.fixture(scope="session")
def gke_prod() -> Synthesised:
    return synthesised("gke-prod")


@pytest.fixture(scope="session", params=BLUEPRINTS)
def each_blueprint(request: pytest.FixtureRequest) -> Synthesised:
    return synthesised(request.param)
