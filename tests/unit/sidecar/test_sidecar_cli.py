"""`shipway sidecar` and `shipway drift profile` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from typer.testing import CliRunner

from shipway.cli import sidecar as sidecar_cli
from shipway.drift.profile import CategoricalFeature, ReferenceProfile, build_profile
from shipway.sidecar.metrics import SloThresholds


def _app() -> typer.Typer:
    app = typer.Typer()
    sidecar_cli.register(app)
    return app


def test_drift_profile_writes_a_loadable_profile(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "train.csv"
    pd.DataFrame({"x": rng.normal(size=300), "city": rng.choice(["a", "b"], 300), "pred": rng.integers(0, 2, 300)}).to_csv(data, index=False)
    output = tmp_path / "profile.json"
    result = CliRunner().invoke(_app(), ["drift", "profile", str(data), "-o", str(output), "--prediction", "pred"])
    assert result.exit_code == 0, result.output
    profile = ReferenceProfile.load(output)
    assert profile.feature_names == ("x", "city")
    assert isinstance(profile.features[1], CategoricalFeature)
    assert profile.prediction is not None
    assert json.loads(output.read_text())["format"] == "shipway.drift/v2"


def test_user_errors_are_one_line_messages_not_tracebacks(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_app(), ["sidecar", "--listen", "nope", "--upstream", "http://127.0.0.1:1", "--model", "m", "--version", "v"])
    assert result.exit_code == 2
    assert "Got --listen 'nope': expected HOST:PORT" in result.output and "e.g. --listen 0.0.0.0:8080" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(_app(), ["sidecar", "--upstream", "127.0.0.1:1", "--model", "m", "--version", "v"])
    assert "--upstream must be an http(s) URL" in result.output and result.exit_code == 2
    result = runner.invoke(_app(), ["drift", "profile", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 2  # bad input, as every command
    assert "no such file" in result.output


def test_importing_the_commands_stays_light() -> None:
    code = "import sys, shipway.cli.sidecar; print(sorted(m for m in ('aiohttp', 'numpy', 'pandas', 'scipy') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_slo_flags_become_threshold_gauges_and_bad_values_are_refused() -> None:
    thresholds = sidecar_cli._thresholds(250, 0.02, None, 300, 0.9)
    assert thresholds == SloThresholds(latency_p99_seconds=0.25, error_rate=0.02, drift_psi=None, drift_min_rows=300,
                                       accuracy_floor=0.9)
    assert sidecar_cli._thresholds(None, None, None, None, None) == SloThresholds()
    runner = CliRunner()
    base = ["sidecar", "--upstream", "http://127.0.0.1:1", "--model", "m", "--version", "v"]
    for flag, value in (("--slo-error-rate", "1.5"), ("--slo-accuracy-floor", "0"), ("--slo-latency-p99-ms", "-1")):
        result = runner.invoke(_app(), [*base, flag, value])
        assert result.exit_code == 2, result.output  # bad input
        assert f"{flag} must be" in result.output and "Traceback" not in result.output


def test_a_feature_the_reference_lacks_is_refused_at_start_up_naming_the_profiles_features(tmp_path: Path) -> None:
    reference = tmp_path / "profile.json"
    build_profile(np.random.default_rng(0).normal(size=(200, 3)), ["age", "income", "tenure"]).save(reference)
    base = ["sidecar", "--upstream", "http://127.0.0.1:1", "--model", "m", "--version", "v"]
    result = CliRunner().invoke(_app(), [*base, "--reference", str(reference), "--feature", "age", "--feature", "agee"])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == "error: feature 'agee' not in the reference profile, which has: age, income, tenure"
    assert "sidecar m:v on" not in result.output
    result = CliRunner().invoke(_app(), [*base, "--feature", "age"])
    assert result.exit_code == 2, result.output
    assert "--feature needs --reference" in result.output and "Traceback" not in result.output
