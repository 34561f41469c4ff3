"""Fixtures of the delivery tests: the example platforms' profiles."""

from __future__ import annotations

from typing import Any

import pytest

from delivery_cases import profile_of


@pytest.fixture(scope="session")
def kind_profile() -> dict[str, Any]:
    """The kind-dev blueprint's platform profile."""
    return profile_of("kind-dev")


@pytest.fixture(scope="session")
def eks_profile() -> dict[str, Any]:
    """The eks-prod blueprint's platform profile."""
    return profile_of("eks-prod")
