"""The report as JSON, Markdown, self-contained HTML with an inline SVG chart, or a rich table."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from shipway.readiness.model import Report, Status
from shipway.report_output import PAGE_STYLE, ReportWriters

if TYPE_CHECKING:
    from rich.console import RenderableType

STATUS_MARK = {Status.PASS: "[x]", Status.FAIL: "[ ]", Status.UNKNOWN: "[?]"}
_COLOURS = {Status.PASS: "#2e7d32", Status.FAIL: "#c62828", Status.UNKNOWN: "#9e9e9e"}


def delivery_rows(report: Report) -> list[tuple[str, str, str]]:
    """The DORA keys the report carries, as (key, figure, band) rows; empty without a GitOps repo."""
    from shipway.dora.output import KEY_TITLES, duration

    keys = report.delivery
    if keys is None:
        return []
    rate = keys["change_failure_rate"]
    shown = {
        "deployment_frequency": f"{keys['deployments_per_day'] * 7:.2f}/week ({keys['deployments']} in "
                                f"{keys['window_days']:g} days)",
        "lead_time": duration(keys["lead_time_median_seconds"]),
        "change_failure_rate": "-" if rate is None else f"{rate:.1%}",
        "time_to_restore": duration(keys["time_to_restore_median_seconds"]),
    }
    return [(KEY_TITLES[key], shown[key], band) for key, band in keys["bands"].items()]


def to_json(report: Report) -> str:
    """The report for machines."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    """The report as Markdown: verdict, scores per category, every check with its evidence."""
    lines = [f"# AI delivery readiness: {report.blueprint}", "", f"**{report.verdict}**", "",
             "## Score by category", "", "| category | checked | failed | unknown |", "|---|---|---|---|"]
    for score in report.category_scores():
        lines.append(f"| {score.category.title} | {score.passed}/{score.total} | {score.failed} | {score.unknown} |")
    lines.append(f"| **total** | **{report.passed}/{report.total}** | {report.count(Status.FAIL)} "
                 f"| {report.count(Status.UNKNOWN)} |")
    if report.delivery is not None:
        lines += ["", f"## Delivery performance (DORA, {report.delivery['environment']})", "",
                  "| key | figure | band |", "|---|---|---|"]
        lines += [f"| {key} | {figure} | {band} |" for key, figure, band in delivery_rows(report)]
    lines += ["", "## Checks", "", "| | id | question | source | evidence |", "|---|---|---|---|---|"]
    for result in report.results:
        lines.append(f"| {STATUS_MARK[result.status]} {result.status.value} | `{result.check.id}` | "
                     f"{_cell(result.check.question)} | {_cell(result.source)} | {_cell(result.evidence)} |")
    lines += ["", "## Why each check matters", ""]
    for result in report.results:
        check = result.check
        lines += [f"- **`{check.id}`** ({check.category.title}): {check.question}",
                  f"  - why: {check.why}", f"  - how Shipway satisfies it: {check.how}"]
    lines += ["", "## Sources", ""]
    lines += [f"- {source.name}: {'read' if source.available else 'not readable'} ({source.detail})"
              for source in report.sources]
    return "\n".join(lines) + "\n"


def chart_data(report: Report) -> list[dict[str, object]]:
    """What the HTML chart draws: the per-category scores, exactly as the JSON reports them."""
    return [score.to_dict() for score in report.category_scores()]


def category_chart_svg(report: Report) -> str:
    """A horizontal stacked bar per category: checked, failed, unknown."""
    scores = report.category_scores()
    bar_height, gap, label_width, scale = 22, 8, 220, 60
    widest = max((score.total for score in scores), default=1) or 1
    width = label_width + widest * scale + 70
    height = len(scores) * (bar_height + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="category-chart" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" aria-label="Boxes checked per category">']
    for index, score in enumerate(scores):
        y = gap + index * (bar_height + gap)
        text_y = f"{y + bar_height * 0.7:g}"
        parts.append(f'<g class="bar" data-category="{html.escape(score.category.id)}" data-passed="{score.passed}" '
                     f'data-failed="{score.failed}" data-unknown="{score.unknown}" data-total="{score.total}">')
        parts.append(f'<text x="{label_width - 8}" y="{text_y}" text-anchor="end" font-size="13">'
                     f"{html.escape(score.category.title)}</text>")
        x = label_width
        for status, count in ((Status.PASS, score.passed), (Status.FAIL, score.failed),
                              (Status.UNKNOWN, score.unknown)):
            if count:
                parts.append(f'<rect class="{status.value}" x="{x}" y="{y}" width="{count * scale}" '
                             f'height="{bar_height}" fill="{_COLOURS[status]}"><title>{count} {status.value}'
                             "</title></rect>")
                x += count * scale
        parts.append(f'<text x="{x + 6}" y="{text_y}" font-size="13">{score.passed}/{score.total}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = PAGE_STYLE + """td.status { font-weight: 600; white-space: nowrap; }
td.pass { color: #2e7d32; } td.fail { color: #c62828; } td.unknown { color: #757575; }
.verdict { font-size: 1.15rem; font-weight: 600; }
details { margin: .25rem 0; } code { font-size: .9em; }
"""


def to_html(report: Report) -> str:
    """A self-contained page: no external asset; the chart's data is also embedded as JSON."""
    escape = html.escape
    rows = []
    for result in report.results:
        check = result.check
        rows.append(
            f'<tr data-check="{escape(check.id)}"><td class="status {result.status.value}">{result.status.value}</td>'
            f"<td><code>{escape(check.id)}</code></td><td>{escape(check.category.title)}</td>"
            f"<td>{escape(check.question)}<details><summary>why, and how Shipway satisfies it</summary>"
            f"<p>{escape(check.why)}</p><p>{escape(check.how)}</p></details></td>"
            f"<td>{escape(result.source)}</td><td>{escape(result.evidence)}</td></tr>")
    scores = "".join(f"<tr><td>{escape(score.category.title)}</td><td>{score.passed}/{score.total}</td>"
                     f"<td>{score.failed}</td><td>{score.unknown}</td></tr>" for score in report.category_scores())
    # Closing tags inside JSON would end the script element early.
    data = json.dumps(chart_data(report)).replace("</", "<\\/")
    sources = "".join(f"<li>{escape(source.name)}: {'read' if source.available else 'not readable'} "
                      f"({escape(source.detail)})</li>" for source in report.sources)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>AI delivery readiness: {escape(report.blueprint)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>AI delivery readiness: {escape(report.blueprint)}</h1>"
        f'<p class="verdict" id="verdict">{escape(report.verdict)}</p>'
        f'<p id="score" data-passed="{report.passed}" data-total="{report.total}">'
        f"{report.passed} of {report.total} boxes checked</p>"
        f"<h2>Score by category</h2>{category_chart_svg(report)}"
        f'<script type="application/json" id="chart-data">{data}</script>'
        "<table><thead><tr><th>category</th><th>checked</th><th>failed</th><th>unknown</th></tr></thead>"
        f"<tbody>{scores}</tbody></table>"
        f"{_delivery_html(report)}"
        "<h2>Checks</h2><table><thead><tr><th>status</th><th>id</th><th>category</th><th>question</th>"
        f"<th>source</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h2>Sources</h2><ul>{sources}</ul></body></html>\n"
    )


def _delivery_html(report: Report) -> str:
    rows = delivery_rows(report)
    if not rows:
        return ""
    cells = "".join(f'<tr><td>{html.escape(key)}</td><td>{html.escape(figure)}</td><td class="band {band}">{band}'
                    "</td></tr>" for key, figure, band in rows)
    return (f'<h2>Delivery performance (DORA, {html.escape(str(report.delivery["environment"]))})</h2>'  # type: ignore[index]
            f'<table id="delivery"><thead><tr><th>key</th><th>figure</th><th>band</th></tr></thead>'
            f"<tbody>{cells}</tbody></table>")


def to_rich(report: Report) -> list[RenderableType]:
    """The terminal view: the checks, the per-category scores, and the verdict."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    style = {Status.PASS: "green", Status.FAIL: "red", Status.UNKNOWN: "dim"}
    checks = Table(title=f"AI delivery readiness: {report.blueprint}", title_justify="left")
    # The questions are in the Markdown and HTML reports; a terminal has room for the evidence.
    for column in ("", "check", "source", "evidence"):
        checks.add_column(column, overflow="fold")
    for result in report.results:
        checks.add_row(f"[{style[result.status]}]{result.status.value}[/]", escape(result.check.id),
                       escape(result.source), escape(result.evidence))
    scores = Table(title="Score by category", title_justify="left")
    for column in ("category", "checked", "failed", "unknown"):
        scores.add_column(column)
    for score in report.category_scores():
        scores.add_row(escape(score.category.title), f"{score.passed}/{score.total}", str(score.failed),
                       str(score.unknown))
    scores.add_row("[bold]total[/]", f"[bold]{report.passed}/{report.total}[/]", str(report.count(Status.FAIL)),
                   str(report.count(Status.UNKNOWN)))
    colour = "green" if report.passed >= report.threshold else "red"
    shown: list[RenderableType] = [checks, scores]
    if report.delivery is not None:
        delivery = Table(title=f"Delivery performance (DORA, {escape(str(report.delivery['environment']))})",
                         title_justify="left")
        for column in ("key", "figure", "band"):
            delivery.add_column(column)
        for row in delivery_rows(report):
            delivery.add_row(*(escape(cell) for cell in row))
        shown.append(delivery)
    return [*shown, Text(report.verdict, style=f"bold {colour}")]


WRITERS = ReportWriters(to_rich=to_rich, to_json=to_json, to_markdown=to_markdown, to_html=to_html)
