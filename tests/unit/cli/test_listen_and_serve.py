"""One HOST:PORT parser and one serve loop for the long-running HTTP commands (sidecar, retrain-trigger): the same
values accepted and refused (exit 2, an example, no traceback), the same SIGTERM ending."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from shipway.cli import app
from shipway.cli._common import BadOption, host_port
from net_support import free_port

SRC = Path(__file__).resolve().parents[3] / "src"
READY_TIMEOUT_S = 20.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1", "COLUMNS": "300",
            "SHIPWAY_GITHUB_TOKEN": "test-token"}


def _command(name: str, listen: str) -> list[str]:
    shipway = [sys.executable, "-m", "shipway"]
    if name == "sidecar":
        return [*shipway, "sidecar", "--listen", listen, "--upstream", "http://127.0.0.1:1", "--model", "m",
                "--version", "v", "--metrics-listen", f"127.0.0.1:{free_port()}",
                "--feedback-listen", f"127.0.0.1:{free_port()}"]
    return [*shipway, "retrain-trigger", "--listen", listen, "--kube-api", "http://127.0.0.1:1"]


COMMANDS = ["sidecar", "retrain-trigger"]


@pytest.mark.parametrize("text, expected", [
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ("127.0.0.1:1", ("127.0.0.1", 1)),
    ("[::1]:5081", ("::1", 5081)),
    ("[::]:65535", ("::", 65535)),
    ("localhost:9091", ("localhost", 9091)),
    ("retrain.shipway-retrain.svc.cluster.local:8080", ("retrain.shipway-retrain.svc.cluster.local", 8080)),
])
def test_ipv4_bracketed_ipv6_and_host_names_are_accepted(text: str, expected: tuple[str, int]) -> None:
    assert host_port(text, "--listen", "0.0.0.0:8080") == expected


@pytest.mark.parametrize("text", [
    "0.0.0.0:99999", "0.0.0.0:0", "0.0.0.0:", "localhost", "nope", "::1:5081", "[::1]5081", "[nope]:80",
    "999.1.1.1:80", "-bad-.example:80", "under_score:80", ":8080", "0.0.0.0:8o80",
])
def test_anything_else_is_refused_with_exit_2_and_an_example(text: str) -> None:
    with pytest.raises(BadOption) as refused:
        host_port(text, "--listen", "0.0.0.0:5080")
    assert refused.value.exit_code == 2
    assert f"Got --listen {text!r}" in str(refused.value) and "e.g. --listen 0.0.0.0:5080" in str(refused.value)


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("listen", ["0.0.0.0:99999", "localhost", "::1:5081"])
def test_each_service_refuses_a_bad_listen_with_exit_2_and_no_traceback(name: str, listen: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: retrain-trigger died with `OverflowError: bind(): port must be 0-65535`."""
    monkeypatch.setenv("SHIPWAY_GITHUB_TOKEN", "test-token")
    result = CliRunner().invoke(app, _command(name, listen)[3:])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a traceback would be any other exception
    assert f"Got --listen {listen!r}" in result.output and "e.g. --listen 0.0.0.0:" in result.output


def _serve_then_sigterm(command: list[str], probe: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                               start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if requests.get(probe, timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, output, "")


@pytest.mark.parametrize("name", COMMANDS)
def test_each_service_serves_on_a_bracketed_ipv6_address_and_ends_cleanly_on_sigterm(name: str) -> None:
    """Both go through the one parser, which takes `[::1]:PORT` as host `::1` (not `[::1]`, "Name or service not
    known")."""
    port = free_port("::1")
    command = _command(name, f"[::1]:{port}")
    if name == "sidecar":
        probe = f"http://{command[command.index('--metrics-listen') + 1]}/livez"
    else:
        probe = f"http://[::1]:{port}/healthz"
    done = _serve_then_sigterm(command, probe)
    assert done.returncode == 0, done.stdout
    assert "Traceback" not in done.stdout and f"[::1]:{port}" in done.stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(probe, timeout=1)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_port_in_use_is_one_line_not_a_traceback(name: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(_command(name, listen), capture_output=True, text=True, env=_env(),
                              timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "error: cannot listen:" in done.stderr
