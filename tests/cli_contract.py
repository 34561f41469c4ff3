"""What workflows, Makefiles and READMEs run of the `shipway` CLI, checked against the real command tree."""

from __future__ import annotations

import re
import shlex

import typer

from shipway.cli import app


def shipway_commands(text: str) -> list[list[str]]:
    """Every `shipway ...` invocation in shell text (in command position), split into words, up to an operator."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        for match in re.finditer(r"(?:^\s*|[;&|(]\s*|\b(?:then|do|else)\s+)shipway\s+([^;&|\n>]*)", line):
            words = shlex.split(match.group(1).replace("$(", "(").strip(), comments=False)
            found.append(words)
    return found


def check_command(words: list[str]) -> str:
    """Walk the app's click tree along the words; every option used must exist on the command reached."""
    command = typer.main.get_command(app)
    path = ["shipway"]
    rest = list(words)
    # Duck-typed: recent typer builds its groups on its own copy of click.
    while hasattr(command, "commands"):
        assert rest, f"`{' '.join(path)}` needs a subcommand"
        name = rest.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"`{' '.join(path)} {name}` does not exist"
        command, path = sub, [*path, name]
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in rest:
        if word.startswith("-") and word != "-":
            assert word.split("=")[0] in options, f"`{' '.join(path)}` has no option {word}"
    return " ".join(path[1:])
