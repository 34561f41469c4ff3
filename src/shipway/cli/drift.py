"""`shipway drift check`: a batch file's drift against the reference profile, as the sidecar measures it."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Optional

import typer

from shipway.cli._common import console, guarded


class CheckFormat(StrEnum):
    """How `drift check` shows its result."""

    TABLE = "table"
    JSON = "json"


def check(
    profile: Path = typer.Argument(..., help="Reference profile JSON from `shipway drift profile`."),
    data: Path = typer.Argument(..., help="The batch to check: a .csv or .parquet file with the profiled columns."),
    output_format: CheckFormat = typer.Option(
        CheckFormat.TABLE, "--format", help="table (one row per feature) or json."
    ),
    max_psi: Optional[float] = typer.Option(
        None, "--max-psi", help="Bound on any feature's PSI; default the profile's (the platform default, 0.25)."
    ),
    min_rows: int = typer.Option(1, "--min-rows", help="Rows a feature needs in the batch (missing included) to count."),
    prediction: Optional[str] = typer.Option(
        None, "--prediction", help="Column with the model's predictions, checked against the profile's."
    ),
) -> None:
    """Compare a batch with the training profile: PSI, JS, KS, two-sample chi-square and missing share per feature.

    Exit 0 when no feature's PSI is over the bound, 1 when any is, 2 on bad input.
    """
    with guarded():
        from shipway.drift.check import check_file

        result = check_file(profile, data, max_psi, min_rows, prediction)
    if output_format is CheckFormat.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _show(result)
    raise typer.Exit(1 if result.drifted else 0)


def _figure(value: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(value) else f"{value + 0.0:.{digits}g}"


def _show(result) -> None:  # noqa: ANN001 - DriftCheck, imported lazily
    from rich.table import Table

    statistics = result.statistics
    table = Table(title=f"drift of {result.data} ({statistics.rows} rows) against {result.profile}")
    for heading in ("feature", "kind", "rows", "missing (ref)", "PSI", "JS", "KS", "chi2 p", "verdict"):
        table.add_column(heading, justify="left" if heading in ("feature", "kind", "verdict") else "right")
    shown = list(statistics.features) + ([statistics.prediction] if statistics.prediction else [])
    for feature in shown:
        if feature.rows < result.min_rows:
            verdict = f"[yellow]fewer than {result.min_rows} rows[/]"
        else:
            verdict = "[bold red]over the bound[/]" if result.over(feature) else "[green]ok[/]"
        table.add_row(
            feature.name, feature.kind, str(feature.rows),
            f"{_figure(feature.missing_share * 100, 3)}% ({_figure(feature.reference_missing_share * 100, 3)}%)",
            _figure(feature.psi), _figure(feature.js), _figure(feature.ks), _figure(feature.chi2_pvalue), verdict,
        )
    console.print(table)
    if result.drifted:
        console.print(f"[bold red]drift[/]: PSI over {result.max_psi:g} on {', '.join(result.drifted)}",
                      highlight=False)
    else:
        console.print(f"no feature's PSI is over {result.max_psi:g}", highlight=False)
