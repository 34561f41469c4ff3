"""What every command shares: one console, one output option name, and mapping domain errors to exit codes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from shipway.errors import ShipwayError, missing_extra

# Never wrapped: a digest or path split over two lines cannot be copied or grepped from a CI log.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def former_name(name: str) -> Any:
    """An output option's old name: still accepted, no longer shown in --help (`-o/--output` is the one name)."""
    return typer.Option(None, name, hidden=True)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Turn a ShipwayError into a red message and its exit code; never a traceback."""
    try:
        yield
    except ShipwayError as error:
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except ModuleNotFoundError as error:
        missing = missing_extra(error)
        if missing is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(missing))}", highlight=False, soft_wrap=True)
        raise typer.Exit(missing.exit_code) from None
    except BrokenPipeError:
        sys.stderr.close()
        raise typer.Exit(1) from None
    except OSError as error:
        # A path that cannot be read or written is the user's to fix, not a crash to report.
        where = f": {error.filename}" if error.filename else ""
        err_console.print(f"[bold red]error:[/] {escape(error.strerror or str(error))}{escape(where)}",
                          highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
