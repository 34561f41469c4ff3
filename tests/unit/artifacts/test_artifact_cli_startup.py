"""The `model` commands register without importing oras, requests or rich.progress."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from shipway.cli.artifacts import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def test_registering_imports_nothing_heavy() -> None:
    code = (
        "import sys, typer\nfrom shipway.cli.artifacts import register\nregister(typer.Typer())\n"
        "import shipway.artifacts.layout\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'oras', 'requests'} or m == 'rich.progress'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_model_group_has_push_and_pull() -> None:
    result = CliRunner().invoke(_app(), ["model", "--help"])
    assert result.exit_code == 0
    assert "push" in result.output and "pull" in result.output


def test_a_bad_reference_is_a_clean_error() -> None:
    result = CliRunner().invoke(_app(), ["model", "pull", "team/iris:1", "/tmp/never-created"])
    assert result.exit_code == 2
    assert "explicit registry host" in result.output and "Traceback" not in result.output
