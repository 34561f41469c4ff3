"""`shipway gate` end to end through typer: exit codes, reports, and clear messages for bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from shipway.cli.gate import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def _invoke(app: typer.Typer, data: Path, *extra: str, labels: str = "y", report: Path | None = None):
    arguments = [str(data), "--labels", labels, "--candidate", "cand", "--baseline", "base", *extra]
    if "--metric" not in extra:
        arguments += ["--metric", "accuracy"]
    arguments += ["-o", str(report or data.parent / "report"), "--permutations", "200", "--resamples", "500"]
    return CliRunner().invoke(app, arguments)


def _frame(rows: int = 400, candidate_accuracy: float = 0.9, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    return pd.DataFrame(
        {
            "y": labels,
            "cand": np.where(rng.random(rows) < candidate_accuracy, labels, 1 - labels),
            "base": np.where(rng.random(rows) < 0.8, labels, 1 - labels),
            "region": rng.choice(["eu", "us"], rows),
        }
    )


def test_a_better_candidate_passes_and_writes_the_report(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke(app, data, "--margin", "0.02", "--slice", "region")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    report = json.loads((tmp_path / "report" / "gate-report.json").read_text())
    assert report["schema"] == "shipway.dev/gate-report/v1"
    assert report["passed"] is True and report["decision"] == "pass"
    assert report["overall"]["interval"][0] >= -0.02
    assert {s["value"] for s in report["slices"]} == {"eu", "us"}
    assert report["tests"]["mcnemar"]["p_value"] < 0.05
    assert report["bootstrap"]["method"] == "exact-multinomial"
    assert report["tests"]["permutation"]["method"] == "exact-multinomial"
    assert (tmp_path / "report" / "gate-difference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "**PASS**" in (tmp_path / "report" / "gate-summary.md").read_text()
    assert not list((tmp_path / "report").glob(".*.tmp"))


def test_the_report_files_are_readable_like_any_other_file(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    umask = os.umask(0o022)
    try:
        assert _invoke(app, data, "--margin", "0.02").exit_code == 0
    finally:
        os.umask(umask)
    for name in ("gate-report.json", "gate-summary.md", "gate-difference.png"):
        # Not mkstemp's owner-only 0600: a later CI step or another user reads the report.
        assert stat.S_IMODE((tmp_path / "report" / name).stat().st_mode) == 0o644, name


def test_a_worse_candidate_fails_with_exit_1(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    _frame(candidate_accuracy=0.7).to_csv(data, index=False)
    result = _invoke(app, data, "--margin", "0.01")
    assert result.exit_code == 1, result.output
    assert json.loads((tmp_path / "report" / "gate-report.json").read_text())["decision"] == "fail"


def test_a_slice_that_regresses_fails_the_gate_after_holm(app: typer.Typer, tmp_path: Path) -> None:
    frame = _frame(rows=1200, candidate_accuracy=0.95)
    broken = frame["region"] == "us"
    frame.loc[broken, "cand"] = np.where(np.random.default_rng(1).random(int(broken.sum())) < 0.6, 1 - frame.loc[broken, "y"], frame.loc[broken, "y"])
    data = tmp_path / "holdout.parquet"
    frame.to_parquet(data)
    result = _invoke(app, data, "--margin", "0.05", "--slice", "region")
    assert result.exit_code == 1, result.output
    slices = {s["value"]: s for s in json.loads((tmp_path / "report" / "gate-report.json").read_text())["slices"]}
    assert slices["us"]["regressed"] and not slices["eu"]["regressed"]


def test_npz_with_probability_arrays_works_for_roc_auc(app: typer.Typer, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    data = tmp_path / "holdout.npz"
    np.savez(data, y=labels, cand=np.clip(labels * 0.4 + rng.random(300) * 0.6, 0, 1), base=rng.random(300))
    result = _invoke(app, data, "--metric", "roc_auc", "--min-improvement", "0.05")
    assert result.exit_code == 0, result.output


def _write_bad(tmp_path: Path, case: str) -> tuple[Path, str, tuple[str, ...]]:
    """A bad holdout, the labels column to ask for, and the words the message must contain."""
    frame = _frame(rows=50)
    if case == "length mismatch":
        path = tmp_path / "bad.npz"
        np.savez(path, y=frame["y"].to_numpy(), cand=frame["cand"].to_numpy()[:-3], base=frame["base"].to_numpy())
        return path, "y", ("bad.npz", "'cand'", "47 rows", "50")
    if case == "nan":
        frame["base"] = frame["base"].astype(float)
        frame.loc[7, "base"] = np.nan
        path = tmp_path / "bad.csv"
        frame.to_csv(path, index=False)
        return path, "y", ("bad.csv", "'base'", "row 8")
    if case == "single class":
        frame["y"] = 1
        path = tmp_path / "bad.parquet"
        frame.to_parquet(path)
        return path, "y", ("bad.parquet", "'y'", "single class")
    if case == "empty file":
        path = tmp_path / "bad.csv"
        path.write_bytes(b"")
        return path, "y", ("bad.csv", "empty")
    if case == "header only":
        path = tmp_path / "bad.csv"
        path.write_text("y,cand,base\n")
        return path, "y", ("bad.csv", "'y'", "no rows")
    if case == "unknown column":
        path = tmp_path / "bad.parquet"
        frame.to_parquet(path)
        return path, "label", ("bad.parquet", "unknown column 'label'", "available: 'y', 'cand'")
    if case == "not a parquet file":
        path = tmp_path / "bad.parquet"
        path.write_text("y,cand\n1,2\n")
        return path, "y", ("bad.parquet", "not a readable parquet file")
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["length mismatch", "nan", "single class", "empty file", "header only", "unknown column", "not a parquet file"],
)
def test_bad_input_exits_2_with_a_clear_message_and_no_traceback(app: typer.Typer, tmp_path: Path, case: str) -> None:
    path, labels, words = _write_bad(tmp_path, case)
    result = _invoke(app, path, labels=labels)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    for word in words:
        assert word in message
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("--margin", "0.1", "--min-improvement", "0.1"), "not both"),
        (("--confidence", "1.5"), "--confidence"),
        (("--metric", "rmse", "--task", "binary"), "does not apply to binary"),
    ],
)
def test_bad_options_exit_2(app: typer.Typer, tmp_path: Path, options: tuple[str, ...], words: str) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke(app, data, *options)
    assert result.exit_code == 2
    assert words in " ".join(result.output.split())


def test_small_holdout_warns_that_the_margin_is_too_tight(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame(rows=60, candidate_accuracy=0.95).to_parquet(data)
    result = _invoke(app, data, "--margin", "0.005")
    assert "too small for the non-inferiority threshold" in " ".join(result.output.split())
    report = json.loads((tmp_path / "report" / "gate-report.json").read_text())
    assert any("rows would make the interval" in w for w in report["warnings"])


# --- settings from model.yaml ----------------------------------------------------------------

MODEL = """\
name: fraud-score
team: risk
version: 1.0.0
runtime: sklearn
gate:
  metrics: [{metrics}]
  margin: 0.03
  confidence: 0.9
  slices: [region]
"""


def _invoke_model(app: typer.Typer, data: Path, metrics: str, *extra: str, text: str | None = None):
    """`shipway gate DATA --model model.yaml ...`: no --metric, --margin, --confidence or --slice unless given."""
    model = data.parent / "model.yaml"
    model.write_text(MODEL.format(metrics=metrics) if text is None else text)
    arguments = [str(data), "--model", str(model), "--labels", "y", "--candidate", "cand", "--baseline", "base",
                 "-o", str(data.parent / "report"), "--permutations", "200", "--resamples", "500", *extra]
    return CliRunner().invoke(app, arguments)


def test_model_yaml_gives_the_metric_margin_confidence_and_slices(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke_model(app, data, "accuracy")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "gate-report.json").read_text())
    assert report["schema"] == "shipway.dev/gate-report/v1" and report["metric"]["name"] == "accuracy"
    assert (report["rule"]["margin"], report["rule"]["confidence"]) == (0.03, 0.9)
    assert {s["column"] for s in report["slices"]} == {"region"}
    assert "90% interval" in (tmp_path / "report" / "gate-summary.md").read_text()


def test_command_line_options_override_model_yaml(app: typer.Typer, tmp_path: Path) -> None:
    frame = _frame()
    frame["country"] = np.where(frame.index % 2 == 0, "de", "fr")
    data = tmp_path / "holdout.parquet"
    frame.to_parquet(data)
    extra = ("--metric", "f1", "--margin", "0.01", "--confidence", "0.8", "--slice", "country")
    result = _invoke_model(app, data, "accuracy, roc_auc", *extra)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "gate-report.json").read_text())
    assert report["metric"]["name"] == "f1"
    assert (report["rule"]["margin"], report["rule"]["confidence"]) == (0.01, 0.8)
    assert {s["column"] for s in report["slices"]} == {"country"}
    assert not (tmp_path / "report" / "accuracy").exists()


def _mixed_frame(rows: int = 2000, seed: int = 5) -> pd.DataFrame:
    """Rare positives: the candidate barely predicts them, so its accuracy rises while its F1 falls."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.1).astype(int)
    draw = rng.random(rows)
    candidate = np.where(labels == 1, draw < 0.2, draw < 0.01).astype(int)
    baseline = np.where(labels == 1, draw < 0.9, draw < 0.2).astype(int)
    return pd.DataFrame({"y": labels, "cand": candidate, "base": baseline, "region": rng.choice(["eu", "us"], rows)})


def test_several_metrics_each_get_a_report_and_all_must_pass(app: typer.Typer, tmp_path: Path) -> None:
    from shipway.delivery.promote import read_gate_report

    data = tmp_path / "holdout.parquet"
    _mixed_frame().to_parquet(data)
    result = _invoke_model(app, data, "accuracy, f1")
    assert result.exit_code == 1, result.output
    assert "failed on f1" in result.output
    folder = tmp_path / "report"
    combined = json.loads((folder / "gate-report.json").read_text())
    assert combined["schema"] == "shipway.dev/gate-report/v1"
    assert combined["passed"] is False and combined["decision"] == "fail"
    assert [(m["name"], m["passed"], m["report"]) for m in combined["metrics"]] == [
        ("accuracy", True, "accuracy/gate-report.json"),
        ("f1", False, "f1/gate-report.json"),
    ]
    assert any(reason.startswith("f1: lower bound") for reason in combined["reasons"])
    for metric, passed in (("accuracy", True), ("f1", False)):
        single = json.loads((folder / metric / "gate-report.json").read_text())
        assert (single["metric"]["name"], single["passed"]) == (metric, passed)
        assert (single["rule"]["margin"], single["rule"]["confidence"]) == (0.03, 0.9)
        assert (folder / metric / "gate-difference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (folder / metric / "gate-summary.md").is_file()
    summary = (folder / "gate-summary.md").read_text()
    assert "**FAIL** (accuracy, f1)" in summary and "| accuracy | PASS |" in summary and "| f1 | FAIL |" in summary
    assert not (folder / "gate-difference.png").exists()
    # Promotion reads the combined report like a single one, and refuses it naming the failed metric.
    verdict = read_gate_report(folder / "gate-report.json")
    assert verdict.result == "fail" and any(reason.startswith("f1:") for reason in verdict.reasons)


def test_several_passing_metrics_pass_and_promotion_reads_it(app: typer.Typer, tmp_path: Path) -> None:
    from shipway.delivery.promote import read_gate_report

    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke_model(app, data, "accuracy, f1, auc")
    assert result.exit_code == 0, result.output
    combined = json.loads((tmp_path / "report" / "gate-report.json").read_text())
    assert combined["passed"] is True
    assert [m["name"] for m in combined["metrics"]] == ["accuracy", "f1", "roc_auc"]
    assert read_gate_report(tmp_path / "report" / "gate-report.json").result == "pass"


def test_an_unknown_model_yaml_metric_exits_2_naming_the_field(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke_model(app, data, "accuracy, precision")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f'{tmp_path / "model.yaml"}:6:23: gate.metrics[1]: unknown metric "precision"' in message
    assert "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MODEL.format(metrics="accuracy").replace("confidence: 0.9", "confidence: 1.5"),
         ":8:15: gate.confidence: Input should be less than 1"),
        (MODEL.format(metrics="accuracy").replace("team: risk\n", ""), ":1:1: team: required field is missing"),
        ("name: [unclosed\n", ":2:1: YAML syntax error"),
    ],
)
def test_a_bad_model_yaml_exits_2_with_the_loaders_message(
    app: typer.Typer, tmp_path: Path, text: str, words: str
) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    result = _invoke_model(app, data, "", text=text)
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'model.yaml'}{words}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


def test_a_missing_metric_without_model_yaml_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    arguments = [str(data), "--labels", "y", "--candidate", "cand", "--baseline", "base", "-o", str(tmp_path)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert "give --metric, or --model model.yaml" in " ".join(result.output.split())


def test_the_report_names_the_model_version_and_digest_it_judged(app: typer.Typer, tmp_path: Path) -> None:
    from shipway.delivery.promote import read_gate_report

    data = tmp_path / "holdout.parquet"
    _frame().to_parquet(data)
    digest = "sha256:" + "ab" * 32
    for metrics in ("accuracy", "accuracy, f1"):
        result = _invoke_model(app, data, metrics, "--model-version", "9f3c2e1", "--artifact-digest", digest)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "report" / "gate-report.json").read_text())
        assert report["model"] == {"name": "fraud-score", "version": "9f3c2e1", "artifactDigest": digest}, metrics
        verdict = read_gate_report(tmp_path / "report" / "gate-report.json")
        assert (verdict.model, verdict.version, verdict.artifact_digest) == ("fraud-score", "9f3c2e1", digest)
    by_spec = _invoke_model(app, data, "accuracy")
    assert by_spec.exit_code == 0, by_spec.output
    judged = json.loads((tmp_path / "report" / "gate-report.json").read_text())["model"]
    assert (judged["name"], judged["version"], judged["artifactDigest"]) == ("fraud-score", "1.0.0", None)
    bad = _invoke_model(app, data, "accuracy", "--artifact-digest", "latest")
    assert bad.exit_code == 2 and "--artifact-digest 'latest' is not a digest" in bad.output
