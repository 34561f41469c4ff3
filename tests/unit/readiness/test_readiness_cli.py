"""`shipway readiness` through typer: formats, output files, --fail-under exit codes, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from shipway.cli.readiness import register

ROOT = Path(__file__).resolve().parents[3]
KIND_DEV = str(ROOT / "blueprints" / "kind-dev.yaml")
WEAK = str(Path(__file__).resolve().parent / "data" / "weak.yaml")


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Keep `readiness` a subcommand, as in the main app."""

    return app


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(_app(), ["readiness", *args])


def test_json_format_prints_the_checks_and_totals() -> None:
    result = _invoke(KIND_DEV, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["passed"] == 12 and data["totals"]["total"] == 21
    assert {check["id"]: check["status"] for check in data["checks"]}["tenancy-rbac"] == "fail"


def test_the_table_shows_scores_per_category_and_the_verdict() -> None:
    result = _invoke(WEAK)
    assert result.exit_code == 0, result.output
    assert "Score by category" in result.stdout
    assert "GitOps for models" in result.stdout
    assert "1 of 21 boxes checked" in result.stdout and "93%" in result.stdout


def test_output_files_are_written_in_each_format(tmp_path: Path) -> None:
    for output_format, marker in (("html", "<svg"), ("markdown", "## Score by category"),
                                  ("json", '"totals"'), ("table", "Score by category")):
        target = tmp_path / f"report.{output_format}"
        result = _invoke(KIND_DEV, "--format", output_format, "-o", str(target))
        assert result.exit_code == 0, result.output
        assert marker in target.read_text()
        assert f"wrote {target}" in " ".join(result.stdout.split())


def test_fail_under_exits_one_below_the_bar_and_zero_at_it() -> None:
    assert _invoke(KIND_DEV, "--fail-under", "12", "--format", "json").exit_code == 0
    below = _invoke(KIND_DEV, "--fail-under", "13", "--format", "json")
    assert below.exit_code == 1
    assert "readiness 12 is under --fail-under 13" in below.stderr
    assert _invoke(WEAK, "--fail-under", "8").exit_code == 1


def test_a_model_repo_and_an_unreachable_context_are_reported_not_raised(
    baked_repos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = _invoke(KIND_DEV, "--model-repo", str(baked_repos["github"]), "--context", "kind-gone",
                     "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    statuses = {check["id"]: check["status"] for check in data["checks"]}
    assert statuses["gates-statistical"] == "pass"
    assert statuses["gitops-sync"] == "unknown"  # the blueprint says yes; the cluster could not confirm
    assert data["sources"][1] == {"kind": "cluster", "name": "cluster:kind-gone", "available": False,
                                  "detail": data["sources"][1]["detail"]}


def test_a_missing_blueprint_is_a_spec_error_without_a_traceback() -> None:
    result = _invoke("no/such/blueprint.yaml")
    assert result.exit_code == 2
    assert "no/such/blueprint.yaml:1:1" in result.stderr
    assert "Traceback" not in result.output


def test_an_invalid_blueprint_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata:\n  name: x\ncluster:\n  kind: kind\ngitopz: {}\n")
    result = _invoke(str(bad))
    assert result.exit_code == 2
    assert f"{bad}:5:1" in result.stderr
    assert "gitopz" in result.stderr


def test_a_model_repo_that_does_not_exist_is_an_input_error(tmp_path: Path) -> None:
    result = _invoke(KIND_DEV, "--model-repo", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "--model-repo is not a directory" in result.stderr
