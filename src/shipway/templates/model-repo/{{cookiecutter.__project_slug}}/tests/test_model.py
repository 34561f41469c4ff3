"""The model repo's own tests: the road's steps work before CI runs them."""

from __future__ import annotations

from pathlib import Path

{% if cookiecutter.runtime != "llm-vllm" -%}
import pytest

from {{ cookiecutter.__package_slug }}.data import ROWS, split
from {{ cookiecutter.__package_slug }}.evaluate import holdout_table
from {{ cookiecutter.__package_slug }}.predict import load, predict_proba
from {{ cookiecutter.__package_slug }}.train import train


def test_holdout_is_fixed_and_disjoint_from_training() -> None:
    first, second = split(), split()
    assert (first[1] == second[1]).all()
    assert len(first[0]) + len(first[1]) == ROWS


def test_trained_model_beats_the_prior_on_the_holdout(tmp_path: Path) -> None:
    train(tmp_path / "candidate")
    table = holdout_table(tmp_path / "candidate", tmp_path / "no-production-yet")
    assert set(table.columns) >= {"label", "candidate", "baseline", "size"}
    assert (table["candidate"] == table["label"]).mean() > 0.9
    assert (table["candidate"] == table["label"]).mean() > (table["baseline"] == table["label"]).mean()


def test_saved_model_predicts_probabilities(tmp_path: Path) -> None:
    train(tmp_path)
    _, holdout, _, _ = split()
    scores = predict_proba(load(tmp_path), holdout[:5])
    assert scores.shape == (5,)
    assert ((scores >= 0) & (scores <= 1)).all()
{%- else -%}
import json

import pytest

from {{ cookiecutter.__package_slug }}.data import QUESTIONS
from {{ cookiecutter.__package_slug }}.predict import ANSWER
from {{ cookiecutter.__package_slug }}.train import train


def test_every_question_has_one_right_letter_among_its_choices() -> None:
    for question in QUESTIONS:
        assert question.answer in "ABCD"
        assert f"{question.answer})" in question.prompt


def test_answers_are_parsed_from_free_text() -> None:
    assert ANSWER.search("THE ANSWER IS B.").group(1) == "B"


def test_artifact_is_the_weights_folder_vllm_serves(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (weights / "model.safetensors").write_bytes(b"\0" * 8)
    (weights / "tokenizer.json").write_text("{}")
    model_file = train(tmp_path / "artifact", weights)
    assert model_file == tmp_path / "artifact" / "config.json"
    assert {p.name for p in (tmp_path / "artifact").iterdir()} == {"config.json", "model.safetensors", "tokenizer.json"}


def test_a_folder_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="no \\*.safetensors"):
        train(tmp_path / "artifact", tmp_path)
{%- endif %}
