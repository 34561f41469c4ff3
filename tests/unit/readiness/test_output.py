"""The report's formats: the HTML renders, self-contained, and its chart data matches the JSON."""

from __future__ import annotations

import json
import os
import stat
from html.parser import HTMLParser
from pathlib import Path

from shipway.readiness import Report, assess
from shipway.files import write_atomic
from shipway.readiness.output import to_html, to_json, to_markdown
from shipway.spec import load_blueprint

WEAK = Path(__file__).resolve().parent / "data" / "weak.yaml"


class _ReportParser(HTMLParser):
    """Collects the chart's bars, the embedded chart data, check rows and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.rects: list[dict[str, str]] = []
        self.check_rows: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self.chart_json = ""
        self._in_chart_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        if tag == "g" and attributes.get("class") == "bar":
            self.bars.append(attributes)
        if tag == "rect":
            self.rects.append(attributes)
        if tag == "tr" and "data-check" in attributes:
            self.check_rows.append(attributes["data-check"])
        for name in ("src", "href"):
            if name in attributes:
                self.external.append(attributes[name])
        if tag == "link":
            self.external.append(str(attributes))
        self._in_chart_data = tag == "script" and attributes.get("id") == "chart-data"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_chart_data = False

    def handle_data(self, data: str) -> None:
        if self._in_chart_data:
            self.chart_json += data


def _report() -> Report:
    return assess(load_blueprint(WEAK), "weak.yaml")


def test_the_html_report_is_self_contained_and_its_chart_matches_the_json() -> None:
    report = _report()
    parser = _ReportParser()
    parser.feed(to_html(report))
    parser.close()
    from_json = json.loads(to_json(report))["categories"]
    assert json.loads(parser.chart_json) == from_json
    drawn = [{"category": bar["data-category"], "passed": int(bar["data-passed"]), "failed": int(bar["data-failed"]),
              "unknown": int(bar["data-unknown"]), "total": int(bar["data-total"])} for bar in parser.bars]
    assert drawn == [{key: row[key] for key in ("category", "passed", "failed", "unknown", "total")}
                     for row in from_json]
    # Bar widths are proportional to the counts they stand for.
    widths = {rect["class"]: 0 for rect in parser.rects}
    for rect in parser.rects:
        widths[rect["class"]] += int(rect["width"])
    totals = json.loads(to_json(report))["totals"]
    assert widths["pass"] * totals["failed"] == widths["fail"] * totals["passed"]
    assert "svg" in parser.tags
    assert parser.external == []
    assert parser.check_rows == [check["id"] for check in json.loads(to_json(report))["checks"]]


def test_the_json_lists_every_check_with_id_category_status_source_and_evidence() -> None:
    data = json.loads(to_json(_report()))
    assert len(data["checks"]) == 21
    for check in data["checks"]:
        assert {"id", "category", "status", "source", "evidence"} <= set(check)
        assert check["status"] in ("pass", "fail", "unknown")
        assert check["source"] and check["evidence"]
    assert data["totals"] == {"passed": 1, "failed": 14, "unknown": 6, "total": 21, "threshold": 8}
    assert sum(row["passed"] for row in data["categories"]) == data["totals"]["passed"]
    assert "below the 8-box line" in data["verdict"]


def test_the_markdown_report_has_the_verdict_scores_and_every_check() -> None:
    report = _report()
    text = to_markdown(report)
    assert report.verdict in text
    assert "| Tenancy and security | 1/3 | 2 | 0 |" in text
    assert "| **total** | **1/21** | 14 | 6 |" in text
    for result in report.results:
        assert f"`{result.check.id}`" in text
        assert result.check.why in text


def test_reports_are_written_atomically_and_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    write_atomic(target, "first")
    write_atomic(target, "second")
    assert target.read_text() == "second"
    assert sorted(path.name for path in target.parent.iterdir()) == ["report.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
