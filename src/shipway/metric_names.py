"""The model-level metric names and PromQL that the sidecar exports and rules query.

This module is the single source of truth: the sidecar registers its
prometheus-client metrics under these names, and the platform's alert rules
and Argo Rollouts analysis templates build their queries with the functions
below. It imports nothing from Shipway, so every layer may use it.
"""

from __future__ import annotations

# Labels every model metric carries; `version` tells canary from stable.
MODEL_LABEL = "model"
VERSION_LABEL = "version"
NAMESPACE_LABEL = "namespace"

REQUESTS_TOTAL = "shipway_model_requests_total"
"""Counter of inference requests seen by the sidecar, labelled model, version, code."""

REQUEST_ERRORS_TOTAL = "shipway_model_request_errors_total"
"""Counter of failed inference requests (5xx or upstream unreachable)."""

REQUEST_DURATION_SECONDS = "shipway_model_request_duration_seconds"
"""Histogram of end-to-end request latency through the sidecar, in seconds."""

FEATURE_DRIFT_PSI = "shipway_model_feature_drift_psi"
"""Gauge: population stability index of one feature's live window against the reference."""

FEATURE_DRIFT_KS = "shipway_model_feature_drift_ks"
"""Gauge: Kolmogorov-Smirnov statistic of one numeric feature against the reference."""

FEATURE_DRIFT_JS = "shipway_model_feature_drift_js"
"""Gauge: Jensen-Shannon distance of one feature against the reference."""

FEATURE_DRIFT_CHI2_PVALUE = "shipway_model_feature_drift_chi2_pvalue"
"""Gauge: chi-square test p-value of one categorical feature against the reference."""

PREDICTION_DRIFT_PSI = "shipway_model_prediction_drift_psi"
"""Gauge: PSI of the prediction distribution against the reference."""

DRIFT_WINDOW_ROWS = "shipway_model_drift_window_rows"
"""Gauge: rows in the current drift window (drift is only trusted above a minimum)."""

ONLINE_ACCURACY = "shipway_model_online_accuracy"
"""Gauge: rolling accuracy over delayed labels received on the feedback endpoint."""

LABELS_TOTAL = "shipway_model_labels_total"
"""Counter of delayed labels matched to a prediction."""

LABELS_UNMATCHED_TOTAL = "shipway_model_labels_unmatched_total"
"""Counter of delayed labels whose request id was unknown or had expired."""

REQUESTS_UNPARSED_TOTAL = "shipway_model_unparsed_requests_total"
"""Counter of inference requests passed through whose features could not be read."""

SLO_LATENCY_P99_SECONDS = "shipway_model_slo_latency_p99_seconds"
"""Gauge: this model's own p99 latency ceiling in seconds; absent when it takes the platform default."""

SLO_ERROR_RATE = "shipway_model_slo_error_rate"
"""Gauge: this model's own ceiling on the fraction of failed requests; absent when it takes the default."""

SLO_DRIFT_PSI = "shipway_model_slo_drift_psi"
"""Gauge: this model's own bound on any feature's PSI; absent when it takes the platform default."""

SLO_DRIFT_MIN_ROWS = "shipway_model_slo_drift_min_rows"
"""Gauge: rows this model's drift window needs before drift may alert; absent when it takes the default."""

SLO_ACCURACY_FLOOR = "shipway_model_slo_accuracy_floor"
"""Gauge: this model's own floor on online accuracy; absent when it takes the platform default."""

SLO_THRESHOLDS = (SLO_LATENCY_P99_SECONDS, SLO_ERROR_RATE, SLO_DRIFT_PSI, SLO_DRIFT_MIN_ROWS, SLO_ACCURACY_FLOOR)

ALL_METRICS = (
    REQUESTS_TOTAL,
    REQUEST_ERRORS_TOTAL,
    REQUEST_DURATION_SECONDS,
    FEATURE_DRIFT_PSI,
    FEATURE_DRIFT_KS,
    FEATURE_DRIFT_JS,
    FEATURE_DRIFT_CHI2_PVALUE,
    PREDICTION_DRIFT_PSI,
    DRIFT_WINDOW_ROWS,
    ONLINE_ACCURACY,
    LABELS_TOTAL,
    LABELS_UNMATCHED_TOTAL,
    REQUESTS_UNPARSED_TOTAL,
    *SLO_THRESHOLDS,
)


def selector(model: str, version: str | None = None, namespace: str | None = None) -> str:
    """A PromQL label selector for one model, optionally one version and namespace."""
    parts = [f'{MODEL_LABEL}="{model}"']
    if version is not None:
        parts.append(f'{VERSION_LABEL}="{version}"')
    if namespace is not None:
        parts.append(f'{NAMESPACE_LABEL}="{namespace}"')
    return "{" + ",".join(parts) + "}"


def _by(labels: tuple[str, ...], *extra: str) -> str:
    """A PromQL `by (...)` clause, or nothing when there is nothing to keep."""
    kept = (*labels, *extra)
    return f" by ({', '.join(kept)})" if kept else ""


def error_rate(sel: str, window: str = "5m", by: tuple[str, ...] = ()) -> str:
    """Fraction of requests that failed over the window, per `by` labels (one series when empty)."""
    return (
        f"sum{_by(by)}(rate({REQUEST_ERRORS_TOTAL}{sel}[{window}]))"
        f" / clamp_min(sum{_by(by)}(rate({REQUESTS_TOTAL}{sel}[{window}])), 1e-9)"
    )


def request_rate(sel: str, window: str = "5m", by: tuple[str, ...] = ()) -> str:
    """Requests per second over the window."""
    return f"sum{_by(by)}(rate({REQUESTS_TOTAL}{sel}[{window}]))"


def latency_p99(sel: str, window: str = "5m", by: tuple[str, ...] = ()) -> str:
    """99th percentile request latency in seconds over the window."""
    return (
        f"histogram_quantile(0.99, sum{_by(by, 'le')} (rate({REQUEST_DURATION_SECONDS}_bucket{sel}[{window}])))"
    )


def max_feature_psi(sel: str, by: tuple[str, ...] = ()) -> str:
    """The largest feature PSI of the current drift window."""
    return f"max{_by(by)}({FEATURE_DRIFT_PSI}{sel})"


def drift_window_rows(sel: str, by: tuple[str, ...] = ()) -> str:
    """Rows in the drift window (the fewest across replicas): drift is trusted above a minimum."""
    return f"min{_by(by)}({DRIFT_WINDOW_ROWS}{sel})"


def online_accuracy(sel: str, by: tuple[str, ...] = ()) -> str:
    """The rolling online accuracy (lowest across replicas)."""
    return f"min{_by(by)}({ONLINE_ACCURACY}{sel})"
