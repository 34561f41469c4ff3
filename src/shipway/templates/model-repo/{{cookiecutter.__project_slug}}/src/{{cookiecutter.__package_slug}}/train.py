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
    return target
{% elif cookiecutter.runtime == "llm-vllm" %}
import shutil

# An LLM is not trained here: the artifact is a folder of Hugging Face-format weights, copied from a local
# path, which `vllm serve` reads offline at the artifact's root (model.yaml's runtime.modelPath is ".").
MODEL_FILE = "config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def train(out: Path, weights: Path) -> Path:
    """Copy the weights folder into the artifact directory, refusing one vLLM could not load."""
    if not weights.is_dir() or not (weights / MODEL_FILE).is_file():
        raise SystemExit(f"--weights {weights} must be a folder of Hugging Face-format weights with a {MODEL_FILE}; "
                         "pass WEIGHTS=/path/to/model to make")
    if not any(path.suffix in WEIGHT_SUFFIXES for path in weights.rglob("*")):
        raise SystemExit(f"--weights {weights} holds no *.safetensors or *.bin weight files")
    shutil.copytree(weights, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git", ".cache"))
    return out / MODEL_FILE
{% endif %}
{%- if cookiecutter.runtime != "llm-vllm" %}

def write_features(path: Path) -> Path:
    """Save the training features, one named column each: `shipway drift profile` builds the reference from them."""
    import pandas as pd

    train_features, _, _, _ = split()
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(train_features, columns=list(FEATURES)).to_parquet(path, index=False)
    return path
{%- endif %}


def _manifest(out: Path, model_file: Path) -> None:
    """Record what was built and its digest, so a pushed artifact can be checked."""
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    manifest = {"model": "{{ cookiecutter.model_name }}", "team": "{{ cookiecutter.team }}",
                "runtime": "{{ cookiecutter.runtime }}", "file": str(model_file.relative_to(out)), "sha256": digest}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> None:
    """Command line: python -m {{ cookiecutter.__package_slug }}.train --out DIR (and --features FILE or --weights DIR)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/candidate"))
{%- if cookiecutter.runtime == "llm-vllm" %}
    parser.add_argument("--weights", type=Path, required=True, help="Local folder of Hugging Face-format weights.")
    arguments = parser.parse_args()
    model_file = train(arguments.out, arguments.weights)
{%- else %}
    parser.add_argument("--features", type=Path, default=Path("build/train-features.parquet"),
                        help="Where to save the training features for the drift reference profile.")
    arguments = parser.parse_args()
    model_file = train(arguments.out)
    write_features(arguments.features)
{%- endif %}
    _manifest(arguments.out, model_file)
    print(f"wrote {model_file}")


if __name__ == "__main__":
    main()
