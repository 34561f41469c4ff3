"""`shipway doctor` as a command: table, JSON, exit codes, blueprint errors, lazy imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import shipway
from shipway.cli import doctor
from shipway.doctor import target_from_blueprint
from shipway.doctor.requirements import TOOLS
from shipway.errors import ShipwayError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root, so that `doctor` stays a subcommand."""

    doctor.register(app)
    return app


def test_json_names_every_check_and_exits_1_when_a_needed_tool_is_missing(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["doctor", "--format", "json"])
    report = json.loads(result.output)
    names = [check["name"] for check in report["checks"]]
    assert names == [tool.name for tool in TOOLS] + ["docker engine", "kube context", "memory", "disk"]
    assert result.exit_code == (0 if report["ok"] else 1)
    missing = {tool.name for tool in TOOLS if shutil.which(tool.name) is None}
    assert {check["name"] for check in report["checks"] if check["status"] == "missing"} == missing
    if any(tool.needed and tool.name in missing for tool in TOOLS):
        assert result.exit_code == 1


def test_the_table_lists_each_check_and_what_blocks(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    for tool in TOOLS:
        assert tool.name in result.output
    report = json.loads(CliRunner().invoke(app, ["doctor", "--format", "json"]).output)
    blocking = [check["name"] for check in report["checks"] if check["blocking"]]
    if blocking:
        assert f"not ready: {', '.join(blocking)}" in result.output
    else:
        assert "ready" in result.output


def test_a_missing_blueprint_is_a_user_error_not_a_traceback(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--blueprint", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "no such blueprint file" in result.output
    assert "Traceback" not in result.output


def test_a_blueprint_that_is_not_a_mapping_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n")
    # SpecError once the spec loads blueprints; a plain ShipwayError before that.
    with pytest.raises(ShipwayError):
        target_from_blueprint(path)


def test_the_kind_dev_blueprint_targets_kind_and_its_context() -> None:
    from shipway.spec import load_blueprint

    path = REPO / "blueprints" / "kind-dev.yaml"
    name = load_blueprint(path).metadata.name
    target = target_from_blueprint(path)
    assert (target.cluster_kind, target.context, target.kind_cluster) == ("kind", f"kind-{name}", name)
    assert target.uses_kind


def test_an_existing_cluster_blueprint_checks_its_context_and_not_kind(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "existing.yaml"
    path.write_text(
        "metadata: {name: doctor-test}\n"
        "cluster: {kind: existing, context: shipway-doctor-no-such-context}\n"
        "gitops: {enabled: false}\n"
    )
    result = CliRunner().invoke(app, ["doctor", "--blueprint", str(path), "--format", "json"])
    checks = {check["name"]: check for check in json.loads(result.output)["checks"]}
    assert not checks["kind"]["needed"] and checks["memory"]["status"] == "skipped"
    context = checks["kube context"]
    if shutil.which("kubectl") is None:
        assert context["status"] == "skipped"
    else:
        # No kubeconfig here or on CI names this context.
        assert (context["status"], context["blocking"]) == ("fail", True)
        assert context["detail"] == "context 'shipway-doctor-no-such-context' is not in the kubeconfig"
        assert result.exit_code == 1


def test_importing_the_command_module_does_not_import_testinfra() -> None:
    source = str(Path(shipway.__file__).resolve().parents[1])
    code = "import sys; import shipway.cli.doctor; print('testinfra' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={"PYTHONPATH": source}
    )
    assert out.stdout.strip() == "False", out.stderr


def test_the_main_app_has_the_doctor_command() -> None:
    from shipway.cli import app as main_app

    names = {command.name or command.callback.__name__ for command in main_app.registered_commands}
    assert "doctor" in names, "shipway.cli must call doctor.register(app)"
