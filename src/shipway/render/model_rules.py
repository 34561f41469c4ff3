"""Model SLO alert rules and the Argo Rollouts circuit breakers, as plain dicts.

Every query is built with `shipway.metric_names`, the module the sidecar
registers its metrics under, so a renamed metric cannot silently break an alert.

The circuit breakers are ClusterAnalysisTemplates that compare the canary with
stable by the `version` label. Each query returns one number, "how much worse
the canary is", or nothing when the canary has no evidence yet (no traffic, too
few drift rows, too few labels); Argo Rollouts then marks the measurement
inconclusive rather than passing or failing it. A stable version with no data
counts as perfect, so a canary without a baseline must meet the bound on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipway import metric_names as m
from shipway.render.common import Obj, metadata

MODEL_GROUPING = (m.NAMESPACE_LABEL, m.MODEL_LABEL, m.VERSION_LABEL)
DEFAULT_PROMETHEUS_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
BREAKER_ARGS = ("model", "namespace", "canary-version", "stable-version", "prometheus-address")
# The drift breaker's own arguments, with the platform's values as defaults; a model passes its own.
DRIFT_ARGS = ("drift-threshold", "drift-min-rows")
# The breakers an OpenAI-compatible LLM canary is judged by, instead of error-rate and latency.
LLM_BREAKERS = ("llm-error-rate", "llm-ttft", "llm-itl")
_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class ModelSlo:
    """Thresholds and timing of the model SLO alerts."""

    max_error_rate: float = 0.05
    max_latency_p99_seconds: float = 1.0
    max_feature_psi: float = 0.25
    min_online_accuracy: float = 0.8
    min_drift_rows: int = 500
    rate_window: str = "5m"
    for_duration: str = "5m"
    evaluation_interval: str | None = None


@dataclass(frozen=True)
class CircuitBreaker:
    """Bounds of the canary analysis and how often it measures."""

    max_error_rate_increase: float = 0.02
    max_latency_p99_increase_seconds: float = 0.25
    max_feature_psi: float = 0.25
    max_accuracy_drop: float = 0.05
    # LLM canaries: p90 time to first token and inter-token latency, and the share of failed generations.
    max_ttft_increase_seconds: float = 0.2
    max_inter_token_latency_increase_seconds: float = 0.02
    max_llm_error_rate_increase: float = 0.02
    min_drift_rows: int = 500
    rate_window: str = "5m"
    interval: str = "1m"
    failure_limit: int = 1
    count: int | None = None
    prometheus_address: str = DEFAULT_PROMETHEUS_ADDRESS


def model_rule_groups(model: str | None = None, namespace: str | None = None, slo: ModelSlo = ModelSlo()) -> list[Obj]:
    """The SLO alert rule groups; without a model they cover every model, alerting per version.

    Each alert compares a version's live value with that version's own threshold, which its
    sidecar exports (`shipway sidecar --slo-*`), and with `slo`'s value where it exports none.
    So one rule set serves every model, and a model's overrides replace the default instead of
    adding a second alert beside it.
    """
    sel = m.selector(model, namespace=namespace) if model is not None else ""
    by = MODEL_GROUPING
    window = slo.rate_window
    who = "{{ $labels.model }} {{ $labels.version }} in {{ $labels.namespace }}"
    requests = f"{m.REQUESTS_TOTAL}{sel}"
    feature_rows = threshold(m.SLO_DRIFT_MIN_ROWS, sel, slo.min_drift_rows, f"{m.FEATURE_DRIFT_ROWS}{sel}", many=True)
    rules = [
        _alert(
            "ShipwayModelErrorRateHigh",
            f"{m.error_rate(sel, window, by)} > {threshold(m.SLO_ERROR_RATE, sel, slo.max_error_rate, requests)}",
            slo.for_duration,
            "critical",
            f"{who}: {{{{ $value | humanizePercentage }}}} of requests failing"
            f" (SLO: the model's own, else {slo.max_error_rate:.2%}).",
        ),
        _alert(
            "ShipwayModelLatencyP99High",
            f"{m.latency_p99(sel, window, by)}"
            f" > {threshold(m.SLO_LATENCY_P99_SECONDS, sel, slo.max_latency_p99_seconds, requests)}",
            slo.for_duration,
            "warning",
            f"{who}: p99 latency {{{{ $value | humanizeDuration }}}}"
            f" (SLO: the model's own, else {slo.max_latency_p99_seconds:g}s).",
        ),
        _alert(
            "ShipwayModelFeatureDrift",
            # Each feature is trusted on the rows it was observed in, not the window's: one missing from
            # most requests would otherwise alert on a handful of values.
            f"{m.max_feature_psi(sel, by, min_rows=feature_rows)}"
            f" > {threshold(m.SLO_DRIFT_PSI, sel, slo.max_feature_psi, f'{m.FEATURE_DRIFT_PSI}{sel}')}",
            slo.for_duration,
            "warning",
            f"{who}: largest feature PSI {{{{ $value | printf \"%.3f\" }}}}"
            f" (bound: the model's own, else {slo.max_feature_psi:g}).",
        ),
        _alert(
            "ShipwayModelOnlineAccuracyLow",
            f"{m.online_accuracy(sel, by)}"
            f" < {threshold(m.SLO_ACCURACY_FLOOR, sel, slo.min_online_accuracy, f'{m.ONLINE_ACCURACY}{sel}', 'min')}",
            slo.for_duration,
            "critical",
            f"{who}: online accuracy {{{{ $value | humanizePercentage }}}}"
            f" (SLO: the model's own, else {slo.min_online_accuracy:.0%}).",
        ),
    ]
    group: Obj = {"name": f"shipway-model-slo{'-' + model if model else ''}", "rules": rules}
    if slo.evaluation_interval:
        group["interval"] = slo.evaluation_interval
    return [group]


def threshold(gauge: str, sel: str, default: float, present: str, lenient: str = "max", many: bool = False) -> str:
    """Each version's own threshold from its sidecar's gauge, else `default` for every version `present` names.

    The result is one series per namespace, model and version, so a live value joins it one to
    one (`many`: many live series per version, one per feature, join it many to one). Replicas of
    a version export the same threshold; while a changed one rolls out the lenient value (`max`
    for a ceiling, `min` for a floor) holds, so the change never pages alone.
    """
    on = ", ".join(MODEL_GROUPING)
    return (
        f"on({on}){' group_left()' if many else ''} ({lenient} by ({on}) ({gauge}{sel})"
        f" or (group by ({on}) ({present}) * {default:g}))"
    )


def prometheus_rule(name: str, namespace: str, groups: Sequence[Obj], labels: Mapping[str, str] | None = None) -> Obj:
    """A monitoring.coreos.com/v1 PrometheusRule holding the groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(name, namespace, dict(labels or {})),
        "spec": {"groups": [dict(group) for group in groups]},
    }


def rules_file(groups: Sequence[Obj]) -> Obj:
    """The groups as a plain Prometheus rules file document (for promtool or `rule_files`)."""
    return {"groups": [dict(group) for group in groups]}


def write_rules_file(path: Path, groups: Sequence[Obj]) -> Path:
    """Write the groups as a Prometheus rules YAML file and return the path."""
    import yaml

    path.write_text(yaml.safe_dump(rules_file(groups), sort_keys=False), encoding="utf-8")
    return path


def breaker_queries(breaker: CircuitBreaker = CircuitBreaker()) -> dict[str, tuple[str, float]]:
    """Each circuit breaker's PromQL (with `{{args.*}}` placeholders) and its upper bound."""
    canary = m.selector("{{args.model}}", "{{args.canary-version}}", "{{args.namespace}}")
    stable = m.selector("{{args.model}}", "{{args.stable-version}}", "{{args.namespace}}")
    window = breaker.rate_window
    return {
        "error-rate": (
            f"(({m.error_rate(canary, window)}) - (({m.error_rate(stable, window)}) or vector(0)))"
            f" and on() ({m.request_rate(canary, window)} > 0)",
            breaker.max_error_rate_increase,
        ),
        "latency": (
            f"({m.latency_p99(canary, window)} >= 0) - (({m.latency_p99(stable, window)} >= 0) or vector(0))",
            breaker.max_latency_p99_increase_seconds,
        ),
        # Measured as PSI above the model's own bound (an argument; Argo substitutes arguments in
        # queries), so the same template serves every model's threshold.
        "drift": (
            f"({m.max_feature_psi(canary, min_rows='{{args.drift-min-rows}}')} - {{{{args.drift-threshold}}}})",
            0.0,
        ),
        "accuracy": (
            f"(({m.online_accuracy(stable)} >= 0) or vector(1)) - ({m.online_accuracy(canary)} >= 0)",
            breaker.max_accuracy_drop,
        ),
        # LLM canaries are judged on what a user of a stream feels, not on whole-request latency,
        # which grows with the length of each answer.
        "llm-error-rate": (
            f"(({m.llm_error_rate(canary, window)}) - (({m.llm_error_rate(stable, window)}) or vector(0)))"
            f" and on() ({m.llm_request_rate(canary, window)} > 0)",
            breaker.max_llm_error_rate_increase,
        ),
        "llm-ttft": (
            f"({m.llm_time_to_first_token(canary, window=window)} >= 0)"
            f" - (({m.llm_time_to_first_token(stable, window=window)} >= 0) or vector(0))",
            breaker.max_ttft_increase_seconds,
        ),
        "llm-itl": (
            f"({m.llm_inter_token_latency(canary, window=window)} >= 0)"
            f" - (({m.llm_inter_token_latency(stable, window=window)} >= 0) or vector(0))",
            breaker.max_inter_token_latency_increase_seconds,
        ),
    }


def circuit_breaker_templates(breaker: CircuitBreaker = CircuitBreaker(), prefix: str = "shipway-model") -> list[Obj]:
    """One argoproj.io/v1alpha1 ClusterAnalysisTemplate per breaker: error rate, latency, drift, accuracy,
    and for LLMs time to first token, inter-token latency and failed generations."""
    return [
        _analysis_template(f"{prefix}-{name}", name, query, bound, breaker)
        for name, (query, bound) in breaker_queries(breaker).items()
    ]


def success_condition(bound: float) -> str:
    """The Argo expression passing a measurement: a value at or under the bound."""
    return f"len(result) > 0 && result[0] <= {bound:g}"


def failure_condition(bound: float) -> str:
    """The Argo expression failing a measurement; an empty or NaN result is neither (inconclusive)."""
    return f"len(result) > 0 && result[0] > {bound:g}"


def template_args(template: Obj, given: Mapping[str, str]) -> dict[str, str]:
    """The arguments an AnalysisRun of this template gets: its defaults, overridden by those given."""
    defaults = {arg["name"]: arg["value"] for arg in template["spec"]["args"] if "value" in arg}
    return {**defaults, **given}


def resolve_args(text: str, args: Mapping[str, str]) -> str:
    """Substitute `{{args.NAME}}` the way Argo Rollouts does; an unknown arg is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise KeyError(f"analysis argument {name!r} has no value; given: {sorted(args)}")
        return args[name]

    return _ARG.sub(value, text)


def _analysis_template(name: str, metric: str, query: str, bound: float, breaker: CircuitBreaker) -> Obj:
    measurement: dict[str, Any] = {
        "name": metric,
        "interval": breaker.interval,
        "failureLimit": breaker.failure_limit,
        "successCondition": success_condition(bound),
        "failureCondition": failure_condition(bound),
        "provider": {"prometheus": {"address": "{{args.prometheus-address}}", "query": query}},
    }
    if breaker.count is not None:
        measurement["count"] = breaker.count
    args: list[Obj] = [{"name": arg} for arg in BREAKER_ARGS if arg != "prometheus-address"]
    args.append({"name": "prometheus-address", "value": breaker.prometheus_address})
    if metric == "drift":
        args += [{"name": "drift-threshold", "value": f"{breaker.max_feature_psi:g}"},
                 {"name": "drift-min-rows", "value": str(breaker.min_drift_rows)}]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": metadata(name),
        "spec": {"args": args, "metrics": [measurement]},
    }


def _alert(name: str, expr: str, for_duration: str, severity: str, description: str) -> Obj:
    summary = {
        "ShipwayModelErrorRateHigh": "Model error rate above its SLO",
        "ShipwayModelLatencyP99High": "Model p99 latency above its SLO",
        "ShipwayModelFeatureDrift": "Model input features drifted from the training reference",
        "ShipwayModelOnlineAccuracyLow": "Model online accuracy below its SLO",
    }[name]
    return {
        "alert": name,
        "expr": expr,
        "for": for_duration,
        "labels": {"severity": severity},
        # `value` is the figure a retraining pipeline receives as evidence (render/retrain.py).
        "annotations": {"summary": summary, "description": description, "value": "{{ $value }}"},
    }
