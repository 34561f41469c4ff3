"""The baked repo's road meets the platform: drift profile file, real shipway commands, vLLM weights layout."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_contract import check_command, shipway_commands

from shipway.artifacts.layout import DRIFT_PROFILE_MEDIA_TYPE, ModelMetadata
from shipway.artifacts.metadata import describe_model
from shipway.artifacts.push import _drift_profile_title, collect_files, plan_layers
from shipway.cli.template import CI_SYSTEMS, RUNTIMES, bake
from shipway.delivery.render import MODEL_DIR, render
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint, load_model_spec
from shipway.spec.model import REFERENCE_PROFILE_FILE

ROOT = Path(__file__).resolve().parents[3]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(repo: Path, tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a make target of the baked repo with this checkout's real `shipway` app."""
    shim = tmp_path / "shipway_cli.py"
    shim.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'src')!r})\nfrom shipway.cli import app\napp()\n")
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    variables = [f"PYTHON={sys.executable}", f"SHIPWAY={sys.executable} {shim}"]
    return subprocess.run(["make", *arguments, *variables], cwd=repo, env=environment, capture_output=True,
                          text=True, timeout=300)


def _pod(repo: Path) -> dict:
    spec = load_model_spec(repo / "model.yaml")
    profile = platform_profile(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))
    if spec.resources.gpus:
        spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={"gpu_pool": "gpu-small"}),
                                       "replicas": spec.replicas.model_copy(update={"min": 1, "max": 1})})
    return render(spec.with_version("abc1234"), profile, "staging")[0]["spec"]["template"]["spec"]


@pytest.mark.slow
@needs_make
def test_the_file_the_sidecar_reads_is_the_file_pushed_as_the_drift_profile_layer(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn (dev extra) is not installed")
    from shipway.drift.profile import ReferenceProfile

    repo = bake(tmp_path, "fraud-score", "fraud", runtime="sklearn")
    done = _make(repo, tmp_path, "train")
    assert done.returncode == 0, f"make train:\n{done.stdout}\n{done.stderr}"
    artifact = repo / "build" / "candidate"

    [sidecar] = [c for c in _pod(repo)["containers"] if c["name"] == "sidecar"]
    reference = sidecar["command"][sidecar["command"].index("--reference") + 1]
    inside = reference.removeprefix(f"{MODEL_DIR}/")
    assert inside == REFERENCE_PROFILE_FILE

    # What `make push` does: `shipway model push build/candidate ... --model-yaml model.yaml`.
    metadata, drift_profile = describe_model(artifact, repo / "model.yaml", ModelMetadata(), "abc1234")
    assert (metadata.name, metadata.version, metadata.framework) == ("fraud-score", "abc1234", "sklearn")
    files = collect_files(artifact)
    title = _drift_profile_title(artifact, files, drift_profile)
    layers = plan_layers(files, title, tmp_path)
    [drift_layer] = [layer for layer in layers if layer.media_type == DRIFT_PROFILE_MEDIA_TYPE]
    assert drift_layer.title == inside and drift_layer.path == artifact / inside

    # And the sidecar can load it: a real profile of every feature the spec watches.
    profile = ReferenceProfile.load(artifact / inside)
    watched = load_model_spec(repo / "model.yaml").drift.features
    assert set(watched) <= set(profile.feature_names) and len(profile.feature_names) == 6


def _ci_shell(repo: Path, ci: str) -> list[str]:
    """The shell each CI job runs, in order."""
    if ci == "github":
        workflow = yaml.safe_load((repo / ".github/workflows/model.yml").read_text())
        return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    return [line for job in pipeline.values() if isinstance(job, dict)
            for key in ("before_script", "script") for line in job.get(key, [])] + \
        [line for line in pipeline.get("default", {}).get("before_script", [])]


def _expand_make(repo: Path, shell: str) -> str:
    """Each `make TARGET VAR=...` in the shell, dry-run with SHIPWAY=shipway: the commands it would run."""
    expanded = []
    # CI expressions and variables stand for values, not commands: ${{ github.sha }}, $CI_COMMIT_SHA.
    shell = re.sub(r"\$\{\{[^}]*\}\}|\$[A-Z_]+", "value", shell)
    for match in re.finditer(r"\bmake\s+((?:-s\s+)?[^;&|\n)]*)", shell):
        words = [w for w in shlex.split(match.group(1)) if w != "-s"]
        done = subprocess.run(["make", "-n", *words, "SHIPWAY=shipway", "WEIGHTS=/weights", "GITOPS_REPO=gitops"],
                              cwd=repo, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"make -n {' '.join(words)}: {done.stderr}"
        expanded.append(done.stdout)
    return "\n".join(expanded)


@needs_make
@pytest.mark.parametrize(("ci", "runtime"), list(itertools.product(CI_SYSTEMS, RUNTIMES)))
def test_every_shipway_command_the_ci_and_makefile_run_exists_with_its_options(
    tmp_path: Path, ci: str, runtime: str
) -> None:
    repo = bake(tmp_path, "fraud-score", "fraud", runtime=runtime, ci=ci)
    shell = "\n".join(_ci_shell(repo, ci))
    targets = re.findall(r"^\.PHONY:(.*)$", (repo / "Makefile").read_text(), re.MULTILINE)[0].split()
    everything = "\n".join([shell, _expand_make(repo, shell), _expand_make(repo, "make " + " ".join(targets))])
    used = {check_command(words) for words in shipway_commands(everything)}
    expected = {"model exists", "model pull", "model push", "gate", "promote"}
    if runtime != "llm-vllm":
        expected.add("drift profile")
    assert used == expected


@pytest.mark.slow
@needs_make
def test_the_vllm_artifact_is_the_weights_folder_the_render_serves_offline(tmp_path: Path) -> None:
    repo = bake(tmp_path, "support-bot", "fraud", runtime="llm-vllm")
    weights = tmp_path / "weights"
    (weights / "tokenizer").mkdir(parents=True)
    (weights / "config.json").write_text('{"model_type": "qwen2"}')
    (weights / "model-00001-of-00001.safetensors").write_bytes(b"\0" * 64)
    (weights / "tokenizer" / "tokenizer.json").write_text("{}")
    refused = _make(repo, tmp_path, "train")
    assert refused.returncode != 0 and "WEIGHTS=/path/to/model" in refused.stderr
    done = _make(repo, tmp_path, "train", f"WEIGHTS={weights}")
    assert done.returncode == 0, f"make train:\n{done.stdout}\n{done.stderr}"

    [runtime] = [c for c in _pod(repo)["containers"] if c["name"] == "runtime"]
    assert runtime["args"][:2] == ["serve", MODEL_DIR]
    served = repo / "build" / "candidate" / runtime["args"][1].removeprefix(MODEL_DIR).lstrip("/")
    assert (served / "config.json").is_file() and (served / "model-00001-of-00001.safetensors").is_file()
    assert (served / "tokenizer" / "tokenizer.json").is_file()
    assert {e["name"]: e["value"] for e in runtime["env"]}["HF_HUB_OFFLINE"] == "1"
    assert runtime["args"][runtime["args"].index("--served-model-name") + 1] == "support-bot"
    # The repo's evaluation asks the deployment for the model by the name the render serves it under.
    assert 'SERVED_MODEL = "support-bot"' in (repo / "src/support_bot/predict.py").read_text()
    for path in repo.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".md", ""}:
            assert "huggingface.co" not in path.read_text() and "Qwen/" not in path.read_text()
