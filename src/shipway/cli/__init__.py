"""The `shipway` command line: a thin typer adapter over the library.

Start-up stays fast because nothing heavy (pulumi, numpy, oras) is imported
at module level here or in the command modules; each command imports what it
needs when it runs.
"""

from __future__ import annotations

import typer

from shipway import __version__
from shipway.cli import _spine, artifacts, charts, delivery, doctor, dora, gate, images, readiness, retrain, sidecar, template

app = typer.Typer(
    name="shipway",
    help="Stand up an AI delivery platform from a blueprint, and ship models on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipway {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Stand up an AI delivery platform from a blueprint, and ship models on it."""


# Registration order is the order `shipway --help` lists: platform first, then a model's road.
_spine.register(app)
charts.register(app)
doctor.register(app)
readiness.register(app)
template.register(app)
gate.register(app)
artifacts.register(app)
delivery.register(app)
images.register(app)
dora.register(app)
sidecar.register(app)
retrain.register(app)


def main() -> None:
    """Console-script entry point."""
    app()

