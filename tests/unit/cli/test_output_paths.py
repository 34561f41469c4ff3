"""Every command that writes accepts a relative path, a path through a symlink, and `~` as its output.

Each case runs the real app from a temporary working folder, the way README.md writes the commands
(`synth blueprints/kind-dev.yaml`, `render -o out/`, `promote --gitops-repo ../gitops`).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli import app
from shipway.files import write_atomic, write_tree

ROOT = Path(__file__).resolve().parents[3]
KIND_DEV = ROOT / "blueprints" / "kind-dev.yaml"
MODEL = ROOT / "tests" / "unit" / "delivery" / "models" / "sklearn-none.yaml"
runner = CliRunner()
WAYS = ("relative", "symlink", "tilde")


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], tuple[str, Path]]:
    """A working folder to run from, and a way to name an output path relatively, through a link, or by `~`.

    Returns (what the command is given, where the output must land).
    """
    work, real, home = tmp_path / "work", tmp_path / "real", tmp_path / "home"
    for folder in (work, real, home):
        folder.mkdir()
    (work / "link").symlink_to(real)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))

    def name(way: str, leaf: str) -> tuple[str, Path]:
        if way == "relative":
            return f"sub/{leaf}", work / "sub" / leaf
        if way == "symlink":
            return f"link/{leaf}", real / leaf
        return f"~/{leaf}", home / leaf

    return name


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("way", WAYS)
def test_write_tree_and_write_atomic(place: Callable[[str, str], tuple[str, Path]], way: str) -> None:
    given, landed = place(way, "tree")
    write_tree({"a.txt": "a", "deep/b.txt": "b"}, given)
    write_tree({"a.txt": "again"}, given)
    assert sorted(p.name for p in landed.rglob("*") if p.is_file()) == ["a.txt"]
    assert (landed / "a.txt").read_text() == "again"
    assert not list(landed.parent.glob(".tree*")), "no staging or backup folder may be left behind"
    given, landed = place(way, "one.txt")
    write_atomic(given, "x")
    assert landed.read_text() == "x"


def test_write_tree_still_refuses_escaping_names(tmp_path: Path) -> None:
    for bad in ("../x", "/etc/x", "a/../../x", ""):
        with pytest.raises(ValueError, match="outside"):
            write_tree({bad: "x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("way", WAYS)
def test_synth_render_and_kind_config(place: Callable[[str, str], tuple[str, Path]], way: str) -> None:
    given, landed = place(way, "synth.out")
    _ok(["synth", str(KIND_DEV), "-q", "-o", given])
    assert (landed / "plan.json").is_file() and (landed / "platform.json").is_file()
    rendered, rendered_at = place(way, "rendered")
    # `~` is the shell's to expand in what a command reads; a command expands it in what it writes.
    _ok(["render", str(MODEL), "--platform", str(landed / "platform.json"), "--env", "staging", "-o", rendered])
    assert (rendered_at / "rollout-churn-basic.yaml").is_file()
    kind, kind_at = place(way, "kind.yaml")
    _ok(["kind-config", str(KIND_DEV), "-o", kind])
    assert "kind: Cluster" in kind_at.read_text()


def test_synth_default_output_is_relative_to_the_working_folder(
        place: Callable[[str, str], tuple[str, Path]]) -> None:
    """README's first command: `shipway synth blueprints/kind-dev.yaml`, a relative blueprint, default output."""
    os.symlink(ROOT / "blueprints", "blueprints")
    output = _ok(["synth", "blueprints/kind-dev.yaml", "-q"])
    assert "wrote" in output and Path("synth.out/platform.json").is_file()


@pytest.mark.parametrize("way", WAYS)
def test_schema_and_readiness(place: Callable[[str, str], tuple[str, Path]], way: str) -> None:
    given, landed = place(way, "schema")
    _ok(["schema", "-o", given])
    assert json.loads((landed / "blueprint.schema.json").read_text())["title"]
    report, report_at = place(way, "readiness.md")
    _ok(["readiness", str(KIND_DEV), "--format", "markdown", "-o", report])
    assert report_at.read_text().startswith("#")


@pytest.mark.parametrize("way", WAYS)
def test_gate_and_drift_profile(place: Callable[[str, str], tuple[str, Path]], way: str) -> None:
    data = Path("holdout.csv")
    with data.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "candidate", "baseline", "feature"])
        for row in range(400):
            label = row % 2
            writer.writerow([label, label, label if row % 10 else 1 - label, row / 7])
    given, landed = place(way, "gate")
    result = runner.invoke(app, ["gate", str(data), "--labels", "label", "--candidate", "candidate", "--baseline",
                                 "baseline", "--metric", "accuracy", "--resamples", "200", "--permutations", "0",
                                 "-o", given])
    assert result.exit_code == 0, result.output
    assert (landed / "gate-report.json").is_file() and (landed / "gate-summary.md").is_file()
    profile, profile_at = place(way, "profile.json")
    _ok(["drift", "profile", str(data), "--feature", "feature", "-o", profile])
    assert json.loads(profile_at.read_text())


@pytest.mark.parametrize("way", WAYS)
def test_new_model_init_gitops_and_promote(place: Callable[[str, str], tuple[str, Path]], way: str) -> None:
    platform = Path("platform.json")
    _ok(["synth", str(KIND_DEV), "-q", "-o", "platform-out"])
    platform.write_text(Path("platform-out/platform.json").read_text())
    repos, repos_at = place(way, "repos")
    _ok(["new-model", "churn-basic", "--team", "fraud", "-o", repos])
    assert (repos_at / "churn-basic" / "model.yaml").is_file()
    gitops, gitops_at = place(way, "gitops")
    _ok(["init-gitops", gitops, "--platform", str(platform)])
    model = repos_at / "churn-basic"
    model.joinpath("model.yaml").write_text(MODEL.read_text())
    os.chdir(model)
    # The model repo's road: promote from inside it, the GitOps clone named relative to it.
    relative_gitops = os.path.relpath(gitops_at, model) if way != "tilde" else gitops
    _ok(["promote", "model.yaml", "--gitops-repo", relative_gitops, "--env", "staging", "--version", "1.0.0",
         "--no-gate", "--artifact-digest", "sha256:" + "d" * 64])
    files = subprocess.run(["git", "-C", str(gitops_at), "ls-tree", "-r", "--name-only", "HEAD"],
                           capture_output=True, text=True, check=True).stdout
    assert "apps/staging/fraud/churn-basic/rollout-churn-basic.yaml" in files
