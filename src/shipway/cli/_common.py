"""What every command shares: one console, one output option name, and mapping domain errors to exit codes."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from shipway.errors import ShipwayError, missing_extra
from shipway.report_output import ReportFormat, ReportWriters, report_text

# Never wrapped: a digest or path split over two lines cannot be copied or grepped from a CI log.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class BadOption(ShipwayError):
    """A command-line option's value cannot be used: bad input, exit 2."""

    exit_code = 2


# One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host_port(text: str, option: str, example: str) -> tuple[str, int]:
    """`HOST:PORT` of a --listen-style option: an IPv4 address, an IPv6 address in brackets or a host name, and a
    port 1-65535. Anything else is refused (exit 2) naming the option, the value and an example to copy."""
    host, port = _split_host_port(text)
    if host is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadOption(f"Got {option} {text!r}: expected HOST:PORT with a port 1-65535 and HOST an IPv4 address, "
                        f"an IPv6 address in brackets ([::1]:{example.rpartition(':')[2]}) or a host name; "
                        f"e.g. {option} {example}")
    return host, int(port)


def registry_host(text: str, option: str) -> str:
    """`HOST[:PORT]` of a registry (no scheme, no path), checked as `host_port` checks an address; exit 2 if not."""
    has_port = ":" in text.rpartition("]")[2]
    host, port = _split_host_port(text if has_port else f"{text}:443")
    if host is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadOption(f"Got {option} {text!r}: expected HOST[:PORT] of the registry, no scheme or path; "
                        f"e.g. {option} registry.example.com or {option} 127.0.0.1:5000")
    return text


def http_url(text: str, option: str, example: str) -> str:
    """An http(s) base URL option, without its trailing slash; exit 2 with an example if it is none."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise BadOption(f"Got {option} {text!r}: expected an http(s) URL, e.g. {option} {example}")
    return text.rstrip("/")


def _split_host_port(text: str) -> tuple[str | None, str]:
    """The host (None when it is no address or name) and the port text."""
    if text.startswith("["):
        inside, closed, port = text[1:].partition("]:")
        try:
            return (str(ipaddress.IPv6Address(inside)), port) if closed else (None, "")
        except ValueError:
            return None, port
    host, _, port = text.rpartition(":")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host)), port
        except ValueError:
            return None, port
    labels = host.rstrip(".").split(".")
    named = 0 < len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
    return (host if named else None), port


def run_service(serve: Callable[[], Awaitable[None]]) -> None:
    """Run a server coroutine until SIGTERM (the kubelet stopping the pod) or Ctrl-C, letting it close its
    listeners on the way out. SIGTERM ends quietly (exit 0); Ctrl-C is `guarded`'s "interrupted" (exit 130); a
    port that cannot be bound is a one-line error (exit 1)."""
    import asyncio
    import signal

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await serve()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        pass
    except OSError as error:
        raise ShipwayError(f"cannot listen: {error}") from None


def emit_report(report: object, output_format: ReportFormat, output: Path | None, writers: ReportWriters,
                summary: str) -> None:
    """A report on the terminal (the table in colour), or written to --output with a one-line `wrote` note."""
    if output_format is ReportFormat.TABLE and output is None:
        for renderable in writers.to_rich(report):
            console.print(renderable)
        return
    text = report_text(report, output_format, writers)
    if output is None:
        typer.echo(text, nl=False)
        return
    from shipway.files import write_atomic

    write_atomic(output, text)
    console.print(f"wrote {output}: {summary}", highlight=False)


ChartsOption = Annotated[Path | None, typer.Option(
    "--charts", envvar="SHIPWAY_CHARTS", show_default=False,
    help="Chart cache (<name>-<version> folders) to render every release through; default: where "
         "`shipway charts pull` writes.")]
NoChartsOption = Annotated[bool, typer.Option("--no-charts", help="Do not render the releases' charts.")]


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
        # A path that cannot be read or written is the user's to fix, not a crash to report; a path given that
        # is absent, or a file where a folder belongs (or the reverse), is bad input (exit 2).
        where = f": {error.filename}" if error.filename else ""
        err_console.print(f"[bold red]error:[/] {escape(error.strerror or str(error))}{escape(where)}",
                          highlight=False)
        bad_path = isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError)
        raise typer.Exit(2 if bad_path else 1) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def print_uncut(table: Any) -> None:
    """Print a rich table or tree as wide as its content needs, never cut to the terminal's width.

    Names, paths and digests in a table or tree are copied and pasted; one cut to fit 80 characters (a pipe's
    width) would print something that is not the name.
    """
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if needed <= console.width:
        console.print(table)
    else:
        Console(width=needed, soft_wrap=True, no_color=console.no_color).print(table)
