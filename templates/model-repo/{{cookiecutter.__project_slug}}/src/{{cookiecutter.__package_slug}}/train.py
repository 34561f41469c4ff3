"""Train the candidate model and write it, with its metadata, as the artifact directory."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
{% if cookiecutter.runtime == "sklearn" %}
import joblib
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from {{ cookiecutter.__package_slug }}.data import FEATURES, split

MODEL_FILE = "model.joblib"


def train(out: Path) -> Path:
    """Fit a scaled logistic regression on the training split and save it where MLServer's sklearn runtime looks."""
    train_features, _, train_labels, _ = split()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train_features, train_labels)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / MODEL_FILE)
    _profile(out, train_features)
    return out / MODEL_FILE
{% elif cookiecutter.runtime == "xgboost" %}
from xgboost import XGBClassifier

from {{ cookiecutter.__package_slug }}.data import FEATURES, split

MODEL_FILE = "model.json"


def train(out: Path) -> Path:
    """Fit gradient-boosted trees on the training split and save them in XGBoost's portable JSON format."""
    train_features, _, train_labels, _ = split()
    model = XGBClassifier(n_estimators=200, max_depth=3, learning_rate=0.1, random_state=0)
    model.fit(train_features, train_labels)
    out.mkdir(parents=True, exist_ok=True)
    model.save_model(out / MODEL_FILE)
    _profile(out, train_features)
    return out / MODEL_FILE
{% elif cookiecutter.runtime == "pytorch-triton" %}
import torch

from {{ cookiecutter.__package_slug }}.data import FEATURES, split

MODEL_NAME = "{{ cookiecutter.__package_slug }}"
MODEL_FILE = f"model_repository/{MODEL_NAME}/1/model.pt"
TRITON_CONFIG = """name: "%(name)s"
platform: "pytorch_libtorch"
max_batch_size: 64
input [ { name: "INPUT__0", data_type: TYPE_FP32, dims: [ %(features)d ] } ]
output [ { name: "OUTPUT__0", data_type: TYPE_FP32, dims: [ 1 ] } ]
"""


class Classifier(torch.nn.Module):
    """A small MLP with the feature scaling inside, so Triton serves raw features."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(mean.shape[0], 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Sigmoid()
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Probability of the positive class for each row."""
        return self.layers((features - self.mean) / self.scale)


def train(out: Path) -> Path:
    """Fit the MLP on the training split and export TorchScript in Triton's model-repository layout."""
    torch.manual_seed(0)
    train_features, _, train_labels, _ = split()
    inputs = torch.tensor(train_features, dtype=torch.float32)
    targets = torch.tensor(train_labels, dtype=torch.float32).unsqueeze(1)
    model = Classifier(inputs.mean(0), inputs.std(0).clamp_min(1e-6))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(model(inputs), targets)
        loss.backward()
        optimiser.step()
    target = out / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(model.eval()).save(str(target))
    config = TRITON_CONFIG % {"name": MODEL_NAME, "features": len(FEATURES)}
    (out / "model_repository" / MODEL_NAME / "config.pbtxt").write_text(config)
    _profile(out, train_features)
    return target
{% elif cookiecutter.runtime == "llm-vllm" %}
# An LLM is not trained here: the artifact pins the served base model and vLLM's
# settings, so a new release is a reviewed change to this file.
BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
MODEL_FILE = "serving.json"
SERVING = {"model": BASE_MODEL, "max_model_len": 4096, "gpu_memory_utilization": 0.9, "dtype": "auto"}


def train(out: Path) -> Path:
    """Write vLLM's serving settings as the artifact."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_text(json.dumps(SERVING, indent=2) + "\n")
    return out / MODEL_FILE
{% endif %}
{%- if cookiecutter.runtime != "llm-vllm" %}

def _profile(out: Path, train_features) -> None:
    """Save per-feature reference statistics: the sidecar measures drift against them."""
    profile = {
        name: {"mean": float(train_features[:, i].mean()), "std": float(train_features[:, i].std())}
        for i, name in enumerate(FEATURES)
    }
    (out / "reference-profile.json").write_text(json.dumps(profile, indent=2) + "\n")
{%- endif %}


def _manifest(out: Path, model_file: Path) -> None:
    """Record what was built and its digest, so a pushed artifact can be checked."""
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    manifest = {"model": "{{ cookiecutter.model_name }}", "team": "{{ cookiecutter.team }}",
                "runtime": "{{ cookiecutter.runtime }}", "file": str(model_file.relative_to(out)), "sha256": digest}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> None:
    """Command line: python -m {{ cookiecutter.__package_slug }}.train --out DIR."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/candidate"))
    arguments = parser.parse_args()
    model_file = train(arguments.out)
    _manifest(arguments.out, model_file)
    print(f"wrote {model_file}")


if __name__ == "__main__":
    main()
