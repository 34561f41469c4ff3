"""`shipway dora` over a GitOps history with known answers (see dora_history), made by the real promote and git."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dora_history as known
from shipway.cli import app
from shipway.dora import trailers
from shipway.dora.history import read_history
from shipway.dora.measure import measure
from shipway.dora.metrics import Band, Window, compute, parse_window
from shipway.dora.output import to_html, to_json, to_markdown

HOUR, DAY = known.HOUR, known.DAY
UNTIL_ISO = "2026-02-02T00:00:00Z"


@pytest.fixture(scope="module")
def gitops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return known.build(tmp_path_factory.mktemp("dora") / "gitops")


def test_promote_writes_trailers_git_itself_parses(gitops: Path) -> None:
    """git interpret-trailers --parse reads every key promote writes, with the source commit and its time."""
    message = subprocess.run(["git", "-C", str(gitops), "log", "-1", "--format=%B", "HEAD^2"], capture_output=True,
                             text=True, check=True).stdout
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True,
                            check=True).stdout
    found = dict(line.split(": ", 1) for line in parsed.splitlines())
    assert list(found) == list(trailers.ORDER)
    assert found[trailers.MODEL] == "ranker" and found[trailers.VERSION] == "4"
    assert found[trailers.ENVIRONMENT] == "prod" and found[trailers.NAMESPACE] == "search-prod"
    assert found[trailers.REPLACES] == "3" and found[trailers.GATE] == "pass"
    assert found[trailers.SOURCE_TIME] == "2026-01-25T00:00:00+00:00"
    assert found[trailers.SOURCE_COMMIT] == f"{int(known.T0 + 20 * DAY):040x}"
    assert found[trailers.ARTIFACT].endswith("/search/ranker:4") and found[trailers.ARTIFACT_DIGEST] == "none"


def test_every_figure_of_the_known_history(gitops: Path) -> None:
    report = measure(gitops, "28d", known.UNTIL)
    platform = report.platform
    assert report.environment == "prod"
    assert (platform.deployments, platform.failures, platform.rollbacks, platform.reverts) == (7, 2, 1, 1)
    assert platform.per_day == pytest.approx(7 / 28)
    # Lead times 1d, 2h, 30m, 4h, 1h, 1d, 6h: the median is 4h.
    assert platform.lead_time_median == 4 * HOUR
    assert platform.change_failure_rate == pytest.approx(2 / 7)
    # Restores: the rollback after 3h, the revert after 20m.
    assert platform.restore_median == (3 * HOUR + 20 * 60) / 2 and platform.restores == 2
    assert platform.bands == {"deployment_frequency": Band.HIGH, "lead_time": Band.ELITE,
                              "change_failure_rate": Band.LOW, "time_to_restore": Band.HIGH}
    churn, ranker = report.models
    assert (churn.name, churn.deployments, churn.lead_time_median, churn.restore_median) == (
        "fraud/churn", 3, 2 * HOUR, 3 * HOUR)
    assert (ranker.name, ranker.deployments, ranker.lead_time_median, ranker.restore_median) == (
        "search/ranker", 4, 5 * HOUR, 20 * 60)
    assert [team.name for team in report.teams] == ["fraud", "search"]
    failed = {(item.model, item.version): item.failure for item in report.deployments if item.failed_at}
    assert failed == {("churn", "1.1.0"): "rolled back to 1.0.0", ("ranker", "2"): "reverted"}


def test_the_window_and_filters_narrow_what_counts(gitops: Path) -> None:
    history = read_history(gitops, "main")
    # The 0.9.0 deployment ten days before T0 falls outside the 28 days; a 40-day window takes it in.
    wide = compute(history, "prod", Window(known.UNTIL - 40 * DAY, known.UNTIL), "repo")
    assert wide.platform.deployments == 8
    staging = compute(history, "staging", Window(known.T0, known.UNTIL), "repo")
    assert staging.platform.deployments == 1 and staging.platform.lead_time_median == 4 * HOUR
    search = measure(gitops, "28d", known.UNTIL, team="search")
    assert search.platform.name == "search" and search.platform.deployments == 4 and len(search.models) == 1
    churn = measure(gitops, "28d", known.UNTIL, model="churn")
    assert churn.platform.deployments == 3 and churn.platform.failures == 1


def test_json_markdown_and_html_carry_the_same_figures(gitops: Path) -> None:
    report = measure(gitops, "28d", known.UNTIL)
    data = json.loads(to_json(report))
    assert data["schema"] == "shipway.dev/dora-report/v1"
    assert data["platform"]["lead_time_median_seconds"] == 4 * HOUR
    assert data["platform"]["bands"]["change_failure_rate"] == "low"
    assert sum(row["deployments"] for row in data["weekly"]) == 7 and len(data["weekly"]) == 4
    assert [row["failed"] for row in data["weekly"]] == [1, 1, 0, 0]
    markdown = to_markdown(report)
    assert "| Lead time for changes | 4h | **elite** |" in markdown
    assert "| Change failure rate | 28.6% (2/7) | **low** |" in markdown
    page = to_html(report)
    # Self-contained: no external asset, the charts' data embedded.
    assert "src=" not in page and "href=" not in page and "<link" not in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="weekly-chart"' in page
    assert page.count('class="week"') == 4 and 'data-deployments="3" data-failed="1"' in page
    assert 'data-model="search/ranker"' in page and 'data-key="change_failure_rate" data-band="low"' in page
    embedded = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    assert json.loads(embedded) == data


def test_cli_writes_each_format_and_refuses_bad_input(gitops: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["dora", "--gitops-repo", str(gitops), "--since", "28d", "--until", UNTIL_ISO,
                               "--format", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["platform"]["deployments"] == 7
    page = tmp_path / "dora.html"
    done = runner.invoke(app, ["dora", "--gitops-repo", str(gitops), "--since", "28d", "--until", UNTIL_ISO,
                               "--format", "html", "-o", str(page)])
    assert done.exit_code == 0 and page.read_text().startswith("<!DOCTYPE html>")
    table = tmp_path / "dora.txt"
    done = runner.invoke(app, ["dora", "--gitops-repo", str(gitops), "--since", "28d", "--until", UNTIL_ISO,
                               "-o", str(table)])
    assert done.exit_code == 0 and "search/ranker" in table.read_text() and "4h elite" in table.read_text()
    for args, message in ((["--since", "ninety days"], '--since "ninety days" is not a duration'),
                          (["--until", "yesterday"], '--until "yesterday" is not an ISO 8601 time'),
                          (["--gitops-repo", str(tmp_path)], "is not a git clone")):
        base = ["dora", "--gitops-repo", str(gitops)]
        done = runner.invoke(app, [*base, *args])
        assert done.exit_code == 2, (args, done.output)
        assert message in done.output and "Traceback" not in done.output


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * DAY), ("12w", 84 * DAY), ("1d12h", 36 * HOUR)])
def test_window_lengths(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


def test_a_promotion_pinned_by_digest_records_the_digest(tmp_path: Path) -> None:
    """promote's artifact_digest (the tag resolved against the registry) reaches Shipway-Artifact-Digest."""
    from shipway.delivery.gitops_repo import init_gitops
    from shipway.delivery.promote import GateVerdict, promote

    repo = tmp_path / "gitops"
    init_gitops(repo, known.profile(), json.dumps(known.profile()))
    digest = "sha256:" + "ab" * 32
    done = promote(known.spec("churn", "fraud", "2.0.0"), known.profile(), repo, "staging",
                   GateVerdict("pass", "gate-report.json", model="churn", version="2.0.0"), artifact_digest=digest)
    message = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%(trailers:only=true)", done.commit],
                             capture_output=True, text=True, check=True).stdout
    assert f"{trailers.ARTIFACT_DIGEST}: {digest}" in message
    assert f"/fraud/churn@{digest}" in message


def test_the_cli_records_the_model_repos_commit_and_its_time(tmp_path: Path) -> None:
    """`shipway promote` takes the source commit and its committer time from the model repo model.yaml is in."""
    runner = CliRunner()
    platform = tmp_path / "platform.json"
    platform.write_text(json.dumps(known.profile()))
    assert runner.invoke(app, ["init-gitops", str(tmp_path / "gitops"), "--platform", str(platform)]).exit_code == 0
    model_repo = tmp_path / "model"
    model_repo.mkdir()
    (model_repo / "model.yaml").write_text("name: churn\nteam: fraud\nversion: 1.0.0\nruntime: sklearn\n")
    stamp = {"GIT_COMMITTER_DATE": "2026-02-03T04:05:06+00:00", "GIT_AUTHOR_DATE": "2026-02-03T04:05:06+00:00"}
    for args in (["init", "--quiet"], ["add", "model.yaml"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                                              "--quiet", "-m", "model"]):
        subprocess.run(["git", "-C", str(model_repo), *args], check=True, env={**os.environ, **stamp})
    head = subprocess.run(["git", "-C", str(model_repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    done = runner.invoke(app, ["promote", str(model_repo / "model.yaml"), "--gitops-repo", str(tmp_path / "gitops"),
                               "--env", "staging", "--no-gate", "--artifact-digest", "sha256:" + "e" * 64])
    assert done.exit_code == 0, done.output
    message = subprocess.run(["git", "-C", str(tmp_path / "gitops"), "log", "-1", "--format=%(trailers:only=true)",
                              "promote/staging/churn-1.0.0"], capture_output=True, text=True, check=True).stdout
    assert f"{trailers.SOURCE_COMMIT}: {head}" in message
    assert f"{trailers.SOURCE_TIME}: 2026-02-03T04:05:06+00:00" in message
