"""The readiness assessment uses the GitOps history's DORA keys when a GitOps repository is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dora_history as known
from shipway.cli import app
from shipway.dora.history import History
from shipway.dora.measure import measure
from shipway.dora.metrics import Window, compute
from shipway.readiness import assess
from shipway.readiness.output import to_html, to_markdown
from shipway.spec import load_blueprint

BLUEPRINT = known.ROOT / "blueprints" / "kind-dev.yaml"


@pytest.fixture(scope="module")
def gitops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return known.build(tmp_path_factory.mktemp("dora-readiness") / "gitops")


def _observation(report, check_id: str):
    result = next(result for result in report.results if result.check.id == check_id)
    return next(obs for obs in result.observations if obs.source == "gitops-repo")


def test_promotions_and_gate_verdicts_in_the_history_are_evidence(gitops: Path) -> None:
    dora = measure(gitops, "28d", known.UNTIL)
    report = assess(load_blueprint(BLUEPRINT), "kind-dev", dora=dora)
    promotion = _observation(report, "gitops-promotion")
    assert promotion.status == "pass" and "7 promotions to prod over 28 days (deployment frequency: high)" in \
        promotion.evidence
    assert _observation(report, "gates-statistical").status == "pass"
    assert report.delivery["lead_time_median_seconds"] == 4 * known.HOUR
    assert "| Lead time for changes | 4h | elite |" in to_markdown(report)
    assert '<table id="delivery">' in to_html(report)
    assert any(source.kind == "gitops-repo" for source in report.sources)


def test_a_promotion_without_a_passed_gate_fails_the_gate_check(gitops: Path) -> None:
    dora = measure(gitops, "28d", known.UNTIL)
    ungated = [item for item in dora.deployments]
    ungated[-1].gate = "not run"
    narrowed = compute(History(list(ungated)), "prod", Window(known.T0, known.UNTIL), "repo")
    report = assess(load_blueprint(BLUEPRINT), "kind-dev", dora=narrowed)
    gate = _observation(report, "gates-statistical")
    assert gate.status == "fail" and "1 of 7 promotions to prod shipped without a passed gate: ranker 4" in gate.evidence
    empty = compute(History(), "prod", Window(known.T0, known.UNTIL), "repo")
    assert _observation(assess(load_blueprint(BLUEPRINT), "kind-dev", dora=empty), "gitops-promotion").status == "fail"


def test_readiness_cli_takes_a_gitops_repo(gitops: Path) -> None:
    done = CliRunner().invoke(app, ["readiness", str(BLUEPRINT), "--gitops-repo", str(gitops), "--since", "3650d",
                                    "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["delivery"]["deployments"] == 8 and data["delivery"]["environment"] == "prod"
    assert any(source["kind"] == "gitops-repo" for source in data["sources"])
