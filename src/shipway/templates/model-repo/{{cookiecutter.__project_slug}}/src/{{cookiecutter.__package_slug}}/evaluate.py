"""Score the candidate and the production model on the fixed holdout; write the table `shipway gate` reads."""

from __future__ import annotations

import argparse
{%- if cookiecutter.runtime == "llm-vllm" %}
import os
{%- endif %}
from pathlib import Path

import pandas as pd
{% if cookiecutter.runtime != "llm-vllm" %}
import numpy as np

from {{ cookiecutter.__package_slug }}.data import split, size_slice
from {{ cookiecutter.__package_slug }}.predict import load, predict_proba


def holdout_table(candidate: Path, production: Path) -> pd.DataFrame:
    """One row per holdout example: label, both models' predictions and scores, and the size slice."""
    train_features, holdout_features, train_labels, holdout_labels = split()
    candidate_scores = predict_proba(load(candidate), holdout_features)
    if production.is_dir():
        baseline_scores = predict_proba(load(production), holdout_features)
    else:
        # First release: nothing serves yet, so the candidate must beat always
        # answering with the training prior (a majority-class model).
        baseline_scores = np.full(holdout_labels.shape[0], float(train_labels.mean()))
    return pd.DataFrame(
        {
            "label": holdout_labels,
            "candidate": (candidate_scores >= 0.5).astype(int),
            "baseline": (baseline_scores >= 0.5).astype(int),
            "candidate_score": candidate_scores,
            "baseline_score": baseline_scores,
            "size": size_slice(holdout_features, train_features),
        }
    )
{% else %}
from {{ cookiecutter.__package_slug }}.data import QUESTIONS
from {{ cookiecutter.__package_slug }}.predict import SERVED_MODEL, ask


def holdout_table(candidate: Path, production: Path) -> pd.DataFrame:
    """One row per question: the right letter, both deployments' letters, and the topic slice.

    The candidate and production deployments are reached at $CANDIDATE_URL and
    $PRODUCTION_URL (vLLM's OpenAI-compatible server); `candidate` and
    `production` are their artifact directories, kept for the same interface.
    """
    candidate_url = os.environ.get("CANDIDATE_URL", "http://127.0.0.1:8000")
    production_url = os.environ.get("PRODUCTION_URL", "http://127.0.0.1:8001")
    return pd.DataFrame(
        {
            "label": [q.answer for q in QUESTIONS],
            "candidate": [ask(candidate_url, SERVED_MODEL, q.prompt) for q in QUESTIONS],
            "baseline": [ask(production_url, SERVED_MODEL, q.prompt) for q in QUESTIONS],
            "topic": [q.topic for q in QUESTIONS],
        }
    )
{% endif %}

def main() -> None:
    """Command line: python -m {{ cookiecutter.__package_slug }}.evaluate --candidate DIR --production DIR --out FILE."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidate", type=Path, default=Path("build/candidate"))
    parser.add_argument("--production", type=Path, default=Path("build/production"))
    parser.add_argument("--out", type=Path, default=Path("build/holdout.parquet"))
    arguments = parser.parse_args()
    table = holdout_table(arguments.candidate, arguments.production)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(arguments.out, index=False)
    print(f"wrote {arguments.out} ({len(table)} rows)")


if __name__ == "__main__":
    main()
