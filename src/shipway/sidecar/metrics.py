"""The sidecar's Prometheus metrics, registered under the names in `shipway.metric_names`."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipway import metric_names as names

# Model servers answer in milliseconds to seconds; the buckets resolve both ends.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# First tokens come in tens of milliseconds to seconds; gaps between tokens in milliseconds.
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5)
LLM_OUTCOMES = ("success", "length", "rejected", "error", "cancelled")

MODEL_LABELS = (names.MODEL_LABEL, names.VERSION_LABEL)


@dataclass(frozen=True)
class SloThresholds:
    """The model's own SLO thresholds; one left None exports no series, so the alerts use the platform default."""

    latency_p99_seconds: float | None = None
    error_rate: float | None = None
    drift_psi: float | None = None
    drift_min_rows: int | None = None
    accuracy_floor: float | None = None


class SidecarMetrics:
    """Every metric one sidecar exports, in its own registry (one model and version per sidecar)."""

    def __init__(self, model: str, version: str, thresholds: SloThresholds | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model = model
        self.version = version
        labels = (model, version)
        self._requests = Counter(
            names.REQUESTS_TOTAL, "Inference requests seen by the sidecar.", (*MODEL_LABELS, "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            names.REQUEST_ERRORS_TOTAL, "Failed inference requests: 5xx or upstream unreachable.", MODEL_LABELS,
            registry=self.registry,
        ).labels(*labels)
        self.unparsed = Counter(
            names.REQUESTS_UNPARSED_TOTAL, "Inference requests passed through whose features could not be read.",
            MODEL_LABELS, registry=self.registry,
        ).labels(*labels)
        self.duration = Histogram(
            names.REQUEST_DURATION_SECONDS, "Request latency through the sidecar, in seconds.", MODEL_LABELS,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        ).labels(*labels)
        self.labels_matched = Counter(
            names.LABELS_TOTAL, "Delayed labels matched to a prediction.", MODEL_LABELS, registry=self.registry
        ).labels(*labels)
        self.labels_unmatched = Counter(
            names.LABELS_UNMATCHED_TOTAL, "Delayed labels whose request id was unknown or expired.", MODEL_LABELS,
            registry=self.registry,
        ).labels(*labels)
        self.online_accuracy = Gauge(
            names.ONLINE_ACCURACY, "Rolling accuracy over delayed labels (NaN until enough labels).", MODEL_LABELS,
            registry=self.registry,
        ).labels(*labels)
        self.window_rows = Gauge(
            names.DRIFT_WINDOW_ROWS, "Rows in the current drift window.", MODEL_LABELS, registry=self.registry
        ).labels(*labels)
        feature_labels = (*MODEL_LABELS, "feature")
        self.feature_psi = Gauge(
            names.FEATURE_DRIFT_PSI, "PSI of a feature's live window against the reference.", feature_labels,
            registry=self.registry,
        )
        self.feature_ks = Gauge(
            names.FEATURE_DRIFT_KS, "Binned KS statistic of a numeric feature against the reference.",
            feature_labels, registry=self.registry,
        )
        self.feature_js = Gauge(
            names.FEATURE_DRIFT_JS, "Jensen-Shannon distance of a feature against the reference.", feature_labels,
            registry=self.registry,
        )
        self.feature_chi2_pvalue = Gauge(
            names.FEATURE_DRIFT_CHI2_PVALUE,
            "Two-sample chi-square p-value of a categorical feature against the reference counts.",
            feature_labels, registry=self.registry,
        )
        self.feature_rows = Gauge(
            names.FEATURE_DRIFT_ROWS, "Rows of the drift window in which a feature was observed, missing included.",
            feature_labels, registry=self.registry,
        )
        self.feature_missing_share = Gauge(
            names.FEATURE_MISSING_SHARE, "Share of a feature's observed rows in the drift window that were missing.",
            feature_labels, registry=self.registry,
        )
        self.prediction_psi = Gauge(
            names.PREDICTION_DRIFT_PSI, "PSI of the predictions against the reference.", MODEL_LABELS,
            registry=self.registry,
        ).labels(*labels)
        self._responses = Counter(
            names.SIDECAR_RESPONSES_TOTAL, "Responses the sidecar made itself (not the runtime's), by listener.",
            (*MODEL_LABELS, "listener", "code"), registry=self.registry,
        )
        self._llm_requests = Counter(
            names.LLM_REQUESTS_TOTAL, "OpenAI-compatible requests by outcome.", (*MODEL_LABELS, "outcome"),
            registry=self.registry,
        )
        self.llm_outcomes = {outcome: self._llm_requests.labels(model, version, outcome) for outcome in LLM_OUTCOMES}
        self.time_to_first_token = Histogram(
            names.LLM_TIME_TO_FIRST_TOKEN_SECONDS, "Seconds from a streamed request to its first token.",
            MODEL_LABELS, buckets=TTFT_BUCKETS, registry=self.registry,
        ).labels(*labels)
        self.inter_token_latency = Histogram(
            names.LLM_INTER_TOKEN_LATENCY_SECONDS, "Seconds between consecutive streamed token events.",
            MODEL_LABELS, buckets=INTER_TOKEN_BUCKETS, registry=self.registry,
        ).labels(*labels)
        self.prompt_tokens = Counter(
            names.LLM_PROMPT_TOKENS_TOTAL, "Prompt tokens, as the runtime reports them.", MODEL_LABELS,
            registry=self.registry,
        ).labels(*labels)
        self.completion_tokens = Counter(
            names.LLM_COMPLETION_TOKENS_TOTAL, "Completion tokens (reported usage, else streamed token events).",
            MODEL_LABELS, registry=self.registry,
        ).labels(*labels)
        # Children are cached per status code: a handful at most, so a dict stays tiny.
        self._requests_by_code: dict[int, Counter] = {}
        # Series that exist from the start make rate() see the first requests.
        self._requests_by_code[200] = self._requests.labels(model, version, "200")
        self.online_accuracy.set(float("nan"))
        self._export_thresholds(thresholds or SloThresholds())

    def _export_thresholds(self, thresholds: SloThresholds) -> None:
        for name, documentation, value in (
            (names.SLO_LATENCY_P99_SECONDS, "This model's p99 latency ceiling, seconds.",
             thresholds.latency_p99_seconds),
            (names.SLO_ERROR_RATE, "This model's ceiling on the fraction of failed requests.", thresholds.error_rate),
            (names.SLO_DRIFT_PSI, "This model's bound on any feature's PSI.", thresholds.drift_psi),
            (names.SLO_DRIFT_MIN_ROWS, "Rows this model's drift window needs before drift may alert.",
             thresholds.drift_min_rows),
            (names.SLO_ACCURACY_FLOOR, "This model's floor on online accuracy.", thresholds.accuracy_floor),
        ):
            # An absent threshold has no series at all: the platform's rules then fall back to its default.
            if value is not None:
                Gauge(name, documentation, MODEL_LABELS, registry=self.registry).labels(
                    self.model, self.version).set(value)

    def request(self, status: int) -> None:
        """Count one inference request by its status code."""
        child = self._requests_by_code.get(status)
        if child is None:
            child = self._requests.labels(self.model, self.version, str(status))
            self._requests_by_code[status] = child
        child.inc()

    def response(self, listener: str, status: int) -> None:
        """Count one response the sidecar made itself, on the named listener."""
        self._responses.labels(self.model, self.version, listener, str(status)).inc()
