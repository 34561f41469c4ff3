"""One CLI vocabulary: `-o/--output` for every output, old names hidden but accepted, flags shown as flags,
and no digest or path wrapped in output that is not a terminal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shipway.cli import app

ROOT = Path(__file__).resolve().parents[3]
KIND_DEV = str(ROOT / "blueprints" / "kind-dev.yaml")
runner = CliRunner()
# command -> the output option's former name, still accepted
OUTPUT_COMMANDS = {"synth": "--out", "schema": "--out-dir", "kind-config": "--out", "render": "--out",
                   "new-model": "--output-dir", "gate": "--report", "readiness": None, ("drift", "profile"): None}


def _commands() -> dict[tuple[str, ...], Any]:
    group = typer.main.get_command(app)
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            for name, child in command.commands.items():
                walk(child, (*path, name))
        else:
            found[path] = command

    walk(group, ())
    return found


def test_every_output_option_is_dash_o_output_and_former_names_are_hidden() -> None:
    commands = _commands()
    for key, former in OUTPUT_COMMANDS.items():
        path = key if isinstance(key, tuple) else (key,)
        options = {name: param for param in commands[path].params for name in getattr(param, "opts", [])}
        assert "-o" in options and "--output" in options and options["-o"] is options["--output"], path
        if former is not None:
            assert former in options and options[former].hidden, (path, former)
        help_text = runner.invoke(app, [*path, "--help"], terminal_width=200).output
        assert "--output" in help_text and (former is None or not re.search(rf"{former}\b(?!-)", help_text)), path


def test_no_other_command_names_an_output_differently() -> None:
    for path, command in _commands().items():
        visible = {name for param in command.params if not getattr(param, "hidden", False)
                   for name in getattr(param, "opts", [])}
        assert not visible & {"--out", "--out-dir", "--output-dir", "--report"}, path


@pytest.mark.parametrize("path", sorted(_commands()), ids=" ".join)
def test_help_shows_no_value_placeholder_on_flags(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output


def test_former_names_still_work(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kind-config", KIND_DEV, "--out", str(tmp_path / "kind.yaml")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kind.yaml").is_file()
    result = runner.invoke(app, ["schema", "--out-dir", str(tmp_path / "schema")])
    assert result.exit_code == 0 and (tmp_path / "schema" / "model.schema.json").is_file()


def test_a_long_path_is_one_line_in_output_that_is_not_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-folder-name"] * 6), "kind.yaml")
    done = subprocess.run([sys.executable, "-m", "shipway", "schema", "-o", str(deep.parent)], capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert len(str(deep.parent)) > 120
    assert f"wrote {deep.parent}/blueprint.schema.json\n" in done.stdout
