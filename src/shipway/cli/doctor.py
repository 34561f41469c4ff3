"""`shipway doctor`: is this machine ready to stand up and drive the platform."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

from typing import TYPE_CHECKING

import typer

from shipway.cli._common import console, guarded

if TYPE_CHECKING:
    from shipway.doctor import CheckResult, Report


class OutputFormat(StrEnum):
    """How the report is printed."""

    TABLE = "table"
    JSON = "json"


def register(app: typer.Typer) -> None:
    """Add `doctor` to the app."""

    @app.command()
    def doctor(
        blueprint: Path | None = typer.Option(
            None, "--blueprint", "-b", help="Check for this blueprint's cluster (kind, or the kube context it names)."
        ),
        output_format: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json."),
    ) -> None:
        """Check the tools, kube context, memory and disk this machine needs; exit 1 when something is missing."""
        with guarded():
            # Imported here so that `shipway --help` stays fast.
            from shipway.doctor import Target, diagnose, target_from_blueprint

            target = target_from_blueprint(blueprint) if blueprint is not None else Target()
            report = diagnose(target)
        if output_format is OutputFormat.JSON:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            _print_table(report)
        if not report.ok:
            raise typer.Exit(1)


def _status_cell(result: CheckResult) -> str:
    """Colour by consequence: red blocks, yellow is a problem with an optional tool."""
    from shipway.doctor import Status

    status = result.status.value
    if result.status in (Status.OK, Status.SKIPPED):
        return f"[{'green' if result.status is Status.OK else 'dim'}]{status}[/]"
    return f"[red]{status}[/]" if result.blocking else f"[yellow]{status} (optional)[/]"


def _print_table(report: Report) -> None:
    from rich.markup import escape
    from rich.table import Table

    from shipway.doctor import Status

    table = Table(title="shipway doctor", title_justify="left")
    for column in ("check", "status", "found", "required", "what to do"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        advice = result.fix if result.status is not Status.OK and result.fix else result.detail
        table.add_row(
            escape(result.name), _status_cell(result), escape(result.found), escape(result.required), escape(advice)
        )
    console.print(table)
    blocking = [result.name for result in report.results if result.blocking]
    if blocking:
        console.print(f"[bold red]not ready:[/] {escape(', '.join(blocking))}")
    else:
        console.print("[bold green]ready[/]")
