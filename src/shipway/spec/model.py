"""The ModelSpec: what a model repo's model.yaml declares to the platform."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from shipway.spec.base import DnsLabel, Duration, Located, Quantity, Spec, quantity_value, raise_all
from shipway.spec.blueprint import CanaryStep

API_VERSION = "shipway.dev/v1alpha1"
# The sidecar owns these ports in every model pod; a runtime must listen elsewhere.
SIDECAR_PORT = 8090
SIDECAR_METRICS_PORT = 9091
SIDECAR_FEEDBACK_PORT = 9092
RESERVED_PORTS = (SIDECAR_PORT, SIDECAR_METRICS_PORT, SIDECAR_FEEDBACK_PORT)
# The drift reference profile's file name at the artifact's root, unless drift.referenceProfile names another:
# training writes it, `shipway model push` layers it, the sidecar reads it. Defined once, here.
REFERENCE_PROFILE_FILE = "reference_profile.json"
# Object names append "-preview" or "-metrics"; Service names must start with a letter.
MAX_NAME_LENGTH = 40
_MODEL_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A version is an OCI tag and a Kubernetes label value at once.
_VERSION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_ARTIFACT = re.compile(
    r"^oci://(?P<registry>[a-z0-9.-]+(:\d+)?)/(?P<repository>[a-z0-9]+([._/-]+[a-z0-9]+)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_MIG_SLICE = re.compile(r"^[1-7]g\.\d+gb$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,127}$")


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f'Got "{value}". Give a relative path inside the model artifact, '
                         'without ".." or a leading "/"')
    return value


# --- runtime ----------------------------------------------------------------------------


class RuntimeOptions(Spec):
    """Knobs every runtime takes: extra arguments and environment."""

    extra_args: list[str] = Field(default_factory=list, description="Arguments appended to the runtime's command.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables for the runtime.")

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name)]
        if bad:
            raise ValueError(f"Got environment variable names {bad}; "
                             "use letters, digits and _, not starting with a digit")
        return value


# The MLServer inference runtime class that serves each MLServer catalog runtime.
MLSERVER_IMPLEMENTATIONS = {"sklearn": "mlserver_sklearn.SKLearnModel", "xgboost": "mlserver_xgboost.XGBoostModel"}


class MlserverRuntime(RuntimeOptions):
    """A tabular model served by MLServer from the catalog (sklearn or xgboost)."""

    name: Literal["sklearn", "xgboost"] = Field(description="Catalog runtime.")
    model_file: str | None = Field(
        None, description="Model file inside the artifact; defaults to model.joblib (sklearn) or model.json (xgboost)."
    )

    @field_validator("model_file")
    @classmethod
    def _model_file(cls, value: str | None) -> str | None:
        return value if value is None else _relative_path(value)

    @property
    def effective_model_file(self) -> str:
        """The model file MLServer loads."""
        return self.model_file or ("model.joblib" if self.name == "sklearn" else "model.json")


class TritonRuntime(RuntimeOptions):
    """A model served by NVIDIA Triton from the catalog."""

    name: Literal["triton"] = Field(description="Catalog runtime.")
    model_repository: str = Field(
        "model_repository", description="Triton model repository folder inside the artifact."
    )

    @field_validator("model_repository")
    @classmethod
    def _model_repository(cls, value: str) -> str:
        return _relative_path(value)


class VllmRuntime(RuntimeOptions):
    """A large language model served by vLLM from the catalog (OpenAI-compatible API)."""

    name: Literal["vllm"] = Field(description="Catalog runtime.")
    model_path: str = Field(".", description="Folder of the weights inside the artifact; . is the artifact root.")
    max_model_len: int | None = Field(None, ge=128, le=1_048_576, description="Context length cap (--max-model-len).")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may take (--gpu-memory-utilization)."
    )
    tensor_parallel_size: int = Field(1, ge=1, le=16, description="GPUs one replica shards the model over.")

    @field_validator("model_path")
    @classmethod
    def _model_path(cls, value: str) -> str:
        return value if value == "." else _relative_path(value)


class CustomRuntime(RuntimeOptions):
    """A model server image of the team's own, outside the catalog."""

    name: Literal["custom"] = Field(description="Runtime variant.")
    image: str = Field(min_length=1, pattern=r"^[^\s]+[:@][^\s]+$", description="Image with a tag or digest.")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port the server listens on.")
    protocol: Literal["v2", "openai"] = Field("v2", description="Inference protocol spoken on the port.")
    command: list[str] = Field(default_factory=list, description="Command; the image's entrypoint when empty.")
    args: list[str] = Field(default_factory=list, description="Arguments; /models/model holds the artifact.")
    health_path: str = Field("/v2/health/ready", pattern=r"^/", description="HTTP path answering 200 when ready.")


RuntimeVariant = Annotated[
    MlserverRuntime | TritonRuntime | VllmRuntime | CustomRuntime, Field(discriminator="name")
]
Runtime = Annotated[
    RuntimeVariant,
    # `runtime: sklearn` is the short form of `runtime: {name: sklearn}`.
    BeforeValidator(lambda value: {"name": value} if isinstance(value, str) else value,
                    json_schema_input_type=Literal["sklearn", "xgboost", "triton", "vllm"] | RuntimeVariant),
]


# --- resources and scaling --------------------------------------------------------------


class Resources(Spec):
    """What one replica asks for; limits default to the requests (Guaranteed QoS)."""

    cpu: Quantity = Field("1", description="CPU request of the runtime container.")
    memory: Quantity = Field("2Gi", description="Memory request of the runtime container.")
    cpu_limit: Quantity | None = Field(None, description="CPU limit; defaults to cpu.")
    memory_limit: Quantity | None = Field(None, description="Memory limit; defaults to memory.")
    gpus: int = Field(0, ge=0, le=16, description="GPUs (or MIG slices) per replica.")
    gpu_pool: DnsLabel | None = Field(
        None, description="GPU pool to run on; defaults to the team's only GPU pool when it has one."
    )
    mig_profile: str | None = Field(
        None, description="MIG slice per GPU, e.g. 1g.10gb, on a MIG-partitioned pool (nvidia.com/mig-<slice>)."
    )
    model_storage: Quantity = Field(
        "10Gi", description="Size limit of the ephemeral volume the artifact is pulled into."
    )

    @field_validator("mig_profile")
    @classmethod
    def _mig_profile(cls, value: str | None) -> str | None:
        if value is not None and not _MIG_SLICE.match(value):
            raise ValueError(f'Got "{value}". A MIG slice looks like "1g.10gb" or "3g.40gb" '
                             '(without the "all-" prefix)')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Resources:
        problems = []
        pairs = ((self.cpu_limit, self.cpu, "cpuLimit"), (self.memory_limit, self.memory, "memoryLimit"))
        for limit, request, key in pairs:
            if limit is not None and quantity_value(limit) < quantity_value(request):
                requested = "cpu" if key == "cpuLimit" else "memory"
                problems.append(Located((key,), f"{key} {limit} is below the {requested} request {request}",
                                        f"raise {key} to at least {request}, or drop it to use the request"))
        for key, value in (("gpuPool", self.gpu_pool), ("migProfile", self.mig_profile)):
            if value is not None and self.gpus == 0:
                problems.append(Located((key,), f"{key} is {value} but gpus is 0",
                                        f"set gpus to 1 or more, or remove {key}"))
        raise_all(problems)
        return self


class Replicas(Spec):
    """How many replicas serve; an autoscaler runs between the bounds when they differ."""

    min: int = Field(2, ge=1, le=1000, description="Fewest replicas (also the PodDisruptionBudget's basis).")
    max: int = Field(2, ge=1, le=1000, description="Most replicas; above min, a HorizontalPodAutoscaler scales on CPU.")
    target_cpu_utilization: int = Field(70, ge=10, le=100, description="Average CPU percent the autoscaler aims at.")

    @model_validator(mode="after")
    def _bounds(self) -> Replicas:
        if self.min > self.max:
            raise Located(("min",), f"min {self.min} is greater than max {self.max}", "raise max or lower min")
        return self


# --- rollout ----------------------------------------------------------------------------


class CanaryRollout(Spec):
    """Shift traffic in steps while the platform's circuit breakers compare canary and stable."""

    strategy: Literal["canary"] = Field(description="Rollout variant.")
    steps: list[CanaryStep] | None = Field(
        None, min_length=1, description="Weights and pauses; the platform's default steps when absent."
    )
    analysis: bool = Field(True, description="Run the circuit-breaker analysis during the canary.")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[CanaryStep] | None) -> list[CanaryStep] | None:
        if steps is None:
            return steps
        problems = [
            Located((index, "weight"), f"step weight {step.weight} does not rise above the previous {before.weight}",
                    "list weights in increasing order, e.g. 10, 50")
            for index, (before, step) in enumerate(zip(steps, steps[1:]), start=1)
            if step.weight <= before.weight
        ]
        raise_all(problems)
        return steps


class BlueGreenRollout(Spec):
    """Start the new version beside the old behind a preview Service, then switch all traffic at once."""

    strategy: Literal["blue-green"] = Field(description="Rollout variant.")
    pre_promotion_analysis: bool = Field(True, description="Run the circuit breakers against the preview first.")
    auto_promote: bool = Field(True, description="Switch traffic without a manual promote once analysis passes.")
    auto_promotion_seconds: int | None = Field(
        None, ge=1, le=86_400, description="Wait this long with the preview ready before switching."
    )
    scale_down_delay_seconds: int = Field(30, ge=0, le=86_400, description="Keep the old version this long after.")

    @model_validator(mode="after")
    def _promotion(self) -> BlueGreenRollout:
        if self.auto_promotion_seconds is not None and not self.auto_promote:
            raise Located(("autoPromotionSeconds",), "autoPromotionSeconds is set but autoPromote is false",
                          "set autoPromote: true, or remove autoPromotionSeconds")
        return self


class NoRollout(Spec):
    """Replace replicas with a plain rolling update, without analysis."""

    strategy: Literal["none"] = Field(description="Rollout variant.")


Rollout = Annotated[CanaryRollout | BlueGreenRollout | NoRollout, Field(discriminator="strategy")]


# --- observability and gate -------------------------------------------------------------


class SloOverrides(Spec):
    """This model's SLOs; each absent one takes the platform default."""

    latency_p99_ms: float | None = Field(None, gt=0, le=600_000, description="p99 latency ceiling, milliseconds.")
    error_rate: float | None = Field(None, gt=0, lt=1, description="Ceiling on the fraction of failed requests.")


class Drift(Spec):
    """Feature drift monitoring by the sidecar against the reference profile saved at training."""

    features: list[str] = Field(default_factory=list, description="Features to watch; every profiled one when empty.")
    threshold: float | None = Field(None, gt=0, le=10, description="PSI bound; the platform's driftPsi when absent.")
    reference_profile: str = Field(
        REFERENCE_PROFILE_FILE,
        description="Reference profile file inside the artifact (shipway drift profile), relative to its root.",
    )
    window_rows: int = Field(2000, ge=50, le=1_000_000, description="Rows in the sliding drift window.")
    min_rows: int = Field(500, ge=1, le=1_000_000, description="Rows needed before drift may alert.")

    @field_validator("reference_profile")
    @classmethod
    def _reference_profile(cls, value: str) -> str:
        return _relative_path(value)

    @model_validator(mode="after")
    def _rows(self) -> Drift:
        if self.min_rows > self.window_rows:
            raise Located(("minRows",), f"minRows {self.min_rows} exceeds windowRows {self.window_rows}, "
                          "so drift would never be trusted", "lower minRows or raise windowRows")
        return self


class OnlineAccuracy(Spec):
    """Accuracy from delayed labels posted to the sidecar's /feedback endpoint."""

    label_delay: Duration = Field("1h", description="How late labels arrive after the prediction.")
    floor: float | None = Field(
        None, gt=0, le=1, description="Accuracy floor; the platform's accuracyFloor when absent."
    )
    window: int = Field(500, ge=10, le=1_000_000, description="Labels in the rolling accuracy.")
    min_labels: int = Field(20, ge=1, le=1_000_000, description="Labels needed before accuracy is reported.")

    @model_validator(mode="after")
    def _labels(self) -> OnlineAccuracy:
        if self.min_labels > self.window:
            raise Located(("minLabels",), f"minLabels {self.min_labels} exceeds window {self.window}",
                          "lower minLabels or raise window")
        return self


class Gate(Spec):
    """The validation gate `shipway gate` applies before a version may ship."""

    metrics: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(
        default_factory=lambda: ["accuracy"], min_length=1, description="Metrics `shipway gate --model` judges: accuracy, f1, roc_auc (or auc), log_loss (or logloss), rmse, mae."
    )
    margin: float = Field(0.0, ge=0, le=1, description="How much worse than production the candidate may be.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence of the bootstrap interval.")
    slices: list[Annotated[str, Field(pattern=_COLUMN.pattern)]] = Field(
        default_factory=list, description="Columns whose every value must not regress."
    )
    classes: list[Annotated[str, BeforeValidator(str)]] = Field(
        default_factory=list, description="The classes a classification gate accepts (default: the labels' own); "
        "a label or predicted label outside them is bad input."
    )
    positive_class: Annotated[str, BeforeValidator(str)] | None = Field(
        None, description="The positive class of a binary gate (ROC AUC, F1, log loss). Default: the larger of "
        "numeric classes; for text, the one named yes/true/positive/1 (else required)."
    )


# --- retraining -------------------------------------------------------------------------

RETRAIN_SIGNALS = ("drift", "accuracy")


class GithubRepository(Spec):
    """A GitHub repository whose retraining workflow a `repository_dispatch` (event shipway-retrain) starts."""

    provider: Literal["github"] = Field(description="Repository host variant.")
    repository: str = Field(description="owner/name on GitHub.")

    @field_validator("repository")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", value):
            raise ValueError(f'Got "{value}". A GitHub repository is owner/name, e.g. acme/churn-model')
        return value


class GitlabProject(Spec):
    """A GitLab project whose retraining pipeline a pipeline trigger starts."""

    provider: Literal["gitlab"] = Field(description="Repository host variant.")
    project: str = Field(description="Project path, group/name (subgroups allowed).")
    ref: str = Field("main", min_length=1, description="Branch or tag the triggered pipeline runs on.")

    @field_validator("project")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$", value):
            raise ValueError(f'Got "{value}". A GitLab project is its path, e.g. ml-team/churn-model')
        return value


class Retrain(Spec):
    """What the platform does on sustained drift or an accuracy drop: start this repository's retraining."""

    signals: list[Literal["drift", "accuracy"]] = Field(
        default_factory=lambda: list(RETRAIN_SIGNALS), min_length=1,
        description="Alerts that start retraining: drift (feature drift), accuracy (online accuracy below floor).")
    repository: GithubRepository | GitlabProject = Field(
        discriminator="provider", description="The model repository whose retraining pipeline is started.")
    cooldown: Duration = Field("24h", description="At most one retraining started per model within this time.")


# --- the spec ---------------------------------------------------------------------------


class ModelSpec(Spec):
    """One model's contract with the platform: what it serves, how it ships, what it must meet."""

    api_version: Literal["shipway.dev/v1alpha1"] = Field(API_VERSION, description="Schema version.")
    kind: Literal["Model"] = Field("Model", description="Document kind.")
    name: str = Field(description=f"Model name: lowercase letters, digits and -, at most {MAX_NAME_LENGTH}.")
    team: str = Field(description="Owning team, as the platform blueprint names it.")
    description: str = Field("", max_length=500, description="Free text shown in reports.")
    version: str = Field(description="Model version: the artifact tag and the `version` metric label.")
    runtime: Runtime = Field(description="Serving runtime: sklearn, xgboost, triton, vllm, or a custom image.")
    artifact: str | None = Field(
        None, description="OCI artifact: oci://REGISTRY/REPOSITORY, tagged with version unless a tag or "
                          "@sha256 digest is given; defaults to the platform registry's <team>/<name>.",
    )
    artifact_credentials_secret: DnsLabel | None = Field(
        None, description="Secret with username and password keys for pulling the artifact."
    )
    resources: Resources = Field(default_factory=Resources, description="Requests, limits and GPUs per replica.")
    replicas: Replicas = Field(default_factory=Replicas, description="Replica bounds.")
    rollout: Rollout | None = Field(None, description="Rollout strategy; the platform default when absent.")
    slo: SloOverrides = Field(default_factory=SloOverrides, description="SLO overrides.")
    drift: Drift | None = Field(None, description="Drift monitoring; off when absent.")
    accuracy: OnlineAccuracy | None = Field(None, description="Online accuracy from delayed labels; off when absent.")
    gate: Gate = Field(default_factory=Gate, description="Validation gate settings.")
    retrain: Retrain | None = Field(None, description="Retraining started by drift or accuracy alerts; off when absent.")

    @field_validator("name", "team")
    @classmethod
    def _names(cls, value: str) -> str:
        if len(value) > MAX_NAME_LENGTH or not _MODEL_NAME.match(value):
            raise ValueError(f'Got "{value}". Use lowercase letters, digits and "-", starting with a letter and '
                             f"ending with a letter or digit, at most {MAX_NAME_LENGTH} characters")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f'Got "{value}". A version is 1-63 of letters, digits, ".", "_" and "-", starting and '
                             'ending with a letter or digit (e.g. "1.4.0" or a git commit)')
        return value

    @field_validator("artifact")
    @classmethod
    def _artifact(cls, value: str | None) -> str | None:
        if value is not None and not _ARTIFACT.match(value):
            raise ValueError(f'Got "{value}". An artifact looks like oci://registry.example.com/team/model, '
                             "optionally with :TAG or @sha256:DIGEST")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ModelSpec:
        problems: list[Located] = []
        tag = self.artifact_tag
        if tag is not None and tag != self.version:
            problems.append(Located(("artifact",), f"artifact tag {tag} differs from version {self.version}",
                                    "drop the tag so the artifact follows version, or make them equal"))
        runtime = self.runtime
        if isinstance(runtime, CustomRuntime) and runtime.port in RESERVED_PORTS:
            problems.append(Located(("runtime", "port"), f"port {runtime.port} is the sidecar's",
                                    f"use a port other than {', '.join(map(str, RESERVED_PORTS))}"))
        if isinstance(runtime, VllmRuntime) and runtime.tensor_parallel_size > max(self.resources.gpus, 1):
            problems.append(Located(("runtime", "tensorParallelSize"),
                                    f"tensorParallelSize {runtime.tensor_parallel_size} exceeds resources.gpus "
                                    f"{self.resources.gpus}", "shard over at most the GPUs one replica has"))
        if self.retrain is not None:
            for signal, watched in (("drift", self.drift), ("accuracy", self.accuracy)):
                if signal in self.retrain.signals and watched is None:
                    problems.append(Located(("retrain", "signals"), f"retrain on {signal} but {signal} is not "
                                            "monitored", f"add a {signal}: section, or drop {signal} from signals"))
        raise_all(problems)
        return self

    @property
    def artifact_tag(self) -> str | None:
        """The tag written in `artifact`, if any."""
        match = _ARTIFACT.match(self.artifact or "")
        return match["tag"] if match else None

    @property
    def strategy(self) -> str | None:
        """The rollout strategy the model names, or None for the platform default."""
        return self.rollout.strategy if self.rollout is not None else None

    def with_version(self, version: str) -> ModelSpec:
        """The same spec at another version (promote --version), validated again."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_unset=True)
        data["version"] = version
        return ModelSpec.model_validate(data)


__all__ = ["ModelSpec", "REFERENCE_PROFILE_FILE", "SIDECAR_PORT", "SIDECAR_METRICS_PORT", "SIDECAR_FEEDBACK_PORT"]
