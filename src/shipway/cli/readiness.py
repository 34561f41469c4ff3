"""`shipway readiness`: the AI delivery readiness assessment, from a blueprint and optional live evidence."""

from __future__ import annotations

from pathlib import Path
import typer

from shipway.cli._common import emit_report, err_console, guarded
from shipway.report_output import ReportFormat

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
    from shipway.readiness.output import WRITERS

    emit_report(report, output_format, output, WRITERS, report.verdict)
    if fail_under is not None and report.passed < fail_under:
        err_console.print(f"[bold red]readiness {report.passed} is under --fail-under {fail_under}[/]",
                          highlight=False)
        raise typer.Exit(1)

