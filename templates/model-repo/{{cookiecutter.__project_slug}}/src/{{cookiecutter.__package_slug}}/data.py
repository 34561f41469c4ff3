{%- if cookiecutter.runtime != "llm-vllm" -%}
"""The training data and the fixed holdout that every candidate and the production model are scored on."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

# The holdout must not move between releases, or the gate compares models on different rows.
HOLDOUT_SEED = 20240601
HOLDOUT_FRACTION = 0.3
FEATURES = tuple(load_breast_cancer().feature_names)


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train features, holdout features, train labels, holdout labels (scikit-learn's bundled data, offline)."""
    features, labels = load_breast_cancer(return_X_y=True)
    return train_test_split(
        features, labels, test_size=HOLDOUT_FRACTION, random_state=HOLDOUT_SEED, stratify=labels
    )


def size_slice(features: np.ndarray, train_features: np.ndarray) -> np.ndarray:
    """'large' or 'small' tumours by mean radius, split at the training median: the gate's slice."""
    median = float(np.median(train_features[:, 0]))
    return np.where(features[:, 0] >= median, "large", "small")
{%- else -%}
"""The evaluation set: multiple-choice questions with one right letter, scored by exact match."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One evaluation item: its topic (the gate's slice), prompt and right answer."""

    topic: str
    prompt: str
    answer: str


QUESTIONS = (
    Question("math", "What is 7 * 8? A) 54 B) 56 C) 64 D) 48. Answer with one letter.", "B"),
    Question("math", "What is 144 / 12? A) 11 B) 14 C) 12 D) 10. Answer with one letter.", "C"),
    Question("math", "What is 2 to the power 10? A) 1024 B) 512 C) 2048 D) 1000. Answer with one letter.", "A"),
    Question("geography", "Capital of Japan? A) Osaka B) Kyoto C) Seoul D) Tokyo. Answer with one letter.", "D"),
    Question("geography", "Longest river in Africa? A) Congo B) Nile C) Niger D) Zambezi. Answer with one letter.", "B"),
    Question("geography", "Capital of Canada? A) Ottawa B) Toronto C) Montreal D) Quebec. Answer with one letter.", "A"),
)
{%- endif %}
