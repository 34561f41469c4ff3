"""Bad input is exit 2 and a message, never a traceback, for each of the newer commands: an input file that is
missing, an input file that is not what the command reads, and a malformed option."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli import app

ROOT = Path(__file__).resolve().parents[3]
BLUEPRINT = str(ROOT / "blueprints" / "kind-dev.yaml")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port already bound: a service command that wrongly accepted its input fails to listen (exit 1) at once
    instead of serving for ever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _garbage(tmp: Path, name: str = "garbage.yaml") -> str:
    path = tmp / name
    path.write_text("{{ not: [yaml or json\n", encoding="utf-8")
    return str(path)


def _table(tmp: Path) -> str:
    path = tmp / "data.csv"
    path.write_text("age,income\n30,1.5\n40,2.5\n", encoding="utf-8")
    return str(path)


def _broken_synth(tmp: Path) -> str:
    (tmp / "synth" / "manifests").mkdir(parents=True, exist_ok=True)
    (tmp / "synth" / "plan.json").write_text("{}", encoding="utf-8")
    _garbage(tmp / "synth" / "manifests", "01-x.yaml")
    return str(tmp / "synth")


# Each case: the command line, built from a temporary folder and the taken port.
Case = Callable[[Path, int], list[str]]
CASES: dict[str, Case] = {
    "images list, missing blueprint": lambda t, p: ["images", "list", str(t / "missing.yaml"), "--no-charts"],
    "images list, invalid blueprint": lambda t, p: ["images", "list", _garbage(t), "--no-charts"],
    "images list, bad --format": lambda t, p: ["images", "list", BLUEPRINT, "--no-charts", "--format", "yaml"],
    "dora, missing gitops repo": lambda t, p: ["dora", "--gitops-repo", str(t / "missing")],
    "dora, not a git repo": lambda t, p: ["dora", "--gitops-repo", str(t)],
    "dora, bad --since": lambda t, p: ["dora", "--gitops-repo", str(t), "--since", "forever"],
    "dora, bad --until": lambda t, p: ["dora", "--gitops-repo", str(t), "--until", "yesterday"],
    "drift check, missing profile": lambda t, p: ["drift", "check", str(t / "missing.json"), str(t / "b.csv")],
    "drift check, invalid profile": lambda t, p: ["drift", "check", _garbage(t, "p.json"), _garbage(t, "b.csv")],
    "drift check, bad --format": lambda t, p: ["drift", "check", "p.json", "b.csv", "--format", "yaml"],
    "drift profile, missing data": lambda t, p: ["drift", "profile", str(t / "missing.csv"), "-o", str(t / "p.json")],
    "drift profile, not a table": lambda t, p: ["drift", "profile", _garbage(t, "data.txt"), "-o", str(t / "p.json")],
    "drift profile, unknown prediction column": lambda t, p: [
        "drift", "profile", _table(t), "--prediction", "score", "-o", str(t / "p.json")],
    "charts pull, unknown chart": lambda t, p: ["charts", "pull", "no-such-chart", "--charts", str(t)],
    "charts pull, malformed option": lambda t, p: ["charts", "pull", "--charts"],
    "diff, missing folder": lambda t, p: ["diff", str(t / "missing"), str(t / "missing2")],
    "diff, a file for a folder": lambda t, p: ["diff", _garbage(t), _garbage(t, "other.yaml")],
    "diff, a synth output with a broken file": lambda t, p: ["diff", _broken_synth(t), _broken_synth(t)],
    "diff, bad --format": lambda t, p: ["diff", str(t), str(t), "--format", "yaml"],
    "cluster-info, missing blueprint": lambda t, p: ["cluster-info", str(t / "missing.yaml")],
    "cluster-info, invalid blueprint": lambda t, p: ["cluster-info", _garbage(t)],
    "cluster-info, bad --format": lambda t, p: ["cluster-info", BLUEPRINT, "--format", "yaml"],
    "retrain-trigger, missing token file": lambda t, p: [
        "retrain-trigger", "--listen", f"127.0.0.1:{p}", "--kube-api", "http://127.0.0.1:1",
        "--kube-token-file", str(t / "missing-token")],
    "retrain-trigger, missing allow-list": lambda t, p: [
        "retrain-trigger", "--listen", f"127.0.0.1:{p}", "--kube-api", "http://127.0.0.1:1",
        "--allowed", str(t / "missing.json")],
    "retrain-trigger, invalid allow-list": lambda t, p: [
        "retrain-trigger", "--listen", f"127.0.0.1:{p}", "--kube-api", "http://127.0.0.1:1",
        "--allowed", _garbage(t, "allowed.json")],
    "retrain-trigger, bad --listen": lambda t, p: [
        "retrain-trigger", "--listen", "0.0.0.0:99999", "--kube-api", "http://127.0.0.1:1"],
    "retrain-trigger, bad --kube-api": lambda t, p: [
        "retrain-trigger", "--listen", f"127.0.0.1:{p}", "--kube-api", "127.0.0.1:6443"],
    "retrain-trigger, bad --gitlab-url": lambda t, p: [
        "retrain-trigger", "--listen", f"127.0.0.1:{p}", "--kube-api", "http://127.0.0.1:1", "--gitlab-url", "gitlab"],
    **{f"csi-node, {case}": (lambda change: lambda t, p: _csi_node(t, change))(change) for case, change in {
        "cache folder is a file": {"--dir": "garbage"},
        "bad --max-size": {"--max-size": "lots"},
        "bad --endpoint": {"--endpoint": "tcp://127.0.0.1:10000"},
        "bad --registry": {"--registry": "https://127.0.0.1:1/x y"},
        "empty --node-id": {"--node-id": " "},
        "a kubelet folder without pods/": {"--kubelet-dir": "nowhere"},
        "a share of the disk over 50%": {"--max-size": "60%"},
        "a socket path over 107 bytes": {"--endpoint": "unix:///" + "s" * 120 + "/csi.sock"},
        "a socket under a file": {"--endpoint": "garbage-socket"},
    }.items()},
}


def _csi_node(tmp: Path, change: dict[str, str]) -> list[str]:
    """`model csi-node` with one option changed; relative paths are under tmp."""
    (tmp / "kubelet" / "pods").mkdir(parents=True, exist_ok=True)
    options = {"--dir": str(tmp / "cache"), "--registry": "127.0.0.1:1", "--max-size": "1Gi", "--node-id": "node-1",
               "--endpoint": f"unix://{tmp}/csi.sock", "--kubelet-dir": str(tmp / "kubelet")}
    for option, value in change.items():
        options[option] = _garbage(tmp) if value == "garbage" else str(tmp / value) if value == "nowhere" else value
        if value == "garbage-socket":
            options[option] = f"unix://{_garbage(tmp)}/csi.sock"
    return ["model", "csi-node", *[item for pair in options.items() for item in pair]]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_a_message_and_no_traceback(case: str, tmp_path: Path, taken_port: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPWAY_GITHUB_TOKEN", "test-token")
    monkeypatch.setenv("SHIPWAY_CHARTS", str(tmp_path / "charts"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, CASES[case](tmp_path, taken_port))
    # Any exception but SystemExit is a traceback for the user.
    assert isinstance(result.exception, SystemExit), f"{case}: {result.exception!r}\n{result.output}"
    assert result.exit_code == 2, f"{case}: exit {result.exit_code}\n{result.output}"
    assert "error" in result.output.lower() or "Invalid value" in result.output or "Usage" in result.output
