"""readiness and dora share one report module (formats, page style, writing a format) and import no cycle."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"


def _imports_of(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("first, second", [("shipway.dora.output", "shipway.readiness.output"),
                                           ("shipway.readiness.output", "shipway.dora.output"),
                                           ("shipway.cli.dora", "shipway.cli.readiness"),
                                           ("shipway.cli.readiness", "shipway.cli.dora")])
def test_each_module_imports_first_in_a_fresh_interpreter(first: str, second: str) -> None:
    code = f"import {first}, {second}"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)}, timeout=60)


def test_dora_never_imports_readiness_and_no_cli_module_imports_another_commands() -> None:
    """Before: dora/output.py imported readiness.output's PAGE_STYLE while readiness imports dora, and cli/dora.py
    took ReportFormat from cli/readiness.py."""
    dora = set().union(*(_imports_of(path) for path in (SRC / "shipway" / "dora").rglob("*.py")))
    assert not {name for name in dora if name.startswith("shipway.readiness")}
    assert "shipway.cli.readiness" not in _imports_of(SRC / "shipway" / "cli" / "dora.py")


def test_both_reports_use_the_one_format_and_page_style() -> None:
    from shipway.cli import dora as dora_cli
    from shipway.cli import readiness as readiness_cli
    from shipway.dora.output import WRITERS as DORA
    from shipway.readiness.output import WRITERS as READINESS
    from shipway.report_output import ReportFormat

    for command in (dora_cli.dora, readiness_cli.readiness):
        assert inspect.signature(command).parameters["output_format"].annotation == "ReportFormat"
        assert command.__globals__["ReportFormat"] is ReportFormat
    assert DORA.to_html.__module__ == "shipway.dora.output" and READINESS.to_html.__module__ == "shipway.readiness.output"
