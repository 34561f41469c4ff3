"""Every baked model repo's model.yaml is a valid ModelSpec that renders on the example platforms."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from shipway.cli.template import ROLLOUTS, RUNTIMES, bake
from shipway.delivery.render import render
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint, load_model_spec
from shipway.spec.model import CanaryRollout, MlserverRuntime, TritonRuntime, VllmRuntime

ROOT = Path(__file__).resolve().parents[3]
RUNTIME_TYPES = {"sklearn": MlserverRuntime, "xgboost": MlserverRuntime, "pytorch-triton": TritonRuntime,
                 "llm-vllm": VllmRuntime}


@pytest.mark.parametrize(("runtime", "rollout"), list(itertools.product(RUNTIMES, ROLLOUTS)))
def test_baked_model_yaml_loads_and_renders(tmp_path: Path, runtime: str, rollout: str) -> None:
    repo = bake(tmp_path, "fraud-score", "fraud", runtime=runtime, rollout=rollout)
    spec = load_model_spec(repo / "model.yaml")
    assert (spec.name, spec.team, spec.strategy) == ("fraud-score", "fraud", rollout)
    assert isinstance(spec.runtime, RUNTIME_TYPES[runtime])
    assert spec.artifact_tag is None, "the artifact must follow `version`, as `make push` tags it"
    if rollout == "canary":
        assert isinstance(spec.rollout, CanaryRollout) and spec.rollout.steps
    # kind-dev's team fraud has L4 and A100 pools; a GPU model names one there.
    profile = platform_profile(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))
    if spec.resources.gpus:
        spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpu_pool": "gpu-small"}),
                                       "replicas": spec.replicas.model_copy(update={"min": 1, "max": 1})})
    objects = render(spec.with_version("abc1234"), profile, "staging")
    kinds = [obj["kind"] for obj in objects]
    # SLO alerts come from the platform-wide rule; the model's thresholds reach it through the sidecar.
    assert kinds[0] == "Rollout" and "ServiceMonitor" in kinds and "PrometheusRule" not in kinds
    if rollout == "canary":
        # The llm-vllm variant's canary is judged by the LLM breakers: first token, gaps between tokens,
        # failed generations; the others by request errors and latency.
        analysis = objects[0]["spec"]["strategy"]["canary"]["analysis"]
        judged_by = {template["templateName"] for template in analysis["templates"]}
        llm = {"shipway-model-llm-error-rate", "shipway-model-llm-ttft", "shipway-model-llm-itl"}
        if runtime == "llm-vllm":
            assert llm <= judged_by and "shipway-model-latency" not in judged_by
        else:
            assert not llm & judged_by and "shipway-model-latency" in judged_by
