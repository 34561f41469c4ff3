"""The gate's settings: model.yaml's gate section, with the command line's options winning over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.errors import SpecError
from shipway.gate.errors import GateInputError
from shipway.gate.settings import GateOptions, GateSettings, gate_metric, resolve_settings

MODEL = """\
name: fraud-score
team: risk
version: 1.0.0
runtime: sklearn
gate:
  metrics: [{metrics}]
  margin: 0.03
  confidence: 0.9
  slices: [region, size]
"""


def _model(tmp_path: Path, metrics: str = "accuracy", text: str | None = None) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(MODEL.format(metrics=metrics) if text is None else text)
    return path


def test_model_yaml_gives_every_setting(tmp_path: Path) -> None:
    settings = resolve_settings(GateOptions(), _model(tmp_path, "accuracy, f1"))
    assert settings == GateSettings(("accuracy", "f1"), 0.03, None, 0.9, ("region", "size"))
    configs = settings.configs(task="binary", resamples=500, permutations=0, seed=7)
    assert [(c.metric, c.margin, c.confidence, c.task, c.resamples, c.seed) for c in configs] == [
        ("accuracy", 0.03, 0.9, "binary", 500, 7),
        ("f1", 0.03, 0.9, "binary", 500, 7),
    ]


def test_command_line_options_win_over_model_yaml(tmp_path: Path) -> None:
    options = GateOptions(metrics=("roc_auc",), margin=0.01, confidence=0.99, slices=("country",))
    settings = resolve_settings(options, _model(tmp_path, "accuracy, f1"))
    assert settings == GateSettings(("roc_auc",), 0.01, None, 0.99, ("country",))


def test_a_minimum_improvement_on_the_command_line_replaces_the_model_yaml_margin(tmp_path: Path) -> None:
    settings = resolve_settings(GateOptions(min_improvement=0.01), _model(tmp_path))
    assert (settings.margin, settings.min_improvement) == (None, 0.01)
    assert settings.configs()[0].threshold == 0.01


def test_a_model_yaml_without_a_gate_section_takes_the_spec_defaults(tmp_path: Path) -> None:
    text = MODEL.split("gate:")[0]
    settings = resolve_settings(GateOptions(), _model(tmp_path, text=text))
    assert settings == GateSettings(("accuracy",), 0.0, None, 0.95, ())


def test_without_model_yaml_the_command_line_alone_decides() -> None:
    assert resolve_settings(GateOptions(metrics=("mae",))) == GateSettings(("mae",), None, None, 0.95, ())
    with pytest.raises(GateInputError, match="give --metric, or --model model.yaml"):
        resolve_settings(GateOptions())


def test_model_yaml_metric_names_map_to_the_gates_and_repeats_are_judged_once(tmp_path: Path) -> None:
    assert gate_metric("auc") == "roc_auc" and gate_metric("logloss") == "log_loss"
    settings = resolve_settings(GateOptions(), _model(tmp_path, "auc, accuracy, roc_auc, log_loss"))
    assert settings.metrics == ("roc_auc", "accuracy", "log_loss")


def test_an_unknown_model_yaml_metric_is_refused_at_its_line_naming_the_field(tmp_path: Path) -> None:
    text = MODEL.replace("  metrics: [{metrics}]\n", "  metrics:\n    - accuracy\n    - precision\n")
    path = _model(tmp_path, text=text)
    with pytest.raises(SpecError) as raised:
        resolve_settings(GateOptions(), path)
    assert raised.value.exit_code == 2
    message = str(raised.value)
    assert message.startswith(f'{path}:8:7: gate.metrics[1]: unknown metric "precision"')
    assert "accuracy, f1, roc_auc, log_loss, rmse, mae" in message and "auc (= roc_auc)" in message


def test_a_metric_given_on_the_command_line_replaces_model_yamls_even_an_unknown_one(tmp_path: Path) -> None:
    assert resolve_settings(GateOptions(metrics=("f1",)), _model(tmp_path, "precision")).metrics == ("f1",)
    with pytest.raises(GateInputError, match="unknown metric 'precision'"):
        resolve_settings(GateOptions(metrics=("precision",)), _model(tmp_path))


def test_a_bad_model_yaml_gives_the_loaders_located_message(tmp_path: Path) -> None:
    path = _model(tmp_path, text=MODEL.format(metrics="accuracy").replace("margin: 0.03", "margn: 0.03"))
    with pytest.raises(SpecError) as raised:
        resolve_settings(GateOptions(), path)
    assert str(raised.value).startswith(f'{path}:7:3: gate.margn: unknown key "margn"')
    assert 'did you mean "margin"?' in str(raised.value)
