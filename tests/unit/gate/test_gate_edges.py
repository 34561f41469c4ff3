"""Issue #20 (gate cases 1-5) and #12 item 7: the gate never gives a confident wrong answer at the edges.

Each test builds the case's holdout and asserts the figures or the refusal it must produce now; the
docstrings give what the same input produced before the fix.
"""

from __future__ import annotations

import json
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


def _gate(app: typer.Typer, data: Path, *extra: str):
    arguments = [str(data), "--labels", "y", "--candidate", "new", "--baseline", "prod",
                 "--report", str(data.parent / "report"), "--permutations", "0", "--resamples", "500", *extra]
    return CliRunner().invoke(app, arguments)


def _said(result) -> str:
    return " ".join(result.output.split())


def _report(data: Path) -> dict:
    return json.loads((data.parent / "report" / "gate-report.json").read_text())


def _worse_candidate(rows: int = 2000, seed: int = 20) -> pd.DataFrame:
    """A candidate right 73 % of the time against a baseline right 80.5 %: truly worse."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    candidate = np.where(rng.random(rows) < 0.730, labels, 1 - labels)
    baseline = np.where(rng.random(rows) < 0.805, labels, 1 - labels)
    return pd.DataFrame({"y": labels, "new": candidate, "prod": baseline})


@pytest.mark.parametrize("column", ["prod", "new"])
def test_case_1_a_stray_string_in_a_prediction_column_is_bad_input(app, tmp_path: Path, column: str) -> None:
    """Before: "one" in the baseline column read baseline accuracy 0 and passed (exit 0) a worse candidate."""
    frame = _worse_candidate()
    data = tmp_path / "holdout.csv"
    clean = tmp_path / "clean.csv"
    frame.to_csv(clean, index=False)
    frame[column] = frame[column].astype(object)
    frame.loc[17, column] = "one"
    frame.to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy", "--margin", "0.01")
    assert result.exit_code == 2, result.output
    assert (f"holdout.csv: column '{column}', row 18: 'one' is not a number, but 1999 of the column's 2000 "
            "values are") in _said(result)
    # Without the stray row the same candidate fails as it must.
    result = _gate(app, clean, "--metric", "accuracy", "--margin", "0.01")
    assert result.exit_code == 1, result.output
    report = _report(clean)
    assert report["overall"]["candidate"] == pytest.approx(0.7305, abs=0.01)
    assert report["overall"]["baseline"] == pytest.approx(0.8185, abs=0.01)


def test_case_1_labels_stored_as_text_against_numeric_predictions_are_bad_input(app, tmp_path: Path) -> None:
    """Before: labels "0"/"1" (parquet strings) against integer predictions read accuracy 0 = 0 and passed."""
    frame = _worse_candidate()
    frame["y"] = frame["y"].astype(str)
    data = tmp_path / "holdout.parquet"
    frame.to_parquet(data)
    result = _gate(app, data, "--metric", "accuracy", "--margin", "0.01")
    assert result.exit_code == 2, result.output
    assert ("column 'new', row 1: 1 is a number, but the classes of 'y' are text ('0', '1'); store labels and "
            "predictions as the same type") in _said(result)


def test_case_2_predicted_labels_outside_the_label_classes_are_bad_input(app, tmp_path: Path) -> None:
    """Before: labels {1, 2} against predictions {0, 1} gave accuracy 0.1365 against 0.091 and passed."""
    frame = _worse_candidate()
    frame["y"] = frame["y"] + 1
    data = tmp_path / "holdout.csv"
    frame.to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy")
    assert result.exit_code == 2, result.output
    first = int(np.flatnonzero(frame["new"].to_numpy() == 0)[0])
    assert f"column 'new', row {first + 1}: 0 is not one of the classes (1, 2)" in _said(result)


def _fraud_scores(rows: int = 2000, seed: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fraud = rng.integers(0, 2, rows)
    new = np.clip(0.5 + (fraud - 0.5) * 0.6 + rng.normal(0, 0.35, rows), 0, 1)
    prod = np.clip(0.5 + (fraud - 0.5) * 0.5 + rng.normal(0, 0.35, rows), 0, 1)
    # "legit" sorts after "fraud": the old rule took it as positive and turned both AUCs upside down.
    return pd.DataFrame({"y": np.where(fraud == 1, "fraud", "legit"), "new": new, "prod": prod})


def test_case_3_text_labels_need_a_positive_class_and_the_report_names_it(app, tmp_path: Path) -> None:
    """Before: "legit" (sorting last) was positive: candidate AUC 0.1072 instead of 0.8928, and a fail.

    The expected AUCs are scikit-learn's roc_auc_score on the same columns with fraud as positive.
    """
    data = tmp_path / "holdout.csv"
    _fraud_scores().to_csv(data, index=False)
    result = _gate(app, data, "--metric", "roc_auc", "--margin", "0.01")
    assert result.exit_code == 2, result.output
    assert "holds the text classes fraud, legit; say which is positive with --positive-class" in _said(result)
    result = _gate(app, data, "--metric", "roc_auc", "--margin", "0.01", "--positive-class", "fraud")
    assert result.exit_code == 0, result.output
    report = _report(data)
    assert report["overall"]["candidate"] == pytest.approx(0.8928483, abs=1e-6)
    assert report["overall"]["baseline"] == pytest.approx(0.8432464, abs=1e-6)
    assert report["positive_class"] == {"class": "fraud", "rule": "--positive-class"}
    assert "positive class: fraud (--positive-class)" in (data.parent / "report" / "gate-summary.md").read_text()


def test_case_3_model_yaml_names_the_positive_class(app, tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    _fraud_scores().to_csv(data, index=False)
    model = tmp_path / "model.yaml"
    model.write_text("name: fraud\nteam: risk\nversion: 1.0.0\nruntime: sklearn\n"
                     "gate:\n  metrics: [auc]\n  margin: 0.01\n  positiveClass: fraud\n")
    result = _gate(app, data, "--model", str(model))
    assert result.exit_code == 0, result.output
    assert _report(data)["positive_class"] == {"class": "fraud", "rule": "model.yaml gate.positiveClass"}


@pytest.mark.parametrize(("labels", "positive", "rule"), [
    ([0, 1], "1", "default: the larger of two numeric classes"),
    ([-1, 1], "1", "default: the larger of two numeric classes"),
    (["no", "yes"], "yes", "default: 'yes' names the positive answer"),
])
def test_case_3_the_default_positive_class_follows_the_documented_rule(
    app, tmp_path: Path, labels: list, positive: str, rule: str
) -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 400)
    scores = np.clip(truth * 0.4 + rng.random(400) * 0.6, 0, 1)
    data = tmp_path / "holdout.parquet"
    pd.DataFrame({"y": np.asarray(labels)[truth], "new": scores, "prod": scores}).to_parquet(data)
    result = _gate(app, data, "--metric", "roc_auc", "--margin", "0.05")
    assert result.exit_code == 0, result.output
    report = _report(data)
    assert report["positive_class"] == {"class": positive, "rule": rule}
    assert report["overall"]["candidate"] > 0.8


def _constant_correction(rows: int = 500, seed: int = 20) -> pd.DataFrame:
    """The baseline always over-predicts by at least 1; the candidate subtracts 0.5: every row gains 0.5 MAE."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(10, 2, rows)
    prod = truth + 1 + np.abs(rng.normal(0, 1, rows))
    return pd.DataFrame({"y": truth, "new": prod - 0.5, "prod": prod})


def test_case_4_a_constant_bootstrap_distribution_still_writes_the_report(app, tmp_path: Path) -> None:
    """Before: the histogram of a (nearly) constant distribution raised: a traceback, exit 1, no report."""
    data = tmp_path / "holdout.csv"
    _constant_correction().to_csv(data, index=False)
    result = _gate(app, data, "--metric", "mae", "--margin", "0.01")
    assert result.exit_code == 0, result.output
    report = _report(data)
    assert report["decision"] == "pass"
    assert report["overall"]["improvement"] == pytest.approx(0.5)
    assert report["overall"]["interval"] == [pytest.approx(0.5), pytest.approx(0.5)]
    assert (data.parent / "report" / "gate-difference.png").read_bytes().startswith(b"\x89PNG")


def test_case_4_no_plotting_problem_changes_the_verdict(app, tmp_path: Path, monkeypatch) -> None:
    from shipway.gate import report as report_module

    def broken(result):
        raise ValueError("Too many bins for data range")

    monkeypatch.setattr(report_module, "_plot", broken)
    data = tmp_path / "holdout.csv"
    _constant_correction().to_csv(data, index=False)
    result = _gate(app, data, "--metric", "mae", "--margin", "0.01")
    assert result.exit_code == 0, result.output
    report = _report(data)
    assert report["decision"] == "pass"
    assert any("plot was not drawn (ValueError: Too many bins" in w for w in report["warnings"])
    assert not (data.parent / "report" / "gate-difference.png").exists()


@pytest.mark.parametrize(("frame", "metric", "needed"), [
    (pd.DataFrame({"y": [1.0], "new": [1.1], "prod": [1.5]}), "mae", 30),
    (pd.DataFrame({"y": [0, 1], "new": [0, 1], "prod": [0, 0]}), "accuracy", 5000),
])
def test_case_5_too_few_rows_is_insufficient_evidence_exit_3(
    app, tmp_path: Path, frame: pd.DataFrame, metric: str, needed: int
) -> None:
    """Before: n = 1 (regression) and n = 2 (classification) passed, exit 0, with one warning."""
    data = tmp_path / "holdout.csv"
    frame.to_csv(data, index=False)
    result = _gate(app, data, "--metric", metric, "--margin", "0.01")
    assert result.exit_code == 3, result.output
    assert "INSUFFICIENT EVIDENCE" in result.output
    report = _report(data)
    assert report["decision"] == "insufficient evidence" and report["passed"] is False
    assert report["exit_code"] == 3
    assert report["rule"]["min_rows"] == 30 and report["rule"]["rows_needed"] == needed
    assert f"about {needed} rows are needed" in report["reasons"][0]


def test_an_interval_wider_than_the_margin_that_straddles_it_is_insufficient_not_fail(app, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 300)
    same = np.where(rng.random(300) < 0.8, labels, 1 - labels)
    other = np.where(rng.random(300) < 0.8, labels, 1 - labels)
    data = tmp_path / "holdout.csv"
    pd.DataFrame({"y": labels, "new": same, "prod": other}).to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy", "--margin", "0.01")
    report = _report(data)
    low, high = report["overall"]["interval"]
    assert low < -0.01 <= high and (high - low) / 2 > 0.01
    assert result.exit_code == 3, result.output
    assert report["rule"]["rows_needed"] > 300


def test_an_interval_wholly_below_the_threshold_fails_at_any_size(app, tmp_path: Path) -> None:
    data = tmp_path / "holdout.csv"
    _worse_candidate().to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy", "--margin", "0.01")
    assert result.exit_code == 1, result.output
    assert _report(data)["decision"] == "fail"


# --- #12 item 7: gate input ----------------------------------------------------------------------


def _yes_in_0_1(frame: pd.DataFrame) -> pd.DataFrame:
    frame["new"] = frame["new"].astype(object)
    frame.loc[41, "new"] = "yes"
    return frame


def _probability_over_1(frame: pd.DataFrame) -> pd.DataFrame:
    frame["new"] = np.where(frame["new"] == 1, 0.8, 0.2)
    frame.loc[4, "new"] = 1.25
    return frame


def _label_7(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[9, "y"] = 7
    return frame


def _label_half(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"y": float})
    frame.loc[3, "y"] = 0.5
    return frame


@pytest.mark.parametrize(("spoil", "extra", "message"), [
    # Before: exit 1, "gate FAIL", candidate accuracy 0.
    (_yes_in_0_1, ("--metric", "accuracy"), "column 'new', row 42: 'yes' is not a number"),
    (_probability_over_1, ("--metric", "roc_auc"), "column 'new', row 5: 1.25 is not a probability in [0, 1]"),
    (_label_7, ("--metric", "accuracy", "--class", "0", "--class", "1"),
     "column 'y', row 10: 7 is not one of the classes (0, 1)"),
    (_label_half, ("--metric", "accuracy"), "column 'y', row 4: 0.5 is not a class label"),
], ids=["yes-in-0/1", "probability-1.25", "label-outside-declared-classes", "fractional-label"])
def test_bad_values_exit_2_naming_file_column_row_and_value(app, tmp_path: Path, spoil, extra, message) -> None:
    data = tmp_path / "holdout.csv"
    spoil(_worse_candidate()).to_csv(data, index=False)
    result = _gate(app, data, *extra)
    assert result.exit_code == 2, result.output
    assert f"holdout.csv: {message}" in _said(result)


def test_text_in_a_regression_column_is_bad_input(app, tmp_path: Path) -> None:
    data = tmp_path / "holdout.parquet"
    pd.DataFrame({"y": ["a"] * 40, "new": [1.0] * 40, "prod": [2.0] * 40}).to_parquet(data)
    result = _gate(app, data, "--metric", "rmse")
    assert result.exit_code == 2, result.output
    assert "column 'y', row 1: 'a' is text, but this metric needs numbers" in _said(result)


def test_messages_show_no_numpy_reprs(app, tmp_path: Path) -> None:
    """Before: "holds a single class (np.int64(1))"."""
    data = tmp_path / "holdout.csv"
    pd.DataFrame({"y": [1] * 40, "new": [1] * 40, "prod": [0] * 40}).to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy")
    assert result.exit_code == 2, result.output
    assert "holds a single class (1)" in _said(result) and "np." not in result.output


def test_a_zero_margin_never_reads_minus_zero(app, tmp_path: Path) -> None:
    """Before: "threshold -0" in the table, the reasons and the summary."""
    data = tmp_path / "holdout.csv"
    pd.DataFrame({"y": [1] * 50 + [2] * 50, "new": [1] * 100, "prod": [1] * 100}).to_csv(data, index=False)
    result = _gate(app, data, "--metric", "accuracy")
    assert result.exit_code == 0, result.output
    summary = (data.parent / "report" / "gate-summary.md").read_text()
    assert "reaches the threshold 0" in _said(result)
    assert "-0" not in result.output and "-0 " not in summary and "| -0 |" not in summary
    report = _report(data)
    assert str(report["rule"]["threshold"]) == "0.0"
