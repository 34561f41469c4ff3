"""`shipway dora`: deployment frequency, lead time, change failure rate and time to restore for models."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from shipway.cli._common import emit_report, guarded
from shipway.report_output import ReportFormat


def register(app: typer.Typer) -> None:
    """Add `dora` to the app."""
    app.command("dora")(dora)


def _until(text: str | None) -> float | None:
    if text is None:
        return None
    from shipway.dora.history import DoraInputError

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DoraInputError(f'--until "{text}" is not an ISO 8601 time; give one like 2026-03-01 or '
                           "2026-03-01T12:00:00Z") from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def dora(
    gitops_repo: Path = typer.Option(..., "--gitops-repo", help="A clone of the GitOps repository."),
    prometheus: str | None = typer.Option(
        None, "--prometheus", help="Prometheus URL: Argo Rollouts' aborts and failed analyses count as failed changes."
    ),
    since: str = typer.Option("90d", "--since", help="Length of the window measured, e.g. 90d, 12w."),
    until: str | None = typer.Option(None, "--until", help="End of the window (ISO 8601, UTC); now when absent."),
    env: str | None = typer.Option(
        None, "--env", help="Environment measured; the platform's last (production) when absent."
    ),
    team: str | None = typer.Option(None, "--team", help="Only this team's models."),
    model: str | None = typer.Option(None, "--model", help="Only this model."),
    output_format: ReportFormat = typer.Option(ReportFormat.TABLE, "--format", help="table, json, markdown or html."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
) -> None:
    """DORA's four keys for model delivery, per model, team and platform, from the GitOps history."""
    with guarded():
        from shipway.dora.measure import measure
        from shipway.dora.output import WRITERS

        report = measure(gitops_repo, since, _until(until), env, prometheus, team, model)
        emit_report(report, output_format, output, WRITERS,
                    f"{report.platform.deployments} deployments to {report.environment}")
