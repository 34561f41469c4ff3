{%- if cookiecutter.runtime != "llm-vllm" -%}
"""The training data and the fixed holdout that every candidate and the production model are scored on.

The customers are generated here, deterministically and offline, so the repo works from its first commit;
replace `customers()` with your own data. There are enough of them that the holdout can tell a candidate
within the gate's margin (model.yaml gate.margin) of the model it replaces: the first `make gate` passes
without a sample-size warning.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

# The holdout must not move between releases, or the gate compares models on different rows.
HOLDOUT_SEED = 20240601
HOLDOUT_FRACTION = 0.3
DATA_SEED = 20240601
ROWS = 40_000
FEATURES = ("tenure_months", "monthly_charges", "support_calls", "contract_months", "late_payments",
            "data_usage_gb")


def customers() -> tuple[np.ndarray, np.ndarray]:
    """Features (one column per FEATURES name) and churn labels (1: left within the quarter)."""
    rng = np.random.default_rng(DATA_SEED)
    tenure = rng.gamma(2.0, 14.0, ROWS)
    charges = rng.normal(70.0, 25.0, ROWS).clip(15.0, 160.0)
    calls = rng.poisson(1.5, ROWS)
    contract = rng.choice([1, 12, 24], ROWS, p=[0.5, 0.3, 0.2])
    late = rng.poisson(0.6, ROWS)
    usage = rng.lognormal(2.5, 0.6, ROWS)
    risk = 3.0 * (0.4 - 0.08 * tenure + 0.03 * (charges - 70.0) + 0.9 * calls - 0.15 * contract + 1.0 * late
                  - 0.02 * usage)
    labels = (rng.random(ROWS) < 1.0 / (1.0 + np.exp(-risk))).astype(int)
    return np.column_stack([tenure, charges, calls, contract, late, usage]), labels


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train features, holdout features, train labels, holdout labels."""
    features, labels = customers()
    return train_test_split(
        features, labels, test_size=HOLDOUT_FRACTION, random_state=HOLDOUT_SEED, stratify=labels
    )


def size_slice(features: np.ndarray, train_features: np.ndarray) -> np.ndarray:
    """'large' or 'small' accounts by monthly charges, split at the training median: the gate's slice."""
    column = FEATURES.index("monthly_charges")
    median = float(np.median(train_features[:, column]))
    return np.where(features[:, column] >= median, "large", "small")
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
