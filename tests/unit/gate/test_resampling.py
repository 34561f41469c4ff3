"""The paired bootstrap: coverage at the nominal rate, reproducibility, bounded chunks, exact collapsing, strata."""

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
    plan,
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


def _regression(
    rng: np.random.Generator, rows: int, candidate_errors: np.ndarray, baseline_errors: np.ndarray
) -> GateData:
    labels = rng.normal(size=rows)
    return GateData("sim", labels, labels + candidate_errors, labels + baseline_errors, "y", "c", "b")


def _heavy_tailed(case: str) -> tuple[str, GateData]:
    rng = np.random.default_rng(31)
    # ROC AUC's row-index path is the slowest: 8,000 rows, about 2,400 of them positive, are enough.
    rows = 8_000 if case.startswith("roc_auc") else 20_000
    if case == "rmse, t(3) errors":
        return "rmse", _regression(rng, rows, rng.standard_t(3, rows), rng.standard_t(3, rows))
    labels = rng.integers(0, 2, rows) if case.startswith("log_loss") else (rng.random(rows) < 0.3).astype(int)
    candidate = np.clip(labels * 0.3 + rng.random(rows) * 0.7, 0, 1)
    baseline = np.clip(labels * 0.28 + rng.random(rows) * 0.72, 0, 1)
    if case.startswith("log_loss"):
        # A few confident wrong answers: per-row losses up to 34.5 among losses near 0.6.
        wrong = rng.random(rows) < 0.002
        candidate[wrong] = 1 - labels[wrong]
        wrong = rng.random(rows) < 0.002
        baseline[wrong] = np.where(labels[wrong] == 1, 1e-9, 1 - 1e-9)
        return "log_loss", GateData("sim", labels, candidate, baseline, "y", "c", "b")
    return "roc_auc", GateData("sim", labels, candidate, 0.5 * baseline + 0.5 * candidate, "y", "c", "b")


@pytest.mark.parametrize(
    "case",
    [
        "rmse, t(3) errors",
        "log_loss, confident wrong answers",
        "roc_auc, 30% positives, correlated",
    ],
)
def test_stratified_normal_quantiles_agree_with_index_resampling(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    metric, data = _heavy_tailed(case)
    paired = prepare(data, metric)
    groups = group_rows(paired.rows)
    assert plan(paired, groups).method == "index-resampling"
    exact = bootstrap_improvements(paired, groups, 2000, np.random.default_rng(1))
    # A quarter of the gate's strata: coarser strata, a harder test than the gate's own setting.
    monkeypatch.setattr(resampling, "STRATIFIED_MIN_ROWS", 5_000)
    monkeypatch.setattr(resampling, "STRATA", resampling.STRATA // 4)
    chosen = plan(paired, groups)
    assert chosen.method == "stratified-normal"
    fast = bootstrap_improvements(paired, chosen, 2000, np.random.default_rng(2))
    spread = exact.std()
    # With 2,000 resamples each, a 2.5% quantile's Monte Carlo error is about 0.06 sd per method,
    # so 0.25 sd is a 3-sigma band; at 20,000 resamples each these gaps measured under 0.06 sd.
    quantiles = [0.025, 0.5, 0.975]
    np.testing.assert_allclose(np.quantile(fast, quantiles), np.quantile(exact, quantiles), rtol=0, atol=0.25 * spread)
    assert fast.std() == pytest.approx(spread, rel=0.08)


def test_stratified_normal_interval_covers_the_true_rmse_difference_at_about_the_nominal_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Far coarser strata than the gate uses (128, about 16 rows each), so the approximation is tested harder than used.
    monkeypatch.setattr(resampling, "STRATIFIED_MIN_ROWS", 1000)
    monkeypatch.setattr(resampling, "STRATA", 128)
    rng = np.random.default_rng(12)
    trials, hits, rows = 200, 0, 2000
    for _ in range(trials):
        # RMSE of N(0, s) errors is s: the true improvement is 1.05 - 1.0.
        data = _regression(rng, rows, rng.normal(0, 1.0, rows), rng.normal(0, 1.05, rows))
        paired = prepare(data, "rmse")
        chosen = plan(paired, group_rows(paired.rows))
        assert chosen.method == "stratified-normal"
        low, high = np.quantile(bootstrap_improvements(paired, chosen, 300, rng), [0.05, 0.95])
        hits += bool(low <= 0.05 <= high)
    assert 0.84 <= hits / trials <= 0.95


@pytest.mark.parametrize("case", ["log_loss, confident wrong answers", "roc_auc, 30% positives, correlated"])
def test_stratified_permutation_null_agrees_with_random_swaps(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    metric, data = _heavy_tailed(case)
    paired = prepare(data, metric)
    groups = group_rows(paired.rows)
    exact = permutation_improvements(paired, groups, 1000, np.random.default_rng(3))
    monkeypatch.setattr(resampling, "STRATIFIED_MIN_ROWS", 5_000)
    chosen = plan(paired, groups)
    assert chosen.permutation_method == "stratified-normal"
    fast = permutation_improvements(paired, chosen, 1000, np.random.default_rng(4))
    assert fast.std() == pytest.approx(exact.std(), rel=0.1)
    quantiles = [0.05, 0.95]
    np.testing.assert_allclose(np.quantile(fast, quantiles), np.quantile(exact, quantiles), atol=0.3 * exact.std())


def test_the_method_follows_the_rows_and_the_metric() -> None:
    rng = np.random.default_rng(13)
    rows = resampling.STRATIFIED_MIN_ROWS
    big = _regression(rng, rows, rng.normal(size=rows), rng.normal(size=rows))
    small = _regression(rng, 1000, rng.normal(size=1000), rng.normal(size=1000))
    labels = (rng.random(rows) < 0.01).astype(int)
    rare = GateData("sim", labels, rng.random(rows), rng.random(rows), "y", "c", "b")
    expected = [
        (_classifiers(rng, rows, 0.8, 0.8), "accuracy", "exact-multinomial"),
        (big, "mae", "stratified-normal"),
        (big, "rmse", "stratified-normal"),
        (small, "mae", "index-resampling"),
        # About 500 positives: the dropped second-order AUC term would matter, so no strata.
        (rare, "roc_auc", "index-resampling"),
    ]
    for data, metric, method in expected:
        paired = prepare(data, metric)
        assert plan(paired, group_rows(paired.rows)).method == method, (metric, method)


def test_the_gate_reports_the_stratified_method_and_stays_reproducible() -> None:
    rng = np.random.default_rng(14)
    rows = resampling.STRATIFIED_MIN_ROWS
    data = _regression(rng, rows, rng.normal(0, 1.0, rows), rng.normal(0, 1.1, rows))
    first = run_gate(data, GateConfig("mae", seed=3, resamples=300, permutations=100))
    again = run_gate(data, GateConfig("mae", seed=3, resamples=300, permutations=100))
    assert first.bootstrap_method == "stratified-normal" and "strata" in first.bootstrap_detail
    assert first.permutation is not None and first.permutation.method == "stratified-normal"
    np.testing.assert_array_equal(first.distribution, again.distribution)
    assert first.overall.low <= 0.1 * np.sqrt(2 / np.pi) <= first.overall.high
