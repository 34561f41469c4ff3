"""What every Shipway report (readiness, DORA) shares: its formats, its page style, and its text in a format.

Neutral ground: it imports neither report package, so `shipway.readiness` and `shipway.dora` both use it and
neither has to import the other for its look.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ReportFormat(StrEnum):
    """How a report is written."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


# The page and table look every Shipway HTML report shares (each report adds its own rules).
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #212121; max-width: 72rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border-bottom: 1px solid #e0e0e0; padding: .35rem .5rem; text-align: left; vertical-align: top; }
"""


@dataclass(frozen=True)
class ReportWriters:
    """One report's writer per format (`to_rich` gives the table's renderables)."""

    to_rich: Callable[[Any], Sequence[Any]]
    to_json: Callable[[Any], str]
    to_markdown: Callable[[Any], str]
    to_html: Callable[[Any], str]


def report_text(report: object, output_format: ReportFormat, writers: ReportWriters) -> str:
    """The report in a format as text; the table as a 160-column terminal would show it, without colour."""
    if output_format is ReportFormat.TABLE:
        from rich.console import Console

        recorder = Console(record=True, width=160, file=io.StringIO())
        for renderable in writers.to_rich(report):
            recorder.print(renderable)
        return recorder.export_text()
    return {ReportFormat.JSON: writers.to_json, ReportFormat.MARKDOWN: writers.to_markdown,
            ReportFormat.HTML: writers.to_html}[output_format](report)
