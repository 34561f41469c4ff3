"""The blueprint commands through the real app: exit codes, JSON, files, and no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from shipway import __version__
from shipway.cli import app

ROOT = Path(__file__).resolve().parents[3]
KIND_DEV = str(ROOT / "blueprints" / "kind-dev.yaml")
runner = CliRunner()

HEAVY = ("pulumi", "pulumi_kubernetes", "numpy", "pandas", "scipy", "matplotlib", "oras", "aiohttp",
         "cookiecutter", "testinfra", "kubernetes", "prometheus_client")


def test_help_path_imports_nothing_heavy() -> None:
    code = ("import sys; import shipway.cli; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"`shipway --help` imports {loaded}"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"shipway {__version__}"


def test_validate_valid_blueprint_json() -> None:
    result = runner.invoke(app, ["validate", KIND_DEV, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert set(report["resourcesByLayer"]) == {"cluster", "nodepools", "observability", "gpu", "registry", "gateway", "gitops",
                                               "serving", "tenancy"}


def test_validate_invalid_blueprint_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata:\n  name: Bad_Name\ncluster:\n  kind: kind\n")
    result = runner.invoke(app, ["validate", str(bad), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["failedAt"] == "load"
    [problem] = [p for p in report["problems"] if p["path"] == "metadata.name"]
    assert problem["line"] == 2 and "DNS-1123" in problem["message"]


def test_validate_invalid_blueprint_table_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata: [unclosed\n")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:" in result.output and "YAML syntax error" in result.output
    assert "Traceback" not in result.output


def test_synth_writes_output_and_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", KIND_DEV, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "tenancy" in result.stdout and "shipway-dev" in result.stdout
    assert (out / "plan.json").exists() and (out / "platform.json").exists()
    assert len(list((out / "manifests").glob("*.yaml"))) > 30


def test_synth_tree_names_every_resource_whole_through_a_pipe(tmp_path: Path) -> None:
    """A pipe is 80 columns to rich; the tree still prints every resource's whole name (they are copied)."""
    import json

    result = runner.invoke(app, ["synth", KIND_DEV, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    names = [resource["name"] for resource in plan["resources"] if resource["custom"] and len(resource["name"]) > 70]
    assert names, "kind-dev has long resource names"
    assert all(f" {name}\n" in result.stdout for name in names), [n for n in names if f" {n}\n" not in result.stdout]


def test_synth_bad_blueprint_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata:\n  name: ok\ncluster:\n  kind: nope\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert "cluster" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_schema_check_detects_stale_files(tmp_path: Path) -> None:
    assert runner.invoke(app, ["schema", "-o", str(tmp_path)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blueprint.schema.json", "model.schema.json"]
    assert runner.invoke(app, ["schema", "-o", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "model.schema.json").write_text("{}\n")
    result = runner.invoke(app, ["schema", "-o", str(tmp_path), "--check"])
    assert result.exit_code == 1 and "model.schema.json" in result.output


def test_committed_schemas_are_current() -> None:
    assert runner.invoke(app, ["schema", "-o", str(ROOT / "blueprints" / "schema"), "--check"]).exit_code == 0


def test_kind_config_to_file(tmp_path: Path) -> None:
    out = tmp_path / "kind.yaml"
    result = runner.invoke(app, ["kind-config", KIND_DEV, "-o", str(out)])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(out.read_text())
    assert config["kind"] == "Cluster" and config["name"] == "shipway-dev"
    workers = [node for node in config["nodes"] if node["role"] == "worker"]
    assert {node["labels"]["shipway.dev/pool"] for node in workers} == {"system", "gpu-small", "gpu-large"}


def test_kind_config_refuses_cloud_blueprint() -> None:
    result = runner.invoke(app, ["kind-config", str(ROOT / "blueprints" / "eks-prod.yaml")])
    assert result.exit_code == 1
    assert "kind-config needs" in result.output and "Traceback" not in result.output


def test_an_unwritable_output_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["synth", KIND_DEV, "-o", str(blocker / "out")])
    assert result.exit_code == 1
    assert "error:" in result.output and str(blocker) in result.output
    assert "Traceback" not in result.output


def test_a_program_failure_is_reported_without_a_made_up_position(monkeypatch) -> None:
    import shipway.platform.synth as synth_module

    def failing(path):
        raise synth_module.SynthError("the Pulumi program failed under the mock engine: boom")

    monkeypatch.setattr(synth_module, "run_program", failing)
    table = runner.invoke(app, ["validate", KIND_DEV])
    assert table.exit_code == 1 and f"{KIND_DEV}: " in table.output and ":0:0" not in table.output
    report = json.loads(runner.invoke(app, ["validate", KIND_DEV, "--format", "json"]).stdout)
    assert report["failedAt"] == "synth" and report["problems"][0]["line"] is None
