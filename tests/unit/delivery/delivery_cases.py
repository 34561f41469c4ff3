"""Platform profiles of the example blueprints and the four example models, shared by the delivery tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint, load_model_spec
from shipway.spec.model import ModelSpec

ROOT = Path(__file__).resolve().parents[3]
MODELS = Path(__file__).parent / "models"
# case -> (blueprint, environment, stable version serving now)
CASES = {
    "canary-sklearn": ("kind-dev", "staging", "1.1.0"),
    "blue-green-xgboost": ("kind-dev", "prod", "1.9.0"),
    "llm-vllm-mig": ("eks-prod", "staging", None),
    "sklearn-none": ("eks-prod", "prod", None),
}
# The manifest digest promote resolved the version's tag to, for the cases rendered the way promote renders
# them (the others render by tag, as `shipway render` without a digest does).
DIGESTS = {"canary-sklearn": "sha256:" + "c4" * 32, "sklearn-none": "sha256:" + "e7" * 32}


def profile_of(blueprint: str) -> dict[str, Any]:
    """The platform profile `shipway synth` writes for an example blueprint."""
    return platform_profile(load_blueprint(ROOT / "blueprints" / f"{blueprint}.yaml"))


def model(case: str) -> ModelSpec:
    """One of the example model specs."""
    return load_model_spec(MODELS / f"{case}.yaml")
