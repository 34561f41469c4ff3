"""The gate's decision: a paired bootstrap interval of the improvement against a margin, per slice too."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from shipway.gate.data import GateData
from shipway.gate.errors import GateInputError
from shipway.gate.metrics import PairedRows, prepare
from shipway.gate.resampling import (
    Plan,
    bootstrap_improvements,
    group_rows,
    permutation_improvements,
    permutation_p_value,
    plan,
    point_improvement,
)
from shipway.gate.significance import McNemarResult, holm, mcnemar

MAX_SLICE_VALUES = 100
# Below this many rows the percentile bootstrap's coverage is poor whatever the margin (a single row gives
# an interval of width 0), so no verdict but "insufficient evidence" is given; the usual rule of thumb.
SMALL_SAMPLE_ROWS = 30
PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient evidence"
# Exit codes of `shipway gate`: 2 is bad input (GateInputError).
EXIT_CODES = {PASS: 0, FAIL: 1, INSUFFICIENT: 3}


@dataclass(frozen=True)
class GateConfig:
    """What the gate decides and how: metric, task, margin or minimum improvement, confidence, effort."""

    metric: str
    task: str = "auto"
    margin: float | None = None
    min_improvement: float | None = None
    confidence: float = 0.95
    resamples: int = 2000
    permutations: int = 1000
    seed: int = 0
    min_slice_rows: int = SMALL_SAMPLE_ROWS
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    positive_origin: str = "--positive-class"

    def __post_init__(self) -> None:
        if self.margin is not None and self.min_improvement is not None:
            raise GateInputError("give either --margin (non-inferiority) or --min-improvement, not both")
        if self.margin is not None and not (math.isfinite(self.margin) and self.margin >= 0):
            raise GateInputError(f"--margin must be a finite number >= 0, got {self.margin}")
        if self.min_improvement is not None and not math.isfinite(self.min_improvement):
            raise GateInputError(f"--min-improvement must be a finite number, got {self.min_improvement}")
        if not 0.5 <= self.confidence < 1.0:
            raise GateInputError(f"--confidence must be in [0.5, 1), got {self.confidence}")
        if self.resamples < 100:
            raise GateInputError(f"--resamples must be at least 100, got {self.resamples}")
        if self.permutations < 0:
            raise GateInputError(f"--permutations must be >= 0, got {self.permutations}")

    @property
    def threshold(self) -> float:
        """The improvement the interval's lower bound must reach: -margin, or the minimum improvement."""
        # Adding 0.0 turns -0.0 into 0.0, so a zero margin never reads "-0".
        if self.min_improvement is not None:
            return float(self.min_improvement) + 0.0
        return 0.0 - float(self.margin or 0.0)

    @property
    def mode(self) -> str:
        """'non-inferiority' (a margin) or 'minimum improvement'."""
        return "minimum improvement" if self.min_improvement is not None else "non-inferiority"

    @property
    def alpha(self) -> float:
        """One-sided error rate matching the two-sided interval's lower bound."""
        return (1.0 - self.confidence) / 2.0


@dataclass(frozen=True)
class Estimate:
    """A metric for both models on some rows, the improvement, and its bootstrap interval."""

    rows: int
    candidate: float
    baseline: float
    improvement: float
    low: float
    high: float
    undefined_resamples: int


@dataclass(frozen=True)
class SliceResult:
    """One slice's estimate and whether it shows a significant regression after Holm correction."""

    column: str
    value: str
    estimate: Estimate | None
    p_value: float | None
    p_holm: float | None
    regressed: bool
    note: str = ""


@dataclass(frozen=True)
class PermutationResult:
    """The paired permutation test of 'no difference' (two-sided)."""

    permutations: int
    p_value: float
    method: str


@dataclass(frozen=True)
class GateResult:
    """Everything the gate found: the decision, the figures behind it, and the warnings."""

    config: GateConfig
    source: str
    task: str
    metric: str
    higher_is_better: bool
    overall: Estimate
    distribution: np.ndarray
    bootstrap_method: str
    bootstrap_detail: str
    mcnemar: McNemarResult | None
    permutation: PermutationResult | None
    slices: list[SliceResult]
    warnings: list[str]
    reasons: list[str]
    passed: bool
    seconds: float
    columns: dict[str, str] = field(default_factory=dict)
    decision: str = FAIL
    rows_needed: int | None = None
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    positive_rule: str = "not used"

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 insufficient evidence."""
        return EXIT_CODES[self.decision]


def run_gate(data: GateData, config: GateConfig) -> GateResult:
    """Decide whether the candidate passes: the interval's lower bound must reach the threshold, and no slice may regress."""
    started = time.perf_counter()
    paired = prepare(data, config.metric, config.task, config.classes, config.positive_class, config.positive_origin)
    seeds = np.random.SeedSequence(config.seed).spawn(2 + sum(1 for _ in data.slices))
    chosen = plan(paired, group_rows(paired.rows))
    overall, distribution = _estimate(paired, chosen, config, np.random.default_rng(seeds[0]))
    if not math.isfinite(overall.improvement):
        raise GateInputError(f"{data.source}: {paired.metric.name} is undefined on this holdout")
    warnings = _sample_warnings(overall, config)
    mcnemar_result = _mcnemar(paired) if paired.metric.name == "accuracy" else None
    permutation = None
    if config.permutations:
        null = permutation_improvements(paired, chosen, config.permutations, np.random.default_rng(seeds[1]))
        permutation = PermutationResult(
            config.permutations, permutation_p_value(null, overall.improvement), chosen.permutation_method
        )
    slices = _slices(data, paired, config, seeds[2:], warnings)
    reasons = []
    passed_overall = overall.low >= config.threshold
    bound = f"lower bound {_shown(overall.low)} of the {config.confidence:.0%} interval"
    if passed_overall:
        reasons.append(f"{bound} reaches the threshold {_shown(config.threshold)}")
    else:
        reasons.append(f"{bound} is below the threshold {_shown(config.threshold)}")
    regressed = [s for s in slices if s.regressed]
    for item in regressed:
        reasons.append(f"slice {item.column}={item.value} regressed (Holm-adjusted p = {item.p_holm:.3g})")
    decision, rows_needed, why = _decide(overall, config, passed_overall and not regressed, bool(regressed))
    if why:
        reasons.insert(0, why)
    found = paired.found
    return GateResult(
        config=config,
        source=data.source,
        task=paired.task,
        metric=paired.metric.name,
        higher_is_better=paired.metric.higher_is_better,
        overall=overall,
        distribution=distribution,
        bootstrap_method=chosen.method,
        bootstrap_detail=chosen.detail,
        mcnemar=mcnemar_result,
        permutation=permutation,
        slices=slices,
        warnings=warnings,
        reasons=reasons,
        passed=decision == PASS,
        seconds=time.perf_counter() - started,
        columns={"labels": data.label_column, "candidate": data.candidate_column, "baseline": data.baseline_column},
        decision=decision,
        rows_needed=rows_needed,
        classes=found.names if found is not None else (),
        positive_class=found.positive if found is not None else None,
        positive_rule=found.positive_rule if found is not None else "not used",
    )


def _shown(value: float) -> str:
    """A figure for a message: four significant digits, and never "-0"."""
    return f"{float(value) + 0.0:.4g}"


def rows_for_margin(overall: Estimate, config: GateConfig) -> int | None:
    """Rows that would make the interval's half-width equal the margin (or minimum improvement).

    The half-width shrinks as 1/sqrt(n) at the configured confidence, so n x (half-width / margin)^2
    rows would make an equally good candidate's interval as narrow as the margin. None where that is
    not sound: a zero threshold (no margin to scale by) or an undefined interval.
    """
    allowance = abs(config.threshold)
    half_width = (overall.high - overall.low) / 2.0
    if allowance <= 0 or not math.isfinite(half_width):
        return None
    return max(overall.rows, math.ceil(overall.rows * (half_width / allowance) ** 2))


def _decide(overall: Estimate, config: GateConfig, passed: bool, regressed: bool) -> tuple[str, int | None, str]:
    """pass, fail, or insufficient evidence: too few rows for any verdict, or too few to tell at this margin.

    Below SMALL_SAMPLE_ROWS nothing passes. Above it, an interval that misses the threshold but
    still reaches above it, and is wider than the margin on each side, shows the holdout too small
    to tell, not a worse candidate: insufficient evidence, with the rows the margin needs. An
    interval wholly below the threshold, or a regressed slice, is a fail at any size.
    """
    needed = rows_for_margin(overall, config)
    if overall.rows < SMALL_SAMPLE_ROWS or not math.isfinite(overall.low):
        rows = max(SMALL_SAMPLE_ROWS, needed or 0)
        return INSUFFICIENT, rows, (
            f"insufficient evidence: {overall.rows} rows, fewer than the {SMALL_SAMPLE_ROWS} a bootstrap interval "
            f"needs; about {rows} rows are needed"
        )
    if passed:
        return PASS, None, ""
    if (not regressed and needed is not None and overall.rows < needed
            and overall.high >= config.threshold):
        return INSUFFICIENT, needed, (
            f"insufficient evidence: the {config.confidence:.0%} interval is wider than the "
            f"{config.mode} threshold {_shown(config.threshold)} and straddles it; about {needed} rows are needed"
        )
    return FAIL, None, ""


def _estimate(
    paired: PairedRows, chosen: Plan, config: GateConfig, rng: np.random.Generator
) -> tuple[Estimate, np.ndarray]:
    candidate, baseline, gain = point_improvement(paired, chosen.groups)
    distribution = bootstrap_improvements(paired, chosen, config.resamples, rng)
    finite = distribution[np.isfinite(distribution)]
    if finite.shape[0] == 0:
        low = high = math.nan
    else:
        low, high = (float(q) for q in np.quantile(finite, [config.alpha, 1.0 - config.alpha]))
    estimate = Estimate(
        rows=chosen.groups.total,
        candidate=candidate,
        baseline=baseline,
        improvement=gain,
        low=low,
        high=high,
        undefined_resamples=int(distribution.shape[0] - finite.shape[0]),
    )
    return estimate, distribution


def _mcnemar(paired: PairedRows) -> McNemarResult:
    candidate_right, baseline_right = paired.rows[:, 0] > 0.5, paired.rows[:, 1] > 0.5
    return mcnemar(
        baseline_only=int(np.count_nonzero(baseline_right & ~candidate_right)),
        candidate_only=int(np.count_nonzero(candidate_right & ~baseline_right)),
    )


def _sample_warnings(overall: Estimate, config: GateConfig) -> list[str]:
    """Say when the holdout is too small for the margin asked, and roughly how many rows would do."""
    warnings = []
    if overall.rows < SMALL_SAMPLE_ROWS:
        warnings.append(f"only {overall.rows} rows: a bootstrap interval is unreliable below about {SMALL_SAMPLE_ROWS}")
    half_width = (overall.high - overall.low) / 2.0
    needed = rows_for_margin(overall, config)
    if needed is not None and needed > overall.rows:
        warnings.append(
            f"the sample is too small for the {config.mode} threshold {_shown(config.threshold)}: the "
            f"{config.confidence:.0%} interval is +/-{half_width:.4g} wide, so even a candidate exactly as good "
            f"as the baseline would be judged by noise; about {needed} rows would make the interval as narrow as the threshold"
        )
    if overall.undefined_resamples:
        warnings.append(
            f"{overall.undefined_resamples} of {config.resamples} resamples left the metric undefined "
            "(e.g. one class only) and were dropped"
        )
    if config.resamples * config.alpha < 10:
        warnings.append(f"{config.resamples} resamples give fewer than 10 beyond each interval bound; use more")
    return warnings


def _slices(
    data: GateData,
    paired: PairedRows,
    config: GateConfig,
    seeds: list[np.random.SeedSequence],
    warnings: list[str],
) -> list[SliceResult]:
    """Per-slice estimates; a slice regresses when its improvement is significantly below the slice threshold."""
    # In non-inferiority mode a slice may lose up to the margin; asking for a
    # minimum improvement, a slice only fails by being significantly worse.
    slice_threshold = min(config.threshold, 0.0)
    pending: list[tuple[str, str, Estimate | None, float | None, str]] = []
    for (column, values), seed in zip(data.slices.items(), seeds, strict=True):
        if values.ndim != 1:
            raise GateInputError(f"{data.source}: slice column {column!r} must hold one value per row")
        distinct, inverse = np.unique(values, return_inverse=True)
        if distinct.shape[0] > MAX_SLICE_VALUES:
            raise GateInputError(
                f"{data.source}: slice column {column!r} has {distinct.shape[0]} distinct values; "
                f"slices must be categories (at most {MAX_SLICE_VALUES})"
            )
        generators = [np.random.default_rng(s) for s in seed.spawn(distinct.shape[0])]
        for code, (value, rng) in enumerate(zip(distinct, generators, strict=True)):
            mask = inverse.reshape(-1) == code
            subset = replace(paired, rows=paired.rows[mask])
            estimate, distribution = _estimate(subset, plan(subset, group_rows(subset.rows)), config, rng)
            finite = distribution[np.isfinite(distribution)]
            if not math.isfinite(estimate.improvement) or finite.shape[0] == 0:
                pending.append((column, str(value), None, None, f"{paired.metric.name} undefined in this slice"))
                continue
            note = ""
            if estimate.rows < config.min_slice_rows:
                note = f"only {estimate.rows} rows"
                warnings.append(f"slice {column}={value} has only {estimate.rows} rows; its decision is weak")
            p_value = (1 + int(np.count_nonzero(finite >= slice_threshold))) / (finite.shape[0] + 1)
            pending.append((column, str(value), estimate, p_value, note))
    tested = [p for (_, _, _, p, _) in pending if p is not None]
    adjusted = iter(holm(tested))
    results = []
    for column, value, estimate, p_value, note in pending:
        p_holm = float(next(adjusted)) if p_value is not None else None
        regressed = p_holm is not None and p_holm < config.alpha
        results.append(SliceResult(column, value, estimate, p_value, p_holm, regressed, note))
    return results
