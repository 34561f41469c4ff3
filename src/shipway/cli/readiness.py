"""`shipway readiness`: the AI delivery readiness assessment, from a blueprint and optional live evidence."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipway.cli._common import console, err_console, guarded

if TYPE_CHECKING:
    from shipway.readiness import Report


class ReportFormat(StrEnum):
    """How the assessment is written."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


def register(app: typer.Typer) -> None:
    """Add `readiness` to the app."""
    app.command("readiness")(readiness)


def readiness(
    blueprint: Path = typer.Argument(..., help="Blueprint YAML file."),
    context: str | None = typer.Option(
        None, "--context", help="kube context of a live cluster to check: CRDs, releases running, rules loaded."
    ),
    model_repos: list[Path] = typer.Option(
        [], "--model-repo", help="A model repository to check (model.yaml, CI, gate); repeat for several."
    ),
    gitops_repo: Path | None = typer.Option(
        None, "--gitops-repo", help="A clone of the GitOps repository: its history's DORA keys join the assessment."
    ),
    since: str = typer.Option("90d", "--since", help="Window of the GitOps history measured, e.g. 90d."),
    output_format: ReportFormat = typer.Option(
        ReportFormat.TABLE, "--format", help="table, json, markdown or html."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_under: int | None = typer.Option(
        None, "--fail-under", min=0, help="Exit 1 when fewer than N boxes are checked (for CI)."
    ),
) -> None:
    """Score the platform on the AI delivery readiness checklist; unknown sources never count as passed."""
    with guarded():
        # Imported here so that `shipway --help` stays fast.
        from shipway.readiness import KubeCluster, assess, load_repos
        from shipway.spec import load_blueprint

        spec = load_blueprint(blueprint)
        repos = load_repos(model_repos)
        dora = None
        if gitops_repo is not None:
            from shipway.dora.measure import measure

            dora = measure(gitops_repo, since)
        report = assess(spec, str(blueprint), KubeCluster(context) if context else None, repos, dora)
    _emit(report, output_format, output)
    if fail_under is not None and report.passed < fail_under:
        err_console.print(f"[bold red]readiness {report.passed} is under --fail-under {fail_under}[/]",
                          highlight=False)
        raise typer.Exit(1)


def _emit(report: Report, output_format: ReportFormat, output: Path | None) -> None:
    import io

    from rich.console import Console

    from shipway.files import write_atomic
    from shipway.readiness.output import to_html, to_json, to_markdown, to_rich

    if output_format is ReportFormat.TABLE:
        if output is None:
            for renderable in to_rich(report):
                console.print(renderable)
            return
        recorder = Console(record=True, width=160, file=io.StringIO())
        for renderable in to_rich(report):
            recorder.print(renderable)
        text = recorder.export_text()
    else:
        text = {ReportFormat.JSON: to_json, ReportFormat.MARKDOWN: to_markdown,
                ReportFormat.HTML: to_html}[output_format](report)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_atomic(output, text)
    console.print(f"wrote {output}: {report.verdict}", highlight=False)
