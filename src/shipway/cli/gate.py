"""`shipway gate`: the statistical validation gate between a candidate model and production."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from shipway.cli._common import console, err_console, former_name, guarded

if TYPE_CHECKING:
    from shipway.gate.decision import GateResult


def register(app: typer.Typer) -> None:
    """Add the `gate` command to the app."""
    app.command("gate")(gate)


def gate(
    data: Path = typer.Argument(..., help="Holdout predictions: a parquet, CSV or npz file."),
    labels: str = typer.Option(..., "--labels", help="Column (npz: array) with the true labels."),
    candidate: str = typer.Option(..., "--candidate", help="Column with the candidate model's predictions."),
    baseline: str = typer.Option(..., "--baseline", help="Column with the production model's predictions."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="model.yaml whose gate section gives metrics, margin, confidence and slices; "
        "the options below override it."
    ),
    metrics: list[str] = typer.Option(
        [], "--metric", help="accuracy, f1, roc_auc, log_loss, rmse or mae (repeatable; each must pass). "
        "Default: model.yaml's gate.metrics."
    ),
    margin: Optional[float] = typer.Option(
        None, "--margin", help="Non-inferiority margin: the candidate may be worse by at most this much. "
        "Default: model.yaml's gate.margin, else 0."
    ),
    min_improvement: Optional[float] = typer.Option(
        None, "--min-improvement", help="Instead of a margin: the candidate must be better by at least this much."
    ),
    confidence: Optional[float] = typer.Option(
        None, "--confidence", help="Confidence level of the two-sided interval. "
        "Default: model.yaml's gate.confidence, else 0.95."
    ),
    resamples: int = typer.Option(2000, "--resamples", help="Paired bootstrap resamples."),
    permutations: int = typer.Option(1000, "--permutations", help="Paired permutation test draws (0: skip)."),
    slices: list[str] = typer.Option(
        [], "--slice", help="Column to slice by (repeatable); Holm-corrected. Default: model.yaml's gate.slices."
    ),
    report: Path = typer.Option(Path("gate-report"), "-o", "--output", help="Folder for the JSON, Markdown and PNG."),
    report_former: Optional[Path] = former_name("--report"),
    model_version: Optional[str] = typer.Option(
        None, "--model-version", help="Version judged, recorded in the report for promote to check. "
        "Default: model.yaml's version."
    ),
    artifact_digest: Optional[str] = typer.Option(
        None, "--artifact-digest", help="Digest of the candidate's artifact (sha256:...), recorded when known."
    ),
    task: str = typer.Option("auto", "--task", help="auto, binary, multiclass or regression."),
    positive_class: Optional[str] = typer.Option(
        None, "--positive-class", help="The positive class of a binary gate (ROC AUC, F1, log loss, probabilities "
        "cut at 0.5). Default: model.yaml's gate.positiveClass, else the larger numeric class, else the text class "
        "named yes/true/positive/1; the report names the class and the rule."
    ),
    classes: list[str] = typer.Option(
        [], "--class", help="A class the labels and predictions may hold (repeatable); any other value is bad "
        "input. Default: model.yaml's gate.classes, else the labels' own classes."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampling; the same seed gives the same report."),
) -> None:
    """Decide with a paired bootstrap whether the candidate may replace the baseline.

    Exit 0 pass, 1 fail, 2 bad input, 3 insufficient evidence (fewer rows than the verdict needs; the
    report says how many). Only 0 lets a version ship.
    """
    report = report_former or report
    with guarded():
        from shipway.gate import GateOptions, load_gate_data, resolve_settings, run_gate
        from shipway.gate.decision import EXIT_CODES
        from shipway.gate.errors import GateInputError
        from shipway.gate.report import combined_decision, subject, write_reports
        from shipway.spec import load_model_spec

        options = GateOptions(tuple(metrics), margin, min_improvement, confidence, tuple(slices), tuple(classes),
                              positive_class)
        settings = resolve_settings(options, model)
        configs = settings.configs(task=task, resamples=resamples, permutations=permutations, seed=seed)
        holdout = load_gate_data(data, labels, candidate, baseline, settings.slices)
        results = [run_gate(holdout, config) for config in configs]
        if artifact_digest is not None and not re.fullmatch(r"sha256:[a-f0-9]{64}", artifact_digest):
            raise GateInputError(f"--artifact-digest {artifact_digest!r} is not a digest: give sha256: and 64 "
                                 "lower-case hex digits, as `shipway model push` prints")
        spec = load_model_spec(model) if model is not None else None
        judged = subject(spec.name if spec else None, model_version or (spec.version if spec else None),
                         artifact_digest)
        paths = write_reports(results, report, judged)
        decision = combined_decision(results)
    for result in results:
        _show(result, named=len(results) > 1)
    if len(results) > 1:
        failed = [result.metric for result in results if result.decision == "fail"]
        unsure = [result.metric for result in results if result.decision == "insufficient evidence"]
        said = [f"failed on {', '.join(failed)}"] if failed else []
        said += [f"insufficient evidence on {', '.join(unsure)}"] if unsure else []
        console.print(f"gate {_VERDICTS[decision]}: " + ("; ".join(said) or "every metric passed"))
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", highlight=False)
    raise typer.Exit(EXIT_CODES[decision])


_VERDICTS = {"pass": "[bold green]PASS[/]", "fail": "[bold red]FAIL[/]",
             "insufficient evidence": "[bold yellow]INSUFFICIENT EVIDENCE[/]"}


def _show(result: GateResult, named: bool = False) -> None:
    """Print the decision as a table, then the reasons and warnings (named by metric when there are several)."""
    from rich.table import Table

    overall, config = result.overall, result.config
    verdict = _VERDICTS[result.decision]
    table = Table(title=f"gate {verdict}: {result.metric} ({result.task}), {config.mode}")
    for heading in ("rows", "candidate", "baseline", "improvement", f"{config.confidence:.0%} interval", "threshold / p"):
        table.add_column(heading, justify="right" if heading != "rows" else "left")
    table.add_row(
        f"all ({overall.rows})",
        _figure(overall.candidate),
        _figure(overall.baseline),
        _figure(overall.improvement),
        f"[{_figure(overall.low)}, {_figure(overall.high)}]",
        _figure(config.threshold),
    )
    for item in result.slices:
        if item.estimate is None:
            table.add_row(f"{item.column}={item.value}", "", "", "", "", item.note)
            continue
        mark = " [red]regressed[/]" if item.regressed else ""
        table.add_row(
            f"{item.column}={item.value} ({item.estimate.rows})",
            _figure(item.estimate.candidate),
            _figure(item.estimate.baseline),
            _figure(item.estimate.improvement),
            f"[{_figure(item.estimate.low)}, {_figure(item.estimate.high)}]",
            f"Holm p {item.p_holm:.3g}{mark}",
        )
    console.print(table)
    if result.positive_class is not None:
        console.print(f"- positive class: {result.positive_class} ({result.positive_rule})", highlight=False)
    for reason in result.reasons:
        console.print(f"- {reason}", highlight=False)
    if result.mcnemar is not None:
        console.print(f"- McNemar ({result.mcnemar.method}): p = {result.mcnemar.p_value:.4g}", highlight=False)
    if result.permutation is not None:
        console.print(f"- permutation test: p = {result.permutation.p_value:.4g}", highlight=False)
    for warning in result.warnings:
        prefix = f"{result.metric}: " if named else ""
        err_console.print(f"[yellow]warning:[/] {prefix}{warning}", highlight=False)


def _figure(value: float) -> str:
    """Four significant digits, never "-0"."""
    return f"{float(value) + 0.0:.4g}"
