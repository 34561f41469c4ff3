"""The gate's weighted metrics agree with scikit-learn on whole holdouts and on resamples."""

from __future__ import annotations

import numpy as np
import pytest

from shipway.gate.data import GateData
from shipway.gate.errors import GateInputError
from shipway.gate.metrics import prepare
from shipway.gate.resampling import group_rows, point_improvement

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) is not installed")


def _data(labels: np.ndarray, candidate: np.ndarray, baseline: np.ndarray) -> GateData:
    return GateData("holdout.npz", labels, candidate, baseline, "y", "cand", "base")


def _point(data: GateData, metric: str, task: str = "auto") -> tuple[float, float, float]:
    paired = prepare(data, metric, task)
    return point_improvement(paired, group_rows(paired.rows))


@pytest.fixture()
def binary() -> GateData:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    # Rounded scores make ties, which ROC AUC must count as one half.
    candidate = np.round(np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1), 1)
    baseline = np.round(np.clip(labels * 0.2 + rng.random(400) * 0.8, 0, 1), 2)
    return _data(labels, candidate, baseline)


@pytest.mark.parametrize(
    ("metric", "reference", "hard"),
    [
        ("accuracy", sklearn_metrics.accuracy_score, True),
        ("f1", sklearn_metrics.f1_score, True),
        ("roc_auc", sklearn_metrics.roc_auc_score, False),
        ("log_loss", sklearn_metrics.log_loss, False),
    ],
)
def test_binary_metrics_match_sklearn(binary: GateData, metric: str, reference, hard: bool) -> None:
    candidate, baseline, gain = _point(binary, metric)
    as_input = (lambda s: (s >= 0.5).astype(int)) if hard else (lambda s: s)
    assert candidate == pytest.approx(reference(binary.labels, as_input(binary.candidate)), rel=1e-12)
    assert baseline == pytest.approx(reference(binary.labels, as_input(binary.baseline)), rel=1e-12)
    sign = 1 if metric != "log_loss" else -1
    assert gain == pytest.approx(sign * (candidate - baseline), rel=1e-12)


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 600)
    candidate = rng.dirichlet(np.ones(4), 600)
    candidate[np.arange(600), labels] += 0.6
    candidate /= candidate.sum(axis=1, keepdims=True)
    baseline = rng.dirichlet(np.ones(4), 600)
    data = _data(labels, candidate, baseline)
    assert _point(data, "accuracy")[0] == pytest.approx(
        sklearn_metrics.accuracy_score(labels, candidate.argmax(1)), rel=1e-12
    )
    assert _point(data, "f1")[1] == pytest.approx(
        sklearn_metrics.f1_score(labels, baseline.argmax(1), average="macro"), rel=1e-12
    )
    assert _point(data, "log_loss")[0] == pytest.approx(sklearn_metrics.log_loss(labels, candidate), rel=1e-12)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(9)
    labels = rng.normal(size=300)
    candidate, baseline = labels + rng.normal(size=300) * 0.4, labels + rng.normal(size=300) * 0.5
    data = _data(labels, candidate, baseline)
    rmse = _point(data, "rmse")
    assert rmse[0] == pytest.approx(sklearn_metrics.root_mean_squared_error(labels, candidate), rel=1e-12)
    assert rmse[2] == pytest.approx(rmse[1] - rmse[0])
    assert _point(data, "mae")[1] == pytest.approx(sklearn_metrics.mean_absolute_error(labels, baseline), rel=1e-12)


def test_string_labels_use_the_later_class_as_positive() -> None:
    labels = np.array(["no", "yes", "yes", "no", "yes"])
    candidate = np.array(["no", "yes", "no", "no", "yes"])
    data = _data(labels, candidate, labels.copy())
    f1 = _point(data, "f1")
    assert f1[0] == pytest.approx(sklearn_metrics.f1_score(labels, candidate, pos_label="yes"))
    assert f1[1] == 1.0


def test_weighted_evaluation_equals_metric_on_duplicated_rows(binary: GateData) -> None:
    paired = prepare(binary, "roc_auc")
    counts = np.random.default_rng(1).integers(0, 3, size=(1, binary.rows)).astype(float)
    candidate, _ = paired.make_evaluator(paired.rows)(counts)
    repeated = np.repeat(np.arange(binary.rows), counts[0].astype(int))
    expected = sklearn_metrics.roc_auc_score(binary.labels[repeated], binary.candidate[repeated])
    assert candidate[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("metric", "task", "message"),
    [
        ("rmse", "binary", "does not apply to binary"),
        ("roc_auc", "multiclass", "does not apply to multiclass"),
        ("precision", "auto", "unknown metric 'precision'"),
    ],
)
def test_metric_and_task_must_fit(binary: GateData, metric: str, task: str, message: str) -> None:
    with pytest.raises(GateInputError, match=message):
        prepare(binary, metric, task)


def test_prediction_outside_the_label_classes_is_refused() -> None:
    data = _data(np.array([0, 1, 0, 1]), np.array([0, 1, 2, 1]), np.array([0, 1, 0, 1]))
    with pytest.raises(GateInputError, match=r"column 'cand', row 3: 2 is not one of the classes \(0, 1\)"):
        prepare(data, "f1")


def test_accuracy_refuses_a_predicted_label_outside_the_classes() -> None:
    """Issue #20 case 2: labels {1, 2} against predictions {0, 1} read accuracy 0.14 with no warning."""
    labels = np.array(["A", "B", "A", "C"])
    data = _data(labels, np.array(["A", "B", "D", "C"]), np.array(["B", "B", "A", "Z"]))
    with pytest.raises(GateInputError, match=r"column 'cand', row 3: 'D' is not one of the classes \('A', 'B', 'C'\)"):
        prepare(data, "accuracy")


def test_declared_classes_admit_a_prediction_the_holdout_lacks() -> None:
    labels = np.array(["A", "B", "A", "C"])
    data = _data(labels, np.array(["A", "B", "D", "C"]), np.array(["B", "B", "A", "Z"]))
    paired = prepare(data, "accuracy", classes=("A", "B", "C", "D", "Z"))
    assert paired.rows[:, 0].mean() == 0.75 and paired.rows[:, 1].mean() == 0.5
    with pytest.raises(GateInputError, match=r"column 'y', row 4: 'C' is not one of the classes \('A', 'B'\)"):
        prepare(data, "accuracy", classes=("A", "B"))


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_fractional_predictions_for_more_than_two_classes_are_refused_not_truncated(metric: str) -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    # Truncated, 1.7 and 2.4 would count as right; rounded, 0.6 would not: neither is a class label.
    data = _data(labels, np.array([0.2, 1.7, 2.4, 0.1, 1.2, 2.9]), labels.astype(float))
    with pytest.raises(GateInputError, match=r"'cand' holds fractional numbers but the labels hold 3 classes"):
        prepare(data, metric)
