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
    arguments += ["--report", str(report or data.parent / "report"), "--permutations", "200", "--resamples", "500"]
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
