"""`shipway charts pull` (fill the chart cache) and `shipway diff A B` (what a blueprint change does)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from shipway.cli._common import BadOption, console, err_console, guarded, print_uncut

charts_app = typer.Typer(help="The pinned Helm charts: fill the local cache synth renders them from.",
                         no_args_is_help=True)


class DiffFormat(str, Enum):
    """How `diff` reports."""

    table = "table"
    json = "json"


@charts_app.command("pull")
def pull(
    names: list[str] = typer.Argument(None, help="Catalog charts to pull; all when none are named."),
    charts: Path | None = typer.Option(None, "--charts", envvar="SHIPWAY_CHARTS", show_default=False,
                                       help="Chart cache to fill; default: the user cache folder."),
    plain_http: bool = typer.Option(False, "--plain-http", envvar="SHIPWAY_PLAIN_HTTP", show_envvar=True,
                                    help="Speak HTTP, not HTTPS, to OCI registries (local registries)."),
) -> None:
    """Fetch every pinned chart into the cache, checking each archive against its repository's digest."""
    with guarded():
        from rich.markup import escape
        from rich.table import Table

        from shipway import catalog
        from shipway.charts.cache import default_dir
        from shipway.charts.pull import pull as pull_chart
        unknown = sorted(set(names or []) - set(catalog.CHARTS))
        if unknown:
            raise BadOption(f"not in the catalog: {', '.join(unknown)}; known: {', '.join(sorted(catalog.CHARTS))}")
        root = charts or default_dir()
        table = Table("chart", "version", "from", "sha256", "checked against")
        for name in names or sorted(catalog.CHARTS):
            pulled = pull_chart(catalog.CHARTS[name], root, plain_http)
            table.add_row(name, pulled.chart.version, escape(pulled.chart.repo), pulled.digest.removeprefix("sha256:")[:16],
                          pulled.verified)
        print_uncut(table)
        err_console.print(f"chart cache: {escape(str(root))}; render through it with `shipway synth --charts "
                          f"{escape(str(root))}`", highlight=False)


def diff(
    before: Path = typer.Argument(..., help="A synth output folder (before the change)."),
    after: Path = typer.Argument(..., help="A synth output folder (after the change)."),
    output_format: DiffFormat = typer.Option(DiffFormat.table, "--format", help="table or json."),
) -> None:
    """Objects and release values added, removed or changed between two synth outputs, field by field.

    Exit 0 when they are the same, 1 when they differ (like diff(1)).
    """
    with guarded():
        from rich.markup import escape
        from rich.table import Table

        from shipway.charts.diff import MISSING, as_json, diff as diff_outputs

        entries = diff_outputs(before, after)
        if output_format is DiffFormat.json:
            typer.echo(as_json(entries))
        else:
            table = Table("", "what", "field", "before", "after")
            marks = {"added": "[green]+[/]", "removed": "[red]-[/]", "changed": "[yellow]~[/]"}
            for entry in entries:
                if entry.status != "changed":
                    table.add_row(marks[entry.status], escape(f"{entry.kind} {entry.key}"), "", "", "")
                for change in entry.changes:
                    shown = [("" if value == MISSING else escape(_short(value))) for value in (change.before,
                                                                                               change.after)]
                    table.add_row(marks["changed"], escape(f"{entry.kind} {entry.key}"), escape(change.path), *shown)
            print_uncut(table)
            counts = {status: sum(e.status == status for e in entries) for status in ("added", "removed", "changed")}
            console.print(f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed")
        raise typer.Exit(1 if entries else 0)


def _short(value: object, limit: int = 80) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    """Add `charts` and `diff` to the app."""
    app.add_typer(charts_app, name="charts")
    app.command("diff")(diff)
