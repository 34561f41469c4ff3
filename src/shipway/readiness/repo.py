"""Model-repo evidence: model.yaml, the CI pipeline's steps (through the Makefile), and the README."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipway.readiness.model import Finding, failed, passed

GITHUB_WORKFLOWS = Path(".github") / "workflows"
GITLAB_CI = Path(".gitlab-ci.yml")
ROAD_TARGETS = ("test", "train", "evaluate", "gate", "push")
_MAKE_VARIABLE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|\+)?=\s*(.*)$")
_MAKE_RULE = re.compile(r"^([A-Za-z0-9_.%/-]+(?:\s+[A-Za-z0-9_.%/-]+)*)\s*:(?!=)")
_MAKE_REFERENCE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]")
_CREDENTIAL_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|ACCESS_KEY)", re.IGNORECASE)
_SECRET_REFERENCE = re.compile(r"\$\{\{\s*(secrets|vars)\.[A-Za-z0-9_]+\s*\}\}|\$\{\{\s*github\.token\s*\}\}|^\$")
_SECRETS_USED = re.compile(r"secrets\.([A-Za-z0-9_]+)|\$\{?([A-Z][A-Z0-9_]*(?:TOKEN|PASSWORD|SECRET))\}?")


@dataclass(frozen=True)
class Step:
    """One command the pipeline runs, with make targets expanded to their recipes."""

    job: str
    command: str
    resolved: str


@dataclass
class Makefile:
    """A Makefile's variables and rule recipes, read well enough to follow `make TARGET`."""

    variables: dict[str, str] = field(default_factory=dict)
    recipes: dict[str, list[str]] = field(default_factory=dict)
    prerequisites: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Makefile:
        """Read variables and recipes; continuation lines are joined."""
        makefile = cls()
        current: list[str] | None = None
        for line in text.replace("\\\n", " ").splitlines():
            if line.startswith("\t"):
                if current is not None:
                    current.append(line.strip())
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            variable = _MAKE_VARIABLE.match(line)
            if variable:
                makefile.variables.setdefault(variable[1], variable[2].strip())
                current = None
                continue
            rule = _MAKE_RULE.match(line)
            if rule and not rule[1].startswith("."):
                current = []
                needs = line[rule.end():].split("#", 1)[0].split(";", 1)[0].split()
                for target in rule[1].split():
                    makefile.recipes[target] = current
                    makefile.prerequisites[target] = needs
            else:
                current = None
        return makefile

    def expand(self, text: str, depth: int = 0) -> str:
        """Substitute $(VAR) references with their definitions, a few levels deep."""
        if depth > 5:
            return text
        expanded = _MAKE_REFERENCE.sub(lambda m: self.variables.get(m[1], m[0]), text)
        return expanded if expanded == text else self.expand(expanded, depth + 1)

    def resolve(self, command: str, depth: int = 0) -> str:
        """The command with every `make TARGET ...` line followed by the targets' expanded recipes."""
        lines = [command]
        for line in command.splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            for index, word in enumerate(words):
                if word not in ("make", "$(MAKE)") or depth > 3:
                    continue
                targets = [w for w in words[index + 1:] if not w.startswith("-") and "=" not in w]
                for target in targets:
                    if target in ("&&", ";", "|", "||"):
                        break
                    lines += self._target(target, depth + 1)
        return "\n".join(lines)

    def _target(self, target: str, depth: int) -> list[str]:
        """A target's prerequisites' commands, then its own, as make would run them."""
        if depth > 4:
            return []
        lines = [line for needed in self.prerequisites.get(target, []) for line in self._target(needed, depth + 1)]
        return lines + [self.resolve(self.expand(recipe.lstrip("@")), depth) for recipe in self.recipes.get(target, [])]


@dataclass
class ModelRepo:
    """What a model repository shows: its model.yaml, pipeline steps, Makefile and README."""

    path: Path
    model: dict[str, Any] | None
    model_problem: str
    ci_file: str
    steps: list[Step]
    credentials: dict[str, str]
    secrets_used: list[str]
    makefile: Makefile
    readme: str

    @property
    def name(self) -> str:
        """How the repo is named in evidence."""
        return f"model-repo:{self.path.name}"

    def value(self, *keys: str) -> Any:
        """A nested model.yaml value, or None where any level is missing or not a mapping."""
        value: Any = self.model
        for key in keys:
            if not isinstance(value, dict):
                return None
            # ModelSpec takes camelCase aliases and snake_case names alike.
            value = value.get(key, value.get(_camel(key)))
        return value

    def step_index(self, pattern: str) -> int | None:
        """The first step whose resolved command matches the pattern."""
        regex = re.compile(pattern)
        return next((index for index, step in enumerate(self.steps) if regex.search(step.resolved)), None)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _read_yaml(path: Path) -> tuple[Any, str]:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), ""
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return None, f"{path.name} cannot be read: {str(error).splitlines()[0]}"


def _load_model(path: Path) -> tuple[dict[str, Any] | None, str]:
    """model.yaml as a mapping, checked against ModelSpec when that model is available."""
    if not path.is_file():
        return None, "no model.yaml"
    data, problem = _read_yaml(path)
    if problem:
        return None, problem
    if not isinstance(data, dict):
        return None, "model.yaml is not a mapping"
    try:
        from shipway.spec import load_model_spec  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        # Without ModelSpec (issue 4) the fields are still read, defensively.
        return data, ""
    from shipway.errors import SpecError

    try:
        load_model_spec(path)
    except SpecError as error:
        return data, f"model.yaml does not validate: {str(error).splitlines()[0]}"
    return data, ""


def _merge_env(env: dict[str, str], new: dict[Any, Any]) -> None:
    """Add variables; a plain value already seen is kept, so another file's secret reference cannot mask it."""
    for key, value in new.items():
        key, value = str(key), str(value)
        if key in env and not _SECRET_REFERENCE.search(env[key].strip()):
            continue
        env[key] = value


def _github_steps(document: Any) -> tuple[list[tuple[str, str]], dict[str, str]]:
    steps: list[tuple[str, str]] = []
    env: dict[str, str] = {}
    if not isinstance(document, dict):
        return steps, env
    _merge_env(env, document.get("env") or {})
    for job_name, job in (document.get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        _merge_env(env, job.get("env") or {})
        for step in job.get("steps") or []:
            if isinstance(step, dict):
                _merge_env(env, step.get("env") or {})
                if isinstance(step.get("run"), str):
                    steps.append((str(job_name), step["run"]))
    return steps, env


def _gitlab_steps(document: Any) -> tuple[list[tuple[str, str]], dict[str, str]]:
    steps: list[tuple[str, str]] = []
    env: dict[str, str] = {}
    if not isinstance(document, dict):
        return steps, env
    _merge_env(env, document.get("variables") or {})
    for job_name, job in document.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        _merge_env(env, job.get("variables") or {})
        script = job["script"]
        for line in [script] if isinstance(script, str) else script or []:
            steps.append((str(job_name), str(line)))
    return steps, env


def load_repo(path: Path) -> ModelRepo:
    """Read what a model repo shows; missing parts are recorded, never raised."""
    model, model_problem = _load_model(path / "model.yaml")
    makefile_path = path / "Makefile"
    makefile = Makefile.parse(makefile_path.read_text(encoding="utf-8")) if makefile_path.is_file() else Makefile()
    raw_steps: list[tuple[str, str]] = []
    env: dict[str, str] = {}
    ci_files = sorted((path / GITHUB_WORKFLOWS).glob("*.y*ml")) if (path / GITHUB_WORKFLOWS).is_dir() else []
    ci_text = ""
    for workflow in ci_files:
        document, _ = _read_yaml(workflow)
        found, found_env = _github_steps(document)
        raw_steps += found
        _merge_env(env, found_env)
        ci_text += workflow.read_text(encoding="utf-8")
    if (path / GITLAB_CI).is_file():
        ci_files.append(path / GITLAB_CI)
        document, _ = _read_yaml(path / GITLAB_CI)
        found, found_env = _gitlab_steps(document)
        raw_steps += found
        _merge_env(env, found_env)
        ci_text += (path / GITLAB_CI).read_text(encoding="utf-8")
    steps = [Step(job, command, makefile.resolve(command)) for job, command in raw_steps]
    credentials = {key: value for key, value in env.items() if _CREDENTIAL_NAME.search(key)}
    used = sorted({a or b for a, b in _SECRETS_USED.findall(ci_text)})
    readme_path = path / "README.md"
    return ModelRepo(
        path=path,
        model=model,
        model_problem=model_problem,
        ci_file=", ".join(str(f.relative_to(path)) for f in ci_files),
        steps=steps,
        credentials=credentials,
        secrets_used=used,
        makefile=makefile,
        readme=readme_path.read_text(encoding="utf-8") if readme_path.is_file() else "",
    )


RepoEvaluator = Callable[[ModelRepo], Finding]

_TEST = r"\bpytest\b|\bmake\s+test\b"
_TRAIN = r"\btrain\b"
_PUSH = r"\bshipway\s+model\s+push\b|\boras\s+push\b"
_GATE = r"\bshipway\s+gate\b"
_PROMOTE = r"\bshipway\s+promote\b"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _command_of(repo: ModelRepo, index: int, pattern: str) -> str:
    """The step's own command and the line of its expansion that matched, for evidence."""
    step = repo.steps[index]
    matching = next((line for line in step.resolved.splitlines() if re.search(pattern, line)), step.command)
    own, matched = " ".join(_first_line(step.command).split()), " ".join(matching.split())
    return f"`{own}`" if matched == own else f"`{own}` -> `{matched}`"


def _cicd_pipeline(repo: ModelRepo) -> Finding:
    if not repo.steps:
        return failed("no CI pipeline (.github/workflows/*.yml or .gitlab-ci.yml) with commands")
    test, train = repo.step_index(_TEST), repo.step_index(_TRAIN)
    if test is None:
        return failed(f"{repo.ci_file} runs no tests")
    if train is None:
        return failed(f"{repo.ci_file} does not train the model")
    if train < test:
        return failed(f"{repo.ci_file} trains before it tests")
    return passed(f"{repo.ci_file}: tests {_command_of(repo, test, _TEST)}, then trains "
                  f"{_command_of(repo, train, _TRAIN)}")


def _cicd_versioned_artifacts(repo: ModelRepo) -> Finding:
    if repo.model is None or repo.model_problem:
        return failed(repo.model_problem or "no model.yaml")
    version, artifact = repo.value("version"), repo.value("artifact")
    if not version:
        return failed("model.yaml has no version")
    if not isinstance(artifact, str) or not artifact.startswith("oci://"):
        return failed(f"model.yaml artifact {artifact!r} is not an oci:// reference")
    push = repo.step_index(_PUSH)
    if push is None:
        return failed(f"model.yaml names {artifact}, but CI never pushes the model")
    return passed(f"model.yaml version {version}, artifact {artifact}; CI pushes {_command_of(repo, push, _PUSH)}")


def _gitops_promotion(repo: ModelRepo) -> Finding:
    promotes = [index for index, step in enumerate(repo.steps) if re.search(_PROMOTE, step.resolved)]
    if not promotes:
        return failed("CI never runs `shipway promote`: deployments do not go through the GitOps repo")
    environments = sorted({env for index in promotes
                           for env in re.findall(r"--env\s+(\S+)", repo.steps[index].resolved)})
    return passed(f"CI promotes with `shipway promote` to {', '.join(environments) or 'the GitOps repo'}")


def _gates_statistical(repo: ModelRepo) -> Finding:
    gate = repo.step_index(_GATE)
    if gate is None:
        return failed("CI never runs `shipway gate`: nothing stops a worse model")
    push = repo.step_index(_PUSH)
    if push is not None and push < gate:
        return failed("CI pushes the model before `shipway gate` decides")
    command = repo.steps[gate].resolved
    flag = re.search(r"--confidence\s+([0-9.]+)", command)
    confidence = flag[1] if flag else repo.value("gate", "confidence")
    if confidence is None:
        return failed("`shipway gate` runs with no confidence level (flag or model.yaml gate.confidence)")
    metrics = re.findall(r"--metric\s+(\S+)", command) or repo.value("gate", "metrics") or []
    return passed(f"{_command_of(repo, gate, _GATE)} before the push, metric {', '.join(map(str, metrics)) or '?'}"
                  f" at confidence {confidence}")


def _gates_holdout(repo: ModelRepo) -> Finding:
    gate = repo.step_index(_GATE)
    if gate is None:
        return failed("no `shipway gate` step, so no holdout comparison feeds a decision")
    for index in range(gate):
        step = repo.steps[index]
        for line in step.resolved.splitlines():
            if "evaluate" in line and "candidate" in line and "production" in line:
                return passed(f"`{_first_line(step.command)}` -> `{' '.join(line.split())}` before the gate")
    return failed("no step before the gate scores the candidate and the production model together")


def _observability_model_slos(repo: ModelRepo) -> Finding:
    if repo.model is None or repo.model_problem:
        return failed(repo.model_problem or "no model.yaml")
    # In ModelSpec an absent drift or accuracy section turns that monitor off; latency and
    # errors are always measured by the sidecar, against the platform SLOs unless overridden.
    off = [f"{section} (its monitoring is off)" for section in ("drift", "accuracy")
           if not isinstance(repo.value(section), dict)]
    if off:
        return failed(f"model.yaml has no {' or '.join(off)}")
    features = repo.value("drift", "features") or []
    floor = repo.value("accuracy", "floor")
    latency, errors = repo.value("slo", "latency_p99_ms"), repo.value("slo", "error_rate")
    return passed(
        f"model.yaml watches drift on {f'{len(features)} features' if features else 'every profiled feature'}, "
        f"accuracy {f'floor {floor}' if floor is not None else 'at the platform floor'}, "
        f"{f'p99 {latency} ms' if latency is not None else 'p99 at the platform SLO'} and "
        f"{f'error rate {errors}' if errors is not None else 'errors at the platform SLO'}")


def _rollouts_progressive(repo: ModelRepo) -> Finding:
    if repo.model is None or repo.model_problem:
        return failed(repo.model_problem or "no model.yaml")
    strategy = repo.value("rollout", "strategy")
    if strategy in ("canary", "blue-green"):
        return passed(f"model.yaml rollout.strategy {strategy}")
    return failed(f"model.yaml rollout.strategy is {strategy!r}: the model is replaced all at once")


def _tenancy_secrets(repo: ModelRepo) -> Finding:
    if not repo.steps:
        return failed("no CI pipeline to inspect")
    literal = sorted(key for key, value in repo.credentials.items() if not _SECRET_REFERENCE.search(value.strip()))
    if literal:
        return failed(f"{repo.ci_file} sets credentials as plain values: {', '.join(literal)}")
    if not repo.secrets_used:
        return passed(f"{repo.ci_file} holds no credentials")
    return passed(f"{repo.ci_file} reads credentials from CI secrets: {', '.join(repo.secrets_used)}")


def _selfservice_scaffold(repo: ModelRepo) -> Finding:
    missing = [] if repo.model is not None else ["model.yaml"]
    missing += [f"make {target}" for target in ROAD_TARGETS if target not in repo.makefile.recipes]
    if not repo.steps:
        missing.append("a CI pipeline")
    if missing:
        return failed(f"the paved road is incomplete: no {', '.join(missing)}")
    return passed(f"model.yaml, {repo.ci_file} and make targets {', '.join(ROAD_TARGETS)}: "
                  "the same road locally and in CI")


def _selfservice_docs(repo: ModelRepo) -> Finding:
    if not repo.readme.strip():
        return failed("no README.md")
    if not repo.steps:
        # Without a pipeline there is no road to document, and any README would tick the box.
        return failed("no CI pipeline, so README.md documents no road to production")
    used = sorted({word for step in repo.steps
                   for word in re.findall(r"\bmake\s+(?:-\S+\s+)*([a-z][a-z0-9-]*)", step.command)
                   if word in ROAD_TARGETS or word.startswith("promote")})
    undocumented = [target for target in used if f"make {target}" not in repo.readme]
    if undocumented:
        return failed(f"README.md does not mention {', '.join(f'make {t}' for t in undocumented)}, which CI runs")
    return passed(f"README.md ({len(repo.readme.splitlines())} lines) documents every road step CI runs: "
                  f"{', '.join(f'make {t}' for t in used) or '(no make targets)'}")


EVALUATORS: dict[str, RepoEvaluator] = {
    "cicd-pipeline": _cicd_pipeline,
    "cicd-versioned-artifacts": _cicd_versioned_artifacts,
    "gitops-promotion": _gitops_promotion,
    "gates-statistical": _gates_statistical,
    "gates-holdout": _gates_holdout,
    "observability-model-slos": _observability_model_slos,
    "rollouts-progressive": _rollouts_progressive,
    "tenancy-secrets": _tenancy_secrets,
    "selfservice-scaffold": _selfservice_scaffold,
    "selfservice-docs": _selfservice_docs,
}
