"""What the gate judges: model.yaml's gate section, with the command line's options winning over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shipway.errors import Problem, SpecError
from shipway.gate.decision import GateConfig
from shipway.gate.errors import GateInputError
from shipway.gate.metrics import METRICS, metric_info

# model.yaml's gate.metrics takes any snake_case name, and its documentation says "auc";
# the gate's own names are the keys of METRICS.
METRIC_ALIASES = {"auc": "roc_auc", "logloss": "log_loss"}
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class GateOptions:
    """What the command line gave; empty or None where it gave nothing, so model.yaml's value stands."""

    metrics: tuple[str, ...] = ()
    margin: float | None = None
    min_improvement: float | None = None
    confidence: float | None = None
    slices: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    positive_class: str | None = None


@dataclass(frozen=True)
class GateSettings:
    """The settings the gate runs with, once model.yaml and the command line are merged."""

    metrics: tuple[str, ...]
    margin: float | None
    min_improvement: float | None
    confidence: float
    slices: tuple[str, ...]
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    positive_origin: str = "--positive-class"

    def configs(self, task: str = "auto", resamples: int = 2000, permutations: int = 1000,
                seed: int = 0) -> list[GateConfig]:
        """One GateConfig per metric; all share the rule, the slices and the effort."""
        return [
            GateConfig(metric=metric, task=task, margin=self.margin, min_improvement=self.min_improvement,
                       confidence=self.confidence, resamples=resamples, permutations=permutations, seed=seed,
                classes=self.classes, positive_class=self.positive_class, positive_origin=self.positive_origin)
            for metric in self.metrics
        ]


def gate_metric(name: str) -> str:
    """The gate's name for a metric, accepting model.yaml's aliases; unknown names raise GateInputError."""
    key = name.strip().lower().replace("-", "_")
    return metric_info(METRIC_ALIASES.get(key, key)).name


def resolve_settings(options: GateOptions, model: str | Path | None = None) -> GateSettings:
    """Merge the command line over model.yaml's gate section (when a model.yaml is given)."""
    spec_metrics: tuple[str, ...] = ()
    spec_margin: float | None = None
    spec_confidence: float | None = None
    spec_slices: tuple[str, ...] = ()
    spec_classes: tuple[str, ...] = ()
    spec_positive: str | None = None
    if model is not None:
        from shipway.spec import load_model_spec

        gate = load_model_spec(model).gate
        if not options.metrics:
            spec_metrics = _spec_metrics(Path(model), gate.metrics)
        spec_margin, spec_confidence, spec_slices = gate.margin, gate.confidence, tuple(gate.slices)
        spec_classes, spec_positive = tuple(gate.classes), gate.positive_class
    if options.metrics:
        metrics = tuple(gate_metric(name) for name in options.metrics)
    elif spec_metrics:
        metrics = spec_metrics
    else:
        raise GateInputError("no metric to judge: give --metric, or --model model.yaml (its gate.metrics)")
    # A minimum improvement asked on the command line replaces model.yaml's margin rather than clashing with it.
    margin = options.margin
    if margin is None and options.min_improvement is None:
        margin = spec_margin
    confidence = options.confidence if options.confidence is not None else spec_confidence
    return GateSettings(
        metrics=tuple(dict.fromkeys(metrics)),
        margin=margin,
        min_improvement=options.min_improvement,
        confidence=DEFAULT_CONFIDENCE if confidence is None else confidence,
        slices=options.slices or spec_slices,
        classes=options.classes or spec_classes,
        positive_class=options.positive_class if options.positive_class is not None else spec_positive,
        positive_origin="model.yaml gate.positiveClass"
        if options.positive_class is None and spec_positive is not None else "--positive-class",
    )


def _spec_metrics(path: Path, names: Sequence[str]) -> tuple[str, ...]:
    """model.yaml's gate.metrics in the gate's names; an unknown one is a SpecError at its line."""
    known = ", ".join([*METRICS, *(f"{alias} (= {name})" for alias, name in METRIC_ALIASES.items())])
    resolved, problems = [], []
    for index, name in enumerate(names):
        try:
            resolved.append(gate_metric(name))
        except GateInputError:
            line, column = _metric_position(path, index)
            problems.append(Problem(str(path), line, column, f"gate.metrics[{index}]",
                                    f'unknown metric "{name}"; the gate judges {known}',
                                    "use one of those names in gate.metrics"))
    if problems:
        raise SpecError(problems)
    return tuple(resolved)


def _metric_position(path: Path, index: int) -> tuple[int, int]:
    """Line and column (1-based) of gate.metrics[index] in model.yaml, or 1:1 when it cannot be found."""
    from shipway.spec.loader import read_yaml

    try:
        metrics = read_yaml(path)["gate"]["metrics"]
        line, column = metrics.lc.item(index)
    except (SpecError, KeyError, TypeError, AttributeError, IndexError):
        return 1, 1
    return line + 1, column + 1
