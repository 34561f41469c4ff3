"""The paired bootstrap: coverage at the nominal rate, reproducibility, bounded chunks, exact collapsing."""

from __future__ import annotations

import numpy as np
import pytest

from shipway.gate import resampling
from shipway.gate.data import GateData
from shipway.gate.decision import GateConfig, run_gate
from shipway.gate.metrics import prepare
from shipway.gate.resampling import (
    Groups,
    bootstrap_improvements,
    group_rows,
    permutation_improvements,
    permutation_p_value,
    point_improvement,
)


def _classifiers(rng: np.random.Generator, rows: int, candidate_accuracy: float, baseline_accuracy: float) -> GateData:
    labels = rng.integers(0, 2, rows)
    candidate = np.where(rng.random(rows) < candidate_accuracy, labels, 1 - labels)
    baseline = np.where(rng.random(rows) < baseline_accuracy, labels, 1 - labels)
    return GateData("sim", labels, candidate, baseline, "y", "cand", "base")


def _covers(paired_data: GateData, metric: str, truth: float, rng: np.random.Generator, confidence: float) -> bool:
    paired = prepare(paired_data, metric)
    distribution = bootstrap_improvements(paired, group_rows(paired.rows), 400, rng)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(distribution, [alpha, 1 - alpha])
    return bool(low <= truth <= high)


def test_bootstrap_interval_covers_the_true_accuracy_difference_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(2024)
    trials, confidence = 400, 0.90
    hits = sum(_covers(_classifiers(rng, 300, 0.80, 0.74), "accuracy", 0.06, rng, confidence) for _ in range(trials))
    # Binomial(400, 0.9) has sd 0.015; percentile intervals run slightly narrow at small n.
    assert 0.85 <= hits / trials <= 0.95


def test_bootstrap_interval_covers_the_true_mae_difference_on_the_row_index_path() -> None:
    rng = np.random.default_rng(7)
    trials, confidence, hits = 200, 0.90, 0
    for _ in range(trials):
        labels = rng.normal(size=150)
        # |N(0, s)| has mean s * sqrt(2 / pi): the true MAE difference is (0.6 - 0.5) * sqrt(2 / pi).
        data = GateData(
            "sim", labels, labels + rng.normal(0, 0.5, 150), labels + rng.normal(0, 0.6, 150), "y", "c", "b"
        )
        hits += _covers(data, "mae", 0.1 * np.sqrt(2 / np.pi), rng, confidence)
    assert 0.83 <= hits / trials <= 0.96


def test_collapsed_multinomial_and_row_index_resampling_agree_in_distribution() -> None:
    data = _classifiers(np.random.default_rng(1), 2000, 0.8, 0.78)
    paired = prepare(data, "accuracy")
    collapsed = group_rows(paired.rows)
    assert collapsed.collapsed and collapsed.rows.shape[0] == 4
    rows = Groups(paired.rows, np.ones(2000, dtype=np.int64), collapsed=False)
    exact = bootstrap_improvements(paired, collapsed, 3000, np.random.default_rng(2))
    by_index = bootstrap_improvements(paired, rows, 3000, np.random.default_rng(3))
    assert exact.mean() == pytest.approx(by_index.mean(), abs=0.001)
    assert exact.std() == pytest.approx(by_index.std(), rel=0.06)


def test_the_same_seed_gives_the_same_decision_and_another_seed_a_different_draw() -> None:
    data = _classifiers(np.random.default_rng(4), 500, 0.8, 0.8)
    first = run_gate(data, GateConfig("f1", seed=11, permutations=200))
    again = run_gate(data, GateConfig("f1", seed=11, permutations=200))
    other = run_gate(data, GateConfig("f1", seed=12, permutations=200))
    np.testing.assert_array_equal(first.distribution, again.distribution)
    assert (first.overall.low, first.permutation) == (again.overall.low, again.permutation)
    assert not np.array_equal(first.distribution, other.distribution)


def test_no_chunk_holds_more_weights_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resampling, "CHUNK_CELLS", 3000)
    rng = np.random.default_rng(5)
    labels = rng.normal(size=1000)
    data = GateData("sim", labels, labels + rng.normal(size=1000), labels + rng.normal(size=1000), "y", "c", "b")
    paired = prepare(data, "rmse")
    seen: list[tuple[int, int]] = []
    build = paired.make_evaluator

    def recording(rows: np.ndarray):
        evaluate = build(rows)

        def wrapped(weights: np.ndarray):
            seen.append(weights.shape)
            return evaluate(weights)

        return wrapped

    spy = type(paired)(paired.metric, paired.task, paired.rows, paired.swap, paired.classes, recording)
    groups = group_rows(spy.rows)
    assert not groups.collapsed
    assert bootstrap_improvements(spy, groups, 250, rng).shape == (250,)
    assert permutation_improvements(spy, groups, 50, rng).shape == (50,)
    assert seen and all(rows * width <= 3000 or rows == 1 for rows, width in seen)
    assert sum(r for r, c in seen if c == 1000) == 250


def test_permutation_test_separates_a_real_difference_from_none() -> None:
    rng = np.random.default_rng(8)
    data = _classifiers(rng, 800, 0.85, 0.75)
    paired = prepare(data, "accuracy")
    groups = group_rows(paired.rows)
    observed = point_improvement(paired, groups)[2]
    assert permutation_p_value(permutation_improvements(paired, groups, 500, rng), observed) < 0.01
    same = GateData("sim", data.labels, data.candidate, data.candidate.copy(), "y", "c", "b")
    same_paired = prepare(same, "accuracy")
    same_groups = group_rows(same_paired.rows)
    null = permutation_improvements(same_paired, same_groups, 200, rng)
    assert permutation_p_value(null, 0.0) == 1.0
