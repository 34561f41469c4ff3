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

FEATURE_DRIFT_ROWS = "shipway_model_feature_drift_rows"
"""Gauge: rows of the drift window in which one feature was observed, missing values included (its min-rows guard)."""

FEATURE_MISSING_SHARE = "shipway_model_feature_missing_share"
"""Gauge: share of one feature's observed rows in the window that were missing (null, NaN); PSI counts them too."""

PREDICTION_DRIFT_PSI = "shipway_model_prediction_drift_psi"
"""Gauge: PSI of the prediction distribution against the reference."""

DRIFT_WINDOW_ROWS = "shipway_model_drift_window_rows"
"""Gauge: rows in the current drift window (each feature's own rows, FEATURE_DRIFT_ROWS, guard its alert)."""

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

SIDECAR_RESPONSES_TOTAL = "shipway_sidecar_responses_total"
"""Counter of responses the sidecar made itself (not the runtime's), labelled model, version, listener, code."""

LLM_REQUESTS_TOTAL = "shipway_llm_requests_total"
"""Counter of OpenAI-compatible requests by outcome: success, length, rejected, error, cancelled."""

LLM_TIME_TO_FIRST_TOKEN_SECONDS = "shipway_llm_time_to_first_token_seconds"
"""Histogram of seconds from a streamed request's arrival to its first generated token."""

LLM_INTER_TOKEN_LATENCY_SECONDS = "shipway_llm_inter_token_latency_seconds"
"""Histogram of seconds between consecutive streamed token events."""

LLM_PROMPT_TOKENS_TOTAL = "shipway_llm_prompt_tokens_total"
"""Counter of prompt tokens, as the runtime's `usage` reports them."""

LLM_COMPLETION_TOKENS_TOTAL = "shipway_llm_completion_tokens_total"
"""Counter of completion tokens: the runtime's `usage`, else one per streamed token event."""

LLM_ERROR_OUTCOMES = ("error",)
"""Outcomes of LLM_REQUESTS_TOTAL that count as failures in the error rate."""

LLM_METRICS = (
    LLM_REQUESTS_TOTAL,
    LLM_TIME_TO_FIRST_TOKEN_SECONDS,
    LLM_INTER_TOKEN_LATENCY_SECONDS,
    LLM_PROMPT_TOKENS_TOTAL,
    LLM_COMPLETION_TOKENS_TOTAL,
)

SLO_THRESHOLDS = (SLO_LATENCY_P99_SECONDS, SLO_ERROR_RATE, SLO_DRIFT_PSI, SLO_DRIFT_MIN_ROWS, SLO_ACCURACY_FLOOR)

ALL_METRICS = (
    REQUESTS_TOTAL,
    REQUEST_ERRORS_TOTAL,
    REQUEST_DURATION_SECONDS,
    FEATURE_DRIFT_PSI,
    FEATURE_DRIFT_KS,
    FEATURE_DRIFT_JS,
    FEATURE_DRIFT_CHI2_PVALUE,
    FEATURE_DRIFT_ROWS,
    FEATURE_MISSING_SHARE,
    PREDICTION_DRIFT_PSI,
    DRIFT_WINDOW_ROWS,
    ONLINE_ACCURACY,
    LABELS_TOTAL,
    LABELS_UNMATCHED_TOTAL,
    REQUESTS_UNPARSED_TOTAL,
    *SLO_THRESHOLDS,
    SIDECAR_RESPONSES_TOTAL,
    *LLM_METRICS,
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


def max_feature_psi(sel: str, by: tuple[str, ...] = (), min_rows: str | None = None) -> str:
    """The largest feature PSI of the current drift window.

    With `min_rows` (a number, or a PromQL operand matched per version) only features observed
    in at least that many rows of their own count: a feature missing from most requests, or
    absent from them, is judged on its own rows, not the window's.
    """
    psi = f"{FEATURE_DRIFT_PSI}{sel}"
    if min_rows is not None:
        psi = f"{psi} and ({FEATURE_DRIFT_ROWS}{sel} >= {min_rows})"
    return f"max{_by(by)}({psi})"


def online_accuracy(sel: str, by: tuple[str, ...] = ()) -> str:
    """The rolling online accuracy (lowest across replicas)."""
    return f"min{_by(by)}({ONLINE_ACCURACY}{sel})"


def llm_error_rate(sel: str, window: str = "5m") -> str:
    """Fraction of OpenAI-compatible requests that failed (runtime error or a stream broken mid-way)."""
    failed = "|".join(LLM_ERROR_OUTCOMES)
    inner = sel[1:-1] if sel else ""
    failed_sel = "{" + ",".join(filter(None, [inner, f'outcome=~"{failed}"'])) + "}"
    return (
        f"sum(rate({LLM_REQUESTS_TOTAL}{failed_sel}[{window}]))"
        f" / clamp_min(sum(rate({LLM_REQUESTS_TOTAL}{sel}[{window}])), 1e-9)"
    )


def llm_request_rate(sel: str, window: str = "5m") -> str:
    """OpenAI-compatible requests per second over the window."""
    return f"sum(rate({LLM_REQUESTS_TOTAL}{sel}[{window}]))"


def llm_time_to_first_token(sel: str, quantile: float = 0.9, window: str = "5m") -> str:
    """A quantile of time to first token, in seconds, over the window."""
    return (f"histogram_quantile({quantile:g}, sum by (le) "
            f"(rate({LLM_TIME_TO_FIRST_TOKEN_SECONDS}_bucket{sel}[{window}])))")


def llm_inter_token_latency(sel: str, quantile: float = 0.9, window: str = "5m") -> str:
    """A quantile of inter-token latency, in seconds, over the window."""
    return (f"histogram_quantile({quantile:g}, sum by (le) "
            f"(rate({LLM_INTER_TOKEN_LATENCY_SECONDS}_bucket{sel}[{window}])))")
