"""McNemar's test against a worked textbook example and statsmodels; Holm against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from shipway.gate.significance import holm, mcnemar


def test_mcnemar_matches_agresti_presidential_approval_example() -> None:
    # Agresti, Categorical Data Analysis (2002), Table 10.1: 150 approve -> disapprove,
    # 86 disapprove -> approve; with continuity correction (|150-86|-1)^2/236 = 16.82.
    result = mcnemar(baseline_only=150, candidate_only=86)
    assert result.method == "chi-square with continuity correction"
    assert result.statistic == pytest.approx(3969 / 236)
    assert result.statistic == pytest.approx(16.82, abs=0.005)
    assert result.p_value == pytest.approx(4.115e-5, rel=1e-3)


def test_mcnemar_exact_for_few_discordant_pairs() -> None:
    # 1 against 7 discordant pairs: p = 2 * (C(8,0) + C(8,1)) / 2^8 = 18/256.
    result = mcnemar(baseline_only=7, candidate_only=1)
    assert result.method == "exact binomial"
    assert result.p_value == pytest.approx(18 / 256)


def test_mcnemar_without_discordant_pairs_finds_nothing() -> None:
    assert mcnemar(0, 0).p_value == 1.0


@pytest.mark.parametrize(("baseline_only", "candidate_only"), [(3, 9), (0, 5), (12, 12), (30, 52), (400, 350)])
def test_mcnemar_agrees_with_statsmodels(baseline_only: int, candidate_only: int) -> None:
    contingency = pytest.importorskip(
        "statsmodels.stats.contingency_tables", reason="statsmodels (dev extra) is not installed"
    )
    ours = mcnemar(baseline_only, candidate_only)
    table = np.array([[50, baseline_only], [candidate_only, 40]])
    exact = ours.method == "exact binomial"
    theirs = contingency.mcnemar(table, exact=exact, correction=True)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9)


def test_holm_adjusts_step_down_and_stays_monotone() -> None:
    adjusted = holm([0.01, 0.04, 0.03, 0.20])
    # Sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 (raised to 0.09), 0.20.
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.20])
    assert holm([]).shape == (0,)
