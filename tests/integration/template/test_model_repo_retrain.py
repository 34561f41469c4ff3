"""The baked repo's retraining pipeline: what the platform's trigger starts, and the pull request it ends in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shipway.cli.template import bake
from shipway.render import retrain
from shipway.spec import load_model_spec

ROOT = Path(__file__).resolve().parents[3]
EVIDENCE = {"model": "fraud-score", "namespace": "fraud-prod", "signal": "drift", "alert": "ShipwayModelFeatureDrift",
            "figures": {"3": {"value": "0.61", "description": "largest feature PSI 0.610"}},
            "window": {"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T10:30:00Z"}, "versions": ["3"]}


def _steps(workflow: dict, job: str) -> list[str]:
    return [step.get("name") or step.get("run") or step.get("uses", "") for step in workflow["jobs"][job]["steps"]]


def test_the_github_retrain_workflow_answers_the_trigger_and_walks_the_road(tmp_path: Path) -> None:
    repo = bake(tmp_path, "fraud-score", "fraud")
    workflow = yaml.safe_load((repo / ".github/workflows/retrain.yml").read_text())
    triggers = workflow[True]
    assert triggers == {"repository_dispatch": {"types": [retrain.EVENT_TYPE]}}
    runs = [step.get("run", "") for step in workflow["jobs"]["retrain"]["steps"]]
    order = ["make data", "make train", "make evaluate", "make gate", "make push", "make retrain-pr-body"]
    positions = [next(index for index, run in enumerate(runs) if run.startswith(command)) for command in order]
    assert positions == sorted(positions)
    data = next(step for step in workflow["jobs"]["retrain"]["steps"] if step.get("run") == "make data")
    assert data["env"]["SHIPWAY_RETRAIN_EVIDENCE"] == "${{ toJSON(github.event.client_payload) }}"
    pull_request = workflow["jobs"]["promotion-pull-request"]
    assert pull_request["needs"] == "retrain"
    assert "--body-file build/retrain-pr.md" in pull_request["steps"][-1]["run"]
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses", "")
            assert not uses or len(uses.split("@")[1].split()[0]) == 40, f"not pinned to a commit: {uses}"
    spec = load_model_spec(repo / "model.yaml")
    assert spec.retrain is not None and spec.retrain.repository.provider == "github"


def test_the_gitlab_pipeline_retrains_under_its_own_version_and_opens_a_merge_request(tmp_path: Path) -> None:
    repo = bake(tmp_path, "fraud-score", "fraud", ci="gitlab")
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert pipeline["workflow"]["rules"][0] == {"if": '$SHIPWAY_RETRAIN == "true"',
                                                "variables": {"RELEASE": "${CI_COMMIT_SHA}-r${CI_PIPELINE_IID}"}}
    assert pipeline["train"]["script"] == ["make data", "make train"]
    assert pipeline["promote-staging"]["rules"][0] == {"if": '$SHIPWAY_RETRAIN == "true"', "when": "never"}
    job = pipeline["retrain-merge-request"]
    assert job["rules"] == [{"if": '$SHIPWAY_RETRAIN == "true"'}]
    assert "make retrain-pr-body" in job["script"] and 'description@build/retrain-pr.md' in job["script"][-1]
    assert load_model_spec(repo / "model.yaml").retrain.repository.provider == "gitlab"


@pytest.mark.slow
def test_make_data_to_the_pull_request_body_carries_the_evidence_and_the_gate_report(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn (dev extra) is not installed")
    repo = bake(tmp_path, "fraud-score", "fraud")
    shim = tmp_path / "shipway_cli.py"
    shim.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'src')!r})\nfrom shipway.cli import app\napp()\n")
    environment = {**os.environ, "SHIPWAY_RETRAIN_EVIDENCE": json.dumps(EVIDENCE), "VERSION": "abc1234-r1"}
    for target in ("data", "train", "evaluate", "gate", "retrain-pr-body"):
        done = subprocess.run(["make", target, f"PYTHON={sys.executable}", f"SHIPWAY={sys.executable} {shim}"],
                              cwd=repo, env=environment, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"make {target}:\n{done.stdout}\n{done.stderr}"
    assert json.loads((repo / "build/retrain-evidence.json").read_text()) == EVIDENCE
    body = (repo / "build/retrain-pr.md").read_text()
    summary = (repo / "build/gate/gate-summary.md").read_text()
    assert '"signal": "drift"' in body and '"value": "0.61"' in body
    assert body.rstrip().endswith(summary.rstrip()) and "## Gate report" in body
