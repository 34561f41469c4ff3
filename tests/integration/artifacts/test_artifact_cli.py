"""`shipway model push|pull` end to end through typer, against a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shipway.artifacts.layout import MARKER_FILE, init_container_args
from shipway.cli.artifacts import register

pytestmark = pytest.mark.integration


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "model.joblib").write_bytes(b"\x80\x04" + bytes(range(256)) * 64)
    (root / "model.yaml").write_text("name: iris\nteam: ml\nversion: 1.0.0\nruntime: sklearn\n")
    return root


def test_push_then_pull_with_the_init_container_command_line(app, registry, tmp_path: Path) -> None:
    runner = CliRunner()
    ref = registry.ref("team/iris", "1.0.0")
    pushed = runner.invoke(app, ["model", "push", str(_model(tmp_path / "model")), ref, "--plain-http"])
    assert pushed.exit_code == 0, pushed.output
    assert "pushed" in pushed.output and "uploaded 2 blobs" in pushed.output

    again = runner.invoke(app, ["model", "push", str(tmp_path / "model"), ref, "--plain-http"])
    assert again.exit_code == 0 and "up to date" in again.output

    # The rendered init container runs exactly this command line (minus the program name).
    args = init_container_args(ref, mount_path=str(tmp_path / "models"), plain_http=True)
    assert args[:3] == ["shipway", "model", "pull"]
    pulled = runner.invoke(app, args[1:])
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "models" / "model" / "model.joblib").read_bytes() == (tmp_path / "model" / "model.joblib").read_bytes()
    assert (tmp_path / "models" / "model" / MARKER_FILE).is_file()


def test_cli_errors_are_one_line_and_carry_exit_codes(app, auth_registry, tmp_path: Path) -> None:
    runner = CliRunner()
    model = str(_model(tmp_path / "model"))
    ref = auth_registry.ref("team/iris", "1.0.0")
    wrong = runner.invoke(app, ["model", "push", model, ref, "--plain-http", "-u", "shipway", "-p", "nope"])
    assert wrong.exit_code == 4
    assert "error:" in wrong.output and "check the username and password" in wrong.output
    assert "Traceback" not in wrong.output

    right = ["--plain-http", "-u", auth_registry.username, "--password-stdin"]
    ok = runner.invoke(app, ["model", "push", model, ref, *right], input=auth_registry.password + "\n")
    assert ok.exit_code == 0, ok.output
    (tmp_path / "model" / "model.joblib").write_bytes(b"retrained")
    refused = runner.invoke(app, ["model", "push", model, ref, *right], input=auth_registry.password + "\n")
    assert refused.exit_code == 5 and "--force" in refused.output
    forced = runner.invoke(app, ["model", "push", model, ref, *right, "--force"], input=auth_registry.password + "\n")
    assert forced.exit_code == 0, forced.output


def test_exists_answers_0_for_a_present_tag_1_for_an_absent_one_and_errors_above(
    app, registry, auth_registry, tmp_path: Path
) -> None:
    runner = CliRunner()
    ref = registry.ref("team/iris", "1.0.0")
    assert runner.invoke(app, ["model", "push", str(_model(tmp_path / "model")), ref, "--plain-http"]).exit_code == 0
    present = runner.invoke(app, ["model", "exists", ref, "--plain-http"])
    assert present.exit_code == 0 and "@sha256:" in present.output
    absent = runner.invoke(app, ["model", "exists", registry.ref("team/iris", "prod"), "--plain-http"])
    assert absent.exit_code == 1 and "absent" in absent.output
    never_pushed = runner.invoke(app, ["model", "exists", registry.ref("team/nothing", "prod"), "--plain-http"])
    assert never_pushed.exit_code == 1
    refused = runner.invoke(app, ["model", "exists", auth_registry.ref("team/iris", "1.0.0"), "--plain-http",
                                  "-u", "shipway", "-p", "nope"])
    assert refused.exit_code == 4, refused.output


def test_plain_http_comes_from_the_environment_too(app, registry, tmp_path: Path) -> None:
    runner = CliRunner()
    ref = registry.ref("team/iris", "1.0.0")
    model = str(_model(tmp_path / "model"))
    refused = runner.invoke(app, ["model", "push", model, ref], env={"SHIPWAY_PLAIN_HTTP": ""})
    assert refused.exit_code != 0
    pushed = runner.invoke(app, ["model", "push", model, ref], env={"SHIPWAY_PLAIN_HTTP": "1"})
    assert pushed.exit_code == 0, pushed.output
    assert runner.invoke(app, ["model", "exists", ref], env={"SHIPWAY_PLAIN_HTTP": "1"}).exit_code == 0


def test_a_second_pod_on_the_node_pulls_through_the_cache_without_a_download(app, registry, tmp_path: Path) -> None:
    runner = CliRunner()
    ref = registry.ref("team/iris", "1.0.0")
    model = _model(tmp_path / "model")
    (model / "weights.bin").write_bytes(bytes(range(256)) * (80 * 1024))  # 20 MiB: a layer of its own
    assert runner.invoke(app, ["model", "push", str(model), ref, "--plain-http"]).exit_code == 0
    cache = tmp_path / "node-cache"
    first = runner.invoke(app, ["model", "pull", ref, str(tmp_path / "pod-1" / "model"), "--plain-http",
                                "--cache", str(cache)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["model", "pull", ref, str(tmp_path / "pod-2" / "model"), "--plain-http",
                                 "--cache", str(cache)])
    assert second.exit_code == 0, second.output
    assert " 0 B in " in second.output, second.output
    weights = [tmp_path / pod / "model" / "weights.bin" for pod in ("pod-1", "pod-2")]
    assert weights[0].read_bytes() == weights[1].read_bytes() == (model / "weights.bin").read_bytes()
    assert weights[0].stat().st_ino == weights[1].stat().st_ino
