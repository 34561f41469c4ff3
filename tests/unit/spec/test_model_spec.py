"""ModelSpec: good specs load, bad ones are refused at their line and path, the JSON Schema is current."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from shipway.errors import SpecError
from shipway.spec import load_model_spec, model_json_schema, schema_text
from shipway.spec.model import BlueGreenRollout, CanaryRollout, CustomRuntime, MlserverRuntime, VllmRuntime

ROOT = Path(__file__).resolve().parents[3]
GOOD = """\
name: churn
team: fraud
version: 1.2.0
runtime: sklearn
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_minimal_spec_takes_the_defaults(tmp_path: Path) -> None:
    spec = load_model_spec(_write(tmp_path, GOOD))
    assert isinstance(spec.runtime, MlserverRuntime) and spec.runtime.effective_model_file == "model.joblib"
    assert (spec.replicas.min, spec.replicas.max, spec.resources.gpus) == (2, 2, 0)
    assert spec.rollout is None and spec.strategy is None and spec.drift is None


def test_every_section_loads(tmp_path: Path) -> None:
    spec = load_model_spec(_write(tmp_path, """\
        name: assistant
        team: llm
        description: Answers support questions
        version: "2024.11"
        runtime: {name: vllm, maxModelLen: 8192, tensorParallelSize: 2, extraArgs: [--enforce-eager]}
        artifact: oci://registry.example.com/llm/assistant@sha256:""" + "a" * 64 + """
        resources: {cpu: "8", memory: 64Gi, gpus: 2, gpuPool: h100, modelStorage: 80Gi}
        replicas: {min: 1, max: 3, targetCpuUtilization: 60}
        rollout: {strategy: canary, steps: [{weight: 5, pause: 10m}, {weight: 50}], analysis: true}
        slo: {latencyP99Ms: 4000, errorRate: 0.02}
        drift: {features: [prompt_length], threshold: 0.3, referenceProfile: profiles/reference.json}
        accuracy: {labelDelay: 2d, floor: 0.6, window: 200, minLabels: 50}
        gate: {metrics: [accuracy, f1], margin: 0.01, confidence: 0.9, slices: [topic]}
    """))
    assert isinstance(spec.runtime, VllmRuntime) and spec.runtime.tensor_parallel_size == 2
    assert isinstance(spec.rollout, CanaryRollout) and [s.pause for s in spec.rollout.steps or []] == ["10m", "2m"]
    assert spec.drift is not None and spec.drift.reference_profile == "profiles/reference.json"
    assert spec.accuracy is not None and spec.accuracy.label_delay == "2d"
    assert spec.artifact_tag is None and spec.gate.slices == ["topic"]


def test_snake_case_keys_are_accepted_as_well(tmp_path: Path) -> None:
    spec = load_model_spec(_write(tmp_path, GOOD + "rollout: {strategy: blue-green, pre_promotion_analysis: false}\n"))
    assert isinstance(spec.rollout, BlueGreenRollout) and spec.rollout.pre_promotion_analysis is False


def test_a_custom_runtime_names_its_image(tmp_path: Path) -> None:
    spec = load_model_spec(_write(tmp_path, GOOD.replace(
        "runtime: sklearn", "runtime: {name: custom, image: ghcr.io/acme/server:1.0, port: 7000, healthPath: /ready}")))
    assert isinstance(spec.runtime, CustomRuntime) and spec.runtime.port == 7000


def test_with_version_revalidates_and_keeps_the_rest(tmp_path: Path) -> None:
    spec = load_model_spec(_write(tmp_path, GOOD + "replicas: {min: 1, max: 5}\n"))
    moved = spec.with_version("abc1234")
    assert (moved.version, moved.replicas.max) == ("abc1234", 5)
    with pytest.raises(ValueError, match="version"):
        spec.with_version("not a version!")


# (case, YAML, line, path, fragment of the message)
BAD = [
    ("typo with suggestion", GOOD + "replica: {min: 1}\n", 5, "replica", 'unknown key "replica"'),
    ("missing name", GOOD.replace("name: churn\n", ""), 1, "name", "required field is missing"),
    ("name with capitals", GOOD.replace("name: churn", "name: Churn"), 1, "name", 'Got "Churn"'),
    ("name starting with a digit", GOOD.replace("name: churn", "name: 1churn"), 1, "name", "starting with a letter"),
    ("version with spaces", GOOD.replace("version: 1.2.0", "version: one two"), 3, "version", 'Got "one two"'),
    ("version read as a number", GOOD.replace("version: 1.2.0", "version: 1.2"), 3, "version", "valid string"),
    ("unknown runtime", GOOD.replace("runtime: sklearn", "runtime: sklern"), 4, "runtime", "sklern"),
    ("custom runtime without image", GOOD.replace("runtime: sklearn", "runtime: {name: custom}"), 4,
     "runtime.image", "required"),
    ("custom runtime on the sidecar port", GOOD.replace(
        "runtime: sklearn", "runtime: {name: custom, image: acme/srv:1, port: 8090}"), 4, "runtime.port",
     "sidecar"),
    ("bad quantity", GOOD + "resources:\n  memory: lots\n", 6, "resources.memory", "quantity"),
    ("limit under request", GOOD + "resources:\n  cpu: '2'\n  cpuLimit: 500m\n", 7, "resources.cpuLimit",
     "below the cpu request"),
    ("pool without gpus", GOOD + "resources:\n  gpuPool: h100\n", 6, "resources.gpuPool", "gpus is 0"),
    ("MIG profile misspelt", GOOD + "resources:\n  gpus: 1\n  migProfile: all-1g.10gb\n", 7,
     "resources.migProfile", "1g.10gb"),
    ("too many gpus", GOOD + "resources:\n  gpus: 64\n", 6, "resources.gpus", "less than or equal to 16"),
    ("min above max", GOOD + "replicas:\n  min: 5\n  max: 2\n", 6, "replicas.min", "greater than max 2"),
    ("unknown strategy", GOOD + "rollout:\n  strategy: rainbow\n", 6, "rollout", "rainbow"),
    ("canary weights falling", GOOD + "rollout:\n  strategy: canary\n  steps:\n    - {weight: 50}\n"
     "    - {weight: 10}\n", 9, "rollout.steps[1].weight", "does not rise"),
    ("canary weight over 100", GOOD + "rollout:\n  strategy: canary\n  steps:\n    - {weight: 150}\n", 8,
     "rollout.steps[0].weight", "less than or equal to 100"),
    ("bad pause", GOOD + "rollout:\n  strategy: canary\n  steps:\n    - {weight: 10, pause: soon}\n", 8,
     "rollout.steps[0].pause", "duration"),
    ("auto promotion seconds without auto promote", GOOD + "rollout:\n  strategy: blue-green\n"
     "  autoPromote: false\n  autoPromotionSeconds: 60\n", 8, "rollout.autoPromotionSeconds", "autoPromote is false"),
    ("artifact without scheme", GOOD + "artifact: registry.example.com/fraud/churn\n", 5, "artifact", "oci://"),
    ("artifact tag not the version", GOOD + "artifact: oci://registry.example.com/fraud/churn:1.0.0\n", 5,
     "artifact", "differs from version 1.2.0"),
    ("reference profile outside the artifact", GOOD + "drift:\n  referenceProfile: ../secrets.json\n", 6,
     "drift.referenceProfile", "relative path"),
    ("drift rows never trusted", GOOD + "drift:\n  windowRows: 100\n  minRows: 500\n", 7, "drift.minRows",
     "exceeds windowRows"),
    ("confidence out of range", GOOD + "gate:\n  confidence: 1.5\n", 6, "gate.confidence", "less than 1"),
    ("empty gate metrics", GOOD + "gate:\n  metrics: []\n", 6, "gate.metrics", "at least 1"),
    ("error rate as percent", GOOD + "slo:\n  errorRate: 5\n", 6, "slo.errorRate", "less than 1"),
    ("accuracy min labels over window", GOOD + "accuracy:\n  window: 10\n  minLabels: 20\n", 7,
     "accuracy.minLabels", "exceeds window"),
    ("retrain on drift that is not watched", GOOD + "retrain:\n  signals: [drift]\n"
     "  repository: {provider: github, repository: acme/churn}\n", 6, "retrain.signals", "drift is not monitored"),
    ("retrain repository without owner", GOOD + "drift: {}\nretrain:\n  signals: [drift]\n"
     "  repository: {provider: github, repository: churn}\n", 8, "retrain.repository.repository", "owner/name"),
    ("retrain on an unknown signal", GOOD + "drift: {}\nretrain:\n  signals: [latency]\n"
     "  repository: {provider: github, repository: acme/churn}\n", 7, "retrain.signals[0]", "drift"),
    ("tensor parallel over gpus", GOOD.replace("runtime: sklearn", "runtime: {name: vllm, tensorParallelSize: 4}")
     + "resources:\n  gpus: 2\n", 4, "runtime.tensorParallelSize", "exceeds resources.gpus 2"),
]


@pytest.mark.parametrize(("case", "text", "line", "path", "fragment"), BAD, ids=[case[0] for case in BAD])
def test_bad_specs_are_refused_at_their_line_and_path(
        tmp_path: Path, case: str, text: str, line: int, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as raised:
        load_model_spec(_write(tmp_path, text))
    problems = raised.value.problems
    matching = [p for p in problems if p.path == path]
    assert matching, f"{case}: no problem at {path}; got {[str(p) for p in problems]}"
    assert matching[0].line == line, f"{case}: {matching[0]}"
    assert fragment in matching[0].message or fragment in matching[0].hint, f"{case}: {matching[0]}"


def test_a_typo_gets_the_nearest_key_as_hint(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_model_spec(_write(tmp_path, GOOD + "resources:\n  gpuPol: h100\n"))
    (problem,) = raised.value.problems
    assert problem.path == "resources.gpuPol" and 'did you mean "gpuPool"?' in problem.hint
    assert str(problem).startswith(f"{tmp_path / 'model.yaml'}:6:3: resources.gpuPol: unknown key")


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_model_spec(_write(tmp_path, GOOD.replace("team: fraud", "team: Fraud") + "replicas: {min: 0}\n"))
    assert {p.path for p in raised.value.problems} == {"team", "replicas.min"}


def test_committed_schema_is_current() -> None:
    committed = ROOT / "blueprints" / "schema" / "model.schema.json"
    assert committed.read_text() == schema_text(model_json_schema()), (
        "run `shipway schema` and commit")


def test_schema_documents_every_field_and_accepts_the_short_runtime() -> None:
    schema = model_json_schema()
    missing = [f"{name}.{field}" for name, definition in {"ModelSpec": schema, **schema["$defs"]}.items()
               for field, spec in definition.get("properties", {}).items() if not spec.get("description")]
    assert not missing, f"fields without description: {missing}"
    runtime = json.dumps(schema["properties"]["runtime"])
    assert '"enum": ["sklearn", "xgboost", "triton", "vllm"]' in runtime and '"propertyName": "name"' in runtime
