"""The gate's outputs: a versioned JSON report, a Markdown summary for a pull request, and a PNG plot.

Judging several metrics, each metric's three files go into a folder named after it, and the
top-level gate-report.json and gate-summary.md combine them: the candidate passes only if every
metric passes. The combined JSON keeps the schema, `passed`, `decision` and `reasons` that
promotion reads, and lists the metrics in place of one metric's figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from shipway import __version__
from shipway.files import write_atomic
from shipway.gate.decision import EXIT_CODES, FAIL, INSUFFICIENT, PASS, SMALL_SAMPLE_ROWS, Estimate, GateResult

REPORT_SCHEMA = "shipway.dev/gate-report/v1"
REPORT_FILE = "gate-report.json"
SUMMARY_FILE = "gate-summary.md"
PLOT_FILE = "gate-difference.png"


def _number(value: float | None) -> float | None:
    """JSON has no NaN; an undefined figure is null; -0.0 is 0.0."""
    return None if value is None or not math.isfinite(value) else float(value) + 0.0


def _estimate(estimate: Estimate) -> dict[str, Any]:
    return {
        "rows": estimate.rows,
        "candidate": _number(estimate.candidate),
        "baseline": _number(estimate.baseline),
        "improvement": _number(estimate.improvement),
        "interval": [_number(estimate.low), _number(estimate.high)],
        "undefined_resamples": estimate.undefined_resamples,
    }


def report_dict(result: GateResult) -> dict[str, Any]:
    """The report as plain data; `passed` and `decision` are what promotion reads."""
    config = result.config
    return {
        "schema": REPORT_SCHEMA,
        "shipway_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "decision": result.decision,
        "passed": result.passed,
        "exit_code": result.exit_code,
        "reasons": result.reasons,
        "input": {"file": result.source, "columns": result.columns},
        "task": result.task,
        "classes": list(result.classes),
        "positive_class": {"class": result.positive_class, "rule": result.positive_rule},
        "metric": {"name": result.metric, "higher_is_better": result.higher_is_better},
        "rule": {
            "mode": config.mode,
            "margin": config.margin,
            "min_improvement": config.min_improvement,
            "threshold": config.threshold,
            "min_rows": SMALL_SAMPLE_ROWS,
            "rows_needed": result.rows_needed,
            "confidence": config.confidence,
            "improvement_means": "candidate better than baseline, in metric units",
        },
        "bootstrap": {
            "resamples": config.resamples,
            "seed": config.seed,
            "method": result.bootstrap_method,
            "method_detail": result.bootstrap_detail,
            "interval": "percentile, two-sided",
        },
        "overall": _estimate(result.overall),
        "tests": {
            "mcnemar": None
            if result.mcnemar is None
            else {
                "baseline_only_correct": result.mcnemar.baseline_only,
                "candidate_only_correct": result.mcnemar.candidate_only,
                "statistic": result.mcnemar.statistic,
                "p_value": result.mcnemar.p_value,
                "method": result.mcnemar.method,
            },
            "permutation": None
            if result.permutation is None
            else {
                "permutations": result.permutation.permutations,
                "p_value": result.permutation.p_value,
                "method": result.permutation.method,
            },
        },
        "slices": [
            {
                "column": item.column,
                "value": item.value,
                "estimate": None if item.estimate is None else _estimate(item.estimate),
                "p_regression": item.p_value,
                "p_holm": item.p_holm,
                "regressed": item.regressed,
                "note": item.note,
            }
            for item in result.slices
        ],
        "warnings": result.warnings,
        "seconds": round(result.seconds, 3),
    }


def _format(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{float(value) + 0.0:.4g}"


def _verdict(decision: str) -> str:
    return decision.upper()


def markdown_summary(result: GateResult) -> str:
    """A short summary fit for a pull-request comment."""
    config, overall = result.config, result.overall
    verdict = _verdict(result.decision)
    lines = [
        f"### Shipway gate: **{verdict}** ({result.metric}, {result.task})",
        "",
        "| | candidate | baseline | improvement | " + f"{config.confidence:.0%} interval | threshold |",
        "|---|---|---|---|---|---|",
        f"| all ({overall.rows} rows) | {_format(overall.candidate)} | {_format(overall.baseline)} | "
        f"{_format(overall.improvement)} | [{_format(overall.low)}, {_format(overall.high)}] | "
        f"{_format(config.threshold)} |",
    ]
    for item in result.slices:
        if item.estimate is None:
            lines.append(f"| {item.column}={item.value} | n/a | n/a | n/a | n/a | {item.note} |")
            continue
        flag = " **regressed**" if item.regressed else ""
        lines.append(
            f"| {item.column}={item.value} ({item.estimate.rows} rows) | {_format(item.estimate.candidate)} | "
            f"{_format(item.estimate.baseline)} | {_format(item.estimate.improvement)} | "
            f"[{_format(item.estimate.low)}, {_format(item.estimate.high)}] | Holm p = {_format(item.p_holm)}{flag} |"
        )
    lines += ["", f"Rule: {config.mode}; the interval's lower bound must reach the threshold, on at least "
              f"{SMALL_SAMPLE_ROWS} rows."]
    if result.positive_class is not None:
        lines.append(f"- positive class: {result.positive_class} ({result.positive_rule})")
    lines += [f"- {reason}" for reason in result.reasons]
    if result.mcnemar is not None:
        lines.append(
            f"- McNemar ({result.mcnemar.method}): only baseline right {result.mcnemar.baseline_only}, "
            f"only candidate right {result.mcnemar.candidate_only}, p = {_format(result.mcnemar.p_value)}"
        )
    if result.permutation is not None:
        lines.append(
            f"- paired permutation test ({result.permutation.permutations} permutations, "
            f"{result.permutation.method}): "
            f"p = {_format(result.permutation.p_value)}"
        )
    lines.append(
        f"- bootstrap: {config.resamples} paired resamples ({result.bootstrap_method}: {result.bootstrap_detail}), "
        f"seed {config.seed}"
    )
    if result.warnings:
        lines += ["", "**Warnings**", *[f"- {warning}" for warning in result.warnings]]
    return "\n".join(lines) + "\n"




def _plot(result: GateResult) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    finite = result.distribution[np.isfinite(result.distribution)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        # A (nearly) constant distribution has no width for 60 bins: one bar around its value instead.
        if high - low <= 1e-9 * max(1.0, abs(low), abs(high)):
            low, high = low - 0.5e-3 * max(1.0, abs(low)), high + 0.5e-3 * max(1.0, abs(high))
            axes.hist(finite, bins=1, range=(low, high), color="#4c72b0", alpha=0.8, label="bootstrap improvement")
        else:
            axes.hist(finite, bins=60, range=(low, high), color="#4c72b0", alpha=0.8, label="bootstrap improvement")
    axes.axvline(result.config.threshold, color="#c44e52", linewidth=2, label=f"threshold {result.config.threshold:.4g}")
    axes.axvline(0.0, color="black", linewidth=1, linestyle=":")
    if math.isfinite(result.overall.low) and math.isfinite(result.overall.high):
        axes.axvspan(result.overall.low, result.overall.high, color="#55a868", alpha=0.2, label="interval")
    axes.axvline(result.overall.improvement, color="#55a868", linewidth=2, label="observed")
    verdict = _verdict(result.decision)
    axes.set_title(f"{result.metric}: candidate - baseline ({verdict})")
    axes.set_xlabel(f"improvement in {result.metric} (positive: candidate better)")
    axes.set_ylabel("resamples")
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def combined_decision(results: Sequence[GateResult]) -> str:
    """Every metric must pass; any fail is a fail; otherwise any insufficient evidence is that."""
    decisions = {result.decision for result in results}
    if FAIL in decisions:
        return FAIL
    return INSUFFICIENT if INSUFFICIENT in decisions else PASS


def combined_report_dict(results: Sequence[GateResult], reports: Sequence[Path], directory: Path) -> dict[str, Any]:
    """Several metrics' decisions in one report; it passes only if every metric passes."""
    passed = all(result.passed for result in results)
    first = results[0]
    decision = combined_decision(results)
    return {
        "schema": REPORT_SCHEMA,
        "shipway_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "decision": decision,
        "passed": passed,
        "exit_code": EXIT_CODES[decision],
        "reasons": [f"{result.metric}: {reason}" for result in results for reason in result.reasons],
        "input": {"file": first.source, "columns": first.columns},
        "task": first.task,
        "metrics": [
            {
                "name": result.metric,
                "decision": result.decision,
                "passed": result.passed,
                "improvement": _number(result.overall.improvement),
                "interval": [_number(result.overall.low), _number(result.overall.high)],
                "threshold": result.config.threshold,
                "report": report.relative_to(directory).as_posix(),
            }
            for result, report in zip(results, reports, strict=True)
        ],
        "warnings": [f"{result.metric}: {warning}" for result in results for warning in result.warnings],
    }


def combined_summary(results: Sequence[GateResult]) -> str:
    """A table of every metric's decision, then each metric's own summary."""
    lines = [
        f"## Shipway gate: **{_verdict(combined_decision(results))}** ({', '.join(r.metric for r in results)})",
        "",
        "The candidate passes only if every metric passes.",
        "",
        f"| metric | decision | improvement | {results[0].config.confidence:.0%} interval | threshold |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        overall = result.overall
        lines.append(
            f"| {result.metric} | {_verdict(result.decision)} | {_format(overall.improvement)} | "
            f"[{_format(overall.low)}, {_format(overall.high)}] | {_format(result.config.threshold)} |"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(markdown_summary(result) for result in results)


def subject(name: str | None, version: str | None, artifact_digest: str | None = None) -> dict[str, str | None]:
    """What the report judged: promotion refuses a report whose model or version is not the one promoted."""
    return {"name": name, "version": version, "artifactDigest": artifact_digest}


def write_reports(results: Sequence[GateResult], directory: str | Path,
                  judged: dict[str, str | None] | None = None) -> dict[str, Path]:
    """One metric: write_report. Several: each metric's report in DIRECTORY/<metric>, and a combined one.

    JUDGED (see `subject`) names the model, version and artifact digest the reports are about.
    """
    judged = judged or subject(None, None)
    target = Path(directory)
    # A report left by an earlier run must not stand for this one if writing stops halfway.
    (target / REPORT_FILE).unlink(missing_ok=True)
    if len(results) == 1:
        return write_report(results[0], target, judged)
    # One metric's plot at the top level would be taken for the combined decision.
    (target / PLOT_FILE).unlink(missing_ok=True)
    paths = {}
    for result in results:
        paths[f"{result.metric} report"] = write_report(result, target / result.metric, judged)["report"]
    reports = list(paths.values())
    paths["summary"] = target / SUMMARY_FILE
    write_atomic(paths["summary"], combined_summary(results).encode())
    paths["report"] = target / REPORT_FILE
    # Last, as for one metric: the combined JSON's presence means every metric's report is there.
    combined = {**combined_report_dict(results, reports, target), "model": judged}
    write_atomic(paths["report"], (json.dumps(combined, indent=2) + "\n").encode())
    return paths


def write_report(result: GateResult, directory: str | Path,
                 judged: dict[str, str | None] | None = None) -> dict[str, Path]:
    """Write the JSON report (naming what it JUDGED), the Markdown summary and the plot into DIRECTORY."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {"report": target / REPORT_FILE, "summary": target / SUMMARY_FILE, "plot": target / PLOT_FILE}
    # The plot is an illustration: no problem drawing it may cost the report or change the verdict.
    try:
        write_atomic(paths["plot"], _plot(result))
    except Exception as error:  # noqa: BLE001 - matplotlib raises many kinds; none may stop the report
        paths["plot"].unlink(missing_ok=True)
        del paths["plot"]
        result.warnings.append(f"the plot was not drawn ({type(error).__name__}: {error}); the verdict stands")
    write_atomic(paths["summary"], markdown_summary(result).encode())
    # The JSON goes last: its presence means the whole report is there.
    document = {**report_dict(result), "model": judged or subject(None, None)}
    write_atomic(paths["report"], (json.dumps(document, indent=2) + "\n").encode())
    return paths
