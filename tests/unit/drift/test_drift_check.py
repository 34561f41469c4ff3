"""`shipway drift check PROFILE DATA`: the sidecar's statistics on a batch file, exit 1 over the bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from shipway.cli.sidecar import register
from shipway.drift.profile import build_profile
from shipway.drift.window import compare


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


@pytest.fixture()
def profile(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"amount": rng.lognormal(3, 1, 5000), "city": rng.choice(["a", "b", "c"], 5000),
                          "flag": np.full(5000, 5.0)})
    return build_profile(train).save(tmp_path / "profile.json")


def _batch(rng: np.random.Generator, flag: float = 5.0, missing: float = 0.0) -> pd.DataFrame:
    batch = pd.DataFrame({"amount": rng.lognormal(3, 1, 2000), "city": rng.choice(["a", "b", "c"], 2000),
                          "flag": np.full(2000, flag)})
    batch.loc[rng.random(2000) < missing, "amount"] = np.nan
    return batch


def _check(app: typer.Typer, *arguments: str):
    return CliRunner().invoke(app, ["drift", "check", *arguments])


def test_an_undrifted_batch_exits_0_with_a_table_per_feature(app, profile: Path, tmp_path: Path) -> None:
    data = tmp_path / "batch.csv"
    _batch(np.random.default_rng(2)).to_csv(data, index=False)
    result = _check(app, str(profile), str(data))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "no feature's PSI is over 0.25" in said
    assert all(name in result.output for name in ("amount", "city", "flag"))


def test_a_drifted_batch_exits_1_naming_the_features_with_the_sidecars_figures(
    app, profile: Path, tmp_path: Path
) -> None:
    batch = _batch(np.random.default_rng(3), flag=100.0, missing=0.9)
    data = tmp_path / "batch.parquet"
    batch.to_parquet(data)
    result = _check(app, str(profile), str(data), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["drifted"] == ["amount", "flag"] and report["rows"] == 2000 and report["max_psi"] == 0.25
    figures = {feature["name"]: feature for feature in report["features"]}
    # The same numbers the sidecar's window gives for these rows.
    from shipway.drift.profile import ReferenceProfile

    window = compare(ReferenceProfile.load(profile), {name: batch[name].to_numpy() for name in batch}, len(batch))
    for feature in window.features:
        assert figures[feature.name]["psi"] == pytest.approx(feature.psi)
    assert figures["flag"]["ks"] == 1.0 and figures["flag"]["js"] == 1.0
    assert figures["amount"]["missing_share"] == pytest.approx(0.9, abs=0.02)
    assert figures["amount"]["reference_missing_share"] == 0.0
    assert figures["city"]["over_bound"] is False and 0 < figures["city"]["chi2_pvalue"] <= 1
    table = _check(app, str(profile), str(data))
    assert table.exit_code == 1 and "PSI over 0.25 on amount, flag" in " ".join(table.output.split())


def test_a_bound_given_on_the_command_line_replaces_the_profiles(app, profile: Path, tmp_path: Path) -> None:
    data = tmp_path / "batch.csv"
    _batch(np.random.default_rng(4), missing=0.9).to_csv(data, index=False)
    assert _check(app, str(profile), str(data)).exit_code == 1
    assert _check(app, str(profile), str(data), "--max-psi", "50").exit_code == 0


def test_the_profiles_own_bound_comes_from_drift_profile(app, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    train = tmp_path / "train.csv"
    pd.DataFrame({"amount": rng.lognormal(3, 1, 5000), "city": rng.choice(["a", "b", "c"], 5000),
                  "flag": np.full(5000, 5.0)}).to_csv(train, index=False)
    profile = tmp_path / "profile.json"
    made = CliRunner().invoke(app, ["drift", "profile", str(train), "--output", str(profile), "--max-psi", "50"])
    assert made.exit_code == 0, made.output
    assert json.loads(profile.read_text())["max_psi"] == 50
    data = tmp_path / "batch.csv"
    _batch(rng, missing=0.9).to_csv(data, index=False)
    result = _check(app, str(profile), str(data), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output)["max_psi"] == 50


@pytest.mark.parametrize(("arguments", "words"), [
    (("--format", "yaml"), "Invalid value for '--format': 'yaml' is not one of 'table', 'json'."),
    (("--max-psi", "0"), "--max-psi must be a positive number, got 0.0"),
])
def test_bad_options_exit_2(app, profile: Path, tmp_path: Path, arguments: tuple[str, ...], words: str) -> None:
    data = tmp_path / "batch.csv"
    _batch(np.random.default_rng(5)).to_csv(data, index=False)
    result = _check(app, str(profile), str(data), *arguments)
    assert result.exit_code == 2 and words in " ".join(result.output.split())


def test_a_batch_without_a_profiled_column_exits_2_naming_it(app, profile: Path, tmp_path: Path) -> None:
    data = tmp_path / "batch.csv"
    _batch(np.random.default_rng(6)).drop(columns=["city"]).to_csv(data, index=False)
    result = _check(app, str(profile), str(data))
    assert result.exit_code == 2
    assert "batch.csv: column 'city' is not in the data, which has: amount, flag" in " ".join(result.output.split())


def test_an_old_profile_exits_2_saying_how_to_regenerate_it(app, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "shipway.drift/v1", "features": []}))
    data = tmp_path / "batch.csv"
    _batch(np.random.default_rng(7)).to_csv(data, index=False)
    result = _check(app, str(old), str(data))
    assert result.exit_code == 2
    assert "regenerate it from the training features with `shipway drift profile" in " ".join(result.output.split())


def test_format_is_a_choice_shown_in_help_like_every_other_format(app) -> None:
    """Before: a free string, checked by hand, shown in --help as <str>."""
    import typer

    command = typer.main.get_command(app)
    check = command.commands["drift"].commands["check"]  # type: ignore[attr-defined]
    option = next(param for param in check.params if "--format" in param.opts)
    assert list(getattr(option.type, "choices", [])) == ["table", "json"]
