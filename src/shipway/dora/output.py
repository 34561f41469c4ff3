"""The DORA report as JSON, Markdown, a self-contained HTML page with inline SVG charts, or a rich table.

The HTML follows the readiness report's page (`shipway.readiness.output`): one file, no external asset,
the charts' data embedded as JSON beside them.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from shipway.dora.metrics import Band, DoraReport, Keys, iso
from shipway.report_output import PAGE_STYLE, ReportWriters

if TYPE_CHECKING:
    from rich.console import RenderableType

BAND_COLOURS = {Band.ELITE: "#1b5e20", Band.HIGH: "#2e7d32", Band.MEDIUM: "#f9a825", Band.LOW: "#c62828",
                Band.NONE: "#9e9e9e"}
KEY_TITLES = {"deployment_frequency": "Deployment frequency", "lead_time": "Lead time for changes",
              "change_failure_rate": "Change failure rate", "time_to_restore": "Time to restore"}


def duration(seconds: float | None) -> str:
    """Seconds as the two largest units, e.g. `2d 4h`, `35m`, `12s`; `-` when unknown."""
    if seconds is None:
        return "-"
    remaining = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts[:2])


def figures(keys: Keys) -> dict[str, str]:
    """Each key's figure as people read it."""
    rate = "-" if keys.change_failure_rate is None else f"{keys.change_failure_rate:.1%}"
    per_week = keys.per_day * 7
    return {
        "deployment_frequency": f"{keys.per_day:.2f}/day" if keys.per_day >= 1 else f"{per_week:.2f}/week",
        "lead_time": duration(keys.lead_time_median),
        "change_failure_rate": f"{rate} ({keys.failures}/{keys.deployments})",
        "time_to_restore": duration(keys.restore_median),
    }


def to_json(report: DoraReport) -> str:
    """The report for machines."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _title(report: DoraReport) -> str:
    return f"DORA metrics: {report.environment}, {iso(report.window.start)[:10]} to {iso(report.window.end)[:10]}"


def to_markdown(report: DoraReport) -> str:
    """The report as Markdown: the platform's keys and bands, then per team and per model."""
    lines = [f"# {_title(report)}", "", f"GitOps repository `{report.repository}`; sources: "
             f"{', '.join(report.sources)}.", "", "| key | figure | band |", "|---|---|---|"]
    shown = figures(report.platform)
    for key, band in report.platform.bands.items():
        lines.append(f"| {KEY_TITLES[key]} | {shown[key]} | **{band.value}** |")
    lines += ["", f"{report.platform.deployments} deployments, {report.platform.rollbacks} rollbacks, "
              f"{report.platform.reverts} reverts, {report.platform.aborts} aborted rollouts, "
              f"{report.platform.unrestored} failures not yet restored.", ""]
    for title, rows in (("By team", report.teams), ("By model", report.models)):
        lines += [f"## {title}", "", "| name | deployments | frequency | lead time | change failure rate "
                  "| time to restore | bands |", "|---|---|---|---|---|---|---|"]
        for keys in rows:
            shown = figures(keys)
            bands = " / ".join(band.value for band in keys.bands.values())
            lines.append(f"| {keys.name} | {keys.deployments} | {shown['deployment_frequency']} | {shown['lead_time']} "
                         f"| {shown['change_failure_rate']} | {shown['time_to_restore']} | {bands} |")
        lines.append("")
    return "\n".join(lines)


def weekly_chart_svg(report: DoraReport) -> str:
    """A bar per week: deployments, with the failed ones in red at the bottom."""
    rows = report.weekly()
    bar, gap, height, top = 14, 4, 160, 10
    tallest = max((row["deployments"] for row in rows), default=0) or 1
    width = len(rows) * (bar + gap) + gap + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="weekly-chart" role="img" width="{width}" '
             f'height="{height + top + 20}" viewBox="0 0 {width} {height + top + 20}" '
             'aria-label="Deployments and failed deployments per week">']
    for index, row in enumerate(rows):
        x = 40 + gap + index * (bar + gap)
        total = row["deployments"] * height / tallest
        failed = row["failed"] * height / tallest
        parts.append(f'<g class="week" data-week="{iso(row["week_start"])[:10]}" data-deployments="{row["deployments"]}" '
                     f'data-failed="{row["failed"]}">')
        parts.append(f'<rect class="deployments" x="{x}" y="{top + height - total:g}" width="{bar}" height="{total:g}" '
                     f'fill="#2e7d32"><title>week of {iso(row["week_start"])[:10]}: {row["deployments"]} deployments, '
                     f'{row["failed"]} failed</title></rect>')
        if failed:
            parts.append(f'<rect class="failed" x="{x}" y="{top + height - failed:g}" width="{bar}" '
                         f'height="{failed:g}" fill="#c62828"></rect>')
        parts.append("</g>")
    parts.append(f'<text x="0" y="{top + 10}" font-size="11">{tallest}</text>'
                 f'<text x="0" y="{top + height}" font-size="11">0</text></svg>')
    return "".join(parts)


def bands_chart_svg(report: DoraReport) -> str:
    """One row per model, one coloured cell per key: where each model stands at a glance."""
    cell, label_width, row_height = 120, 260, 22
    rows = report.models
    width, height = label_width + 4 * cell, (len(rows) + 1) * row_height + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="bands-chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="DORA band of each key per model">']
    for column, title in enumerate(KEY_TITLES.values()):
        parts.append(f'<text x="{label_width + column * cell + 4}" y="15" font-size="11">{html.escape(title)}</text>')
    for index, keys in enumerate(rows, start=1):
        y = index * row_height
        parts.append(f'<g class="model" data-model="{html.escape(keys.name)}">'
                     f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
                     f"{html.escape(keys.name)}</text>")
        for column, (key, band) in enumerate(keys.bands.items()):
            parts.append(f'<rect class="{band.value}" data-key="{key}" x="{label_width + column * cell}" y="{y + 2}" '
                         f'width="{cell - 4}" height="{row_height - 4}" fill="{BAND_COLOURS[band]}">'
                         f"<title>{html.escape(keys.name)}: {KEY_TITLES[key]} {band.value}</title></rect>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """td.band { font-weight: 600; white-space: nowrap; }
td.elite, td.high { color: #2e7d32; } td.medium { color: #b26a00; } td.low { color: #c62828; } td.none { color: #757575; }
.keys { display: flex; gap: 1rem; flex-wrap: wrap; }
.key { border: 1px solid #e0e0e0; border-radius: 6px; padding: .75rem 1rem; min-width: 14rem; }
.key .figure { font-size: 1.4rem; font-weight: 600; }
"""


def _rows(rows: tuple[Keys, ...]) -> str:
    escape = html.escape
    out = []
    for keys in rows:
        shown = figures(keys)
        cells = "".join(f'<td class="band {band.value}" data-key="{key}">{escape(shown[key])} ({band.value})</td>'
                        for key, band in keys.bands.items())
        out.append(f'<tr data-name="{escape(keys.name)}"><td>{escape(keys.name)}</td><td>{keys.deployments}</td>'
                   f"{cells}</tr>")
    return "".join(out)


def to_html(report: DoraReport) -> str:
    """A self-contained page: key cards, weekly chart, band grid, per-team and per-model tables."""
    escape = html.escape
    shown = figures(report.platform)
    cards = "".join(
        f'<div class="key" data-key="{key}" data-band="{band.value}"><div>{KEY_TITLES[key]}</div>'
        f'<div class="figure">{escape(shown[key])}</div><div style="color:{BAND_COLOURS[band]}">{band.value}</div></div>'
        for key, band in report.platform.bands.items())
    # Closing tags inside JSON would end the script element early.
    data = json.dumps(report.to_dict()).replace("</", "<\\/")
    head = ("<tr><th>name</th><th>deployments</th>" + "".join(f"<th>{title}</th>" for title in KEY_TITLES.values())
            + "</tr>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(_title(report))}</title><style>{PAGE_STYLE}{_STYLE}</style></head><body>"
        f"<h1>{escape(_title(report))}</h1>"
        f"<p>GitOps repository <code>{escape(report.repository)}</code>; sources: {escape(', '.join(report.sources))}."
        f" {report.platform.deployments} deployments, {report.platform.rollbacks} rollbacks, "
        f"{report.platform.reverts} reverts, {report.platform.aborts} aborted rollouts.</p>"
        f'<div class="keys" id="platform">{cards}</div>'
        f"<h2>Deployments per week</h2>{weekly_chart_svg(report)}"
        f"<h2>Bands by model</h2>{bands_chart_svg(report)}"
        f'<script type="application/json" id="report-data">{data}</script>'
        f"<h2>By team</h2><table><thead>{head}</thead><tbody>{_rows(report.teams)}</tbody></table>"
        f"<h2>By model</h2><table><thead>{head}</thead><tbody>{_rows(report.models)}</tbody></table>"
        "</body></html>\n"
    )


def to_rich(report: DoraReport) -> list[RenderableType]:
    """The terminal view: the platform's keys, then one row per team and per model."""
    from rich.markup import escape
    from rich.table import Table

    colour = {Band.ELITE: "bold green", Band.HIGH: "green", Band.MEDIUM: "yellow", Band.LOW: "red", Band.NONE: "dim"}
    tables: list[RenderableType] = []
    for title, rows in ((_title(report), (report.platform,)), ("By team", report.teams), ("By model", report.models)):
        table = Table(title=title, title_justify="left")
        for column in ("name", "deployments", *KEY_TITLES.values()):
            table.add_column(column, overflow="fold")
        for keys in rows:
            shown = figures(keys)
            table.add_row(escape(keys.name), str(keys.deployments),
                          *(f"{escape(shown[key])} [{colour[band]}]{band.value}[/]" for key, band in keys.bands.items()))
        tables.append(table)
    return tables


WRITERS = ReportWriters(to_rich=to_rich, to_json=to_json, to_markdown=to_markdown, to_html=to_html)
