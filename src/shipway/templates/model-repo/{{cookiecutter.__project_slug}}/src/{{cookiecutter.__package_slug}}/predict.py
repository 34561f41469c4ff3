"""Load a model artifact directory and predict: the same code the evaluation and the tests use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

{% if cookiecutter.runtime != "llm-vllm" -%}
import numpy as np


def load(artifact: Path):
    """The model saved by train.py in ARTIFACT."""
{%- if cookiecutter.runtime == "sklearn" %}
    import joblib

    return joblib.load(artifact / "model.joblib")
{%- elif cookiecutter.runtime == "xgboost" %}
    from xgboost import XGBClassifier

    model = XGBClassifier()
    model.load_model(artifact / "model.json")
    return model
{%- else %}
    import torch

    from {{ cookiecutter.__package_slug }}.train import MODEL_FILE

    return torch.jit.load(str(artifact / MODEL_FILE))
{%- endif %}


def predict_proba(model, features: np.ndarray) -> np.ndarray:
    """Probability of the positive class for each row."""
{%- if cookiecutter.runtime == "pytorch-triton" %}
    import torch

    with torch.no_grad():
        return model(torch.tensor(features, dtype=torch.float32)).numpy()[:, 0].astype(np.float64)
{%- else %}
    return model.predict_proba(features)[:, 1]
{%- endif %}


def main() -> None:
    """Command line: python -m {{ cookiecutter.__package_slug }}.predict ARTIFACT < rows.json (a list of feature lists)."""
    model = load(Path(sys.argv[1]))
    rows = np.asarray(json.load(sys.stdin), dtype=np.float64)
    json.dump([float(p) for p in predict_proba(model, rows)], sys.stdout)
    print()
{%- else -%}
import os
import re

import requests

ANSWER = re.compile(r"\b([ABCD])\b")
# The platform serves the artifact's weights under the model's name (vLLM's --served-model-name).
SERVED_MODEL = "{{ cookiecutter.model_name }}"


def ask(base_url: str, model: str, prompt: str, timeout: float = 60.0) -> str:
    """The model's answer letter from an OpenAI-compatible endpoint (vLLM serves one); '' if none is found."""
    response = requests.post(
        f"{base_url.rstrip('/')}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0, "max_tokens": 8},
        timeout=timeout,
    )
    response.raise_for_status()
    text = response.json()["choices"][0]["message"]["content"]
    found = ANSWER.search(text.upper())
    return found.group(1) if found else ""


def main() -> None:
    """Command line: python -m {{ cookiecutter.__package_slug }}.predict PROMPT (endpoint from $MODEL_URL)."""
    print(ask(os.environ.get("MODEL_URL", "http://127.0.0.1:8000"), SERVED_MODEL, sys.argv[1]))
{%- endif %}


if __name__ == "__main__":
    main()
