"""Recording rules and a Grafana dashboard for what Prometheus can compute live of DORA's keys.

They read Argo Rollouts' own metrics (controller/metrics/prommetrics.go): `rollout_events_total{namespace,
name, type, reason}` counts events with the reasons of utils/conditions/conditions.go, and `rollout_info
{namespace, name, strategy, traffic_router, phase}` is 1 for the phase a Rollout is in now (Healthy,
Progressing, Paused or Degraded). A model's Rollout is named after the model, in its team's namespace.
`shipway dora` computes the full four keys from the GitOps history; these series are the live view.
"""

from __future__ import annotations

from shipway.render.common import Obj

GROUP = "shipway-delivery"
EVENTS = "rollout_events_total"
INFO = "rollout_info"
BY = "namespace, name"

PROMOTIONS = "shipway:rollout_promotions:increase1d"
ABORTS = "shipway:rollout_aborts:increase1d"
ANALYSIS_FAILURES = "shipway:rollout_analysis_failures:increase1d"
IN_CANARY = "shipway:rollout_in_canary"
DEGRADED = "shipway:rollout_degraded"
TIME_IN_CANARY = "shipway:rollout_time_in_canary_seconds:1d"
TIME_DEGRADED = "shipway:rollout_time_degraded_seconds:1d"
TIME_TO_RESTORE = "shipway:rollout_time_to_restore_seconds:1d"
PLATFORM_PROMOTIONS = "shipway:platform_promotions:increase1d"
PLATFORM_ABORTS = "shipway:platform_aborts:increase1d"
PLATFORM_FAILURE_RATE = "shipway:platform_change_failure_rate:1d"


def _phase(phases: str) -> str:
    """1 while a Rollout is in one of the phases, 0 while it is in another, so averages over time are shares."""
    return (f'max by ({BY}) ({INFO}{{phase=~"{phases}"}})'
            f" or (max by ({BY}) ({INFO}) * 0)")


def rule_groups() -> list[Obj]:
    """The delivery recording rules, in the order they depend on each other (one group evaluates in order)."""
    rules = [
        # Events are whole; increase() extrapolates to the window's edges, so counts are rounded back.
        (PROMOTIONS, f'round(sum by ({BY}) (increase({EVENTS}{{reason="RolloutCompleted"}}[1d])))'),
        (ABORTS, f'round(sum by ({BY}) (increase({EVENTS}{{reason="RolloutAborted"}}[1d])))'),
        (ANALYSIS_FAILURES, f'round(sum by ({BY}) (increase({EVENTS}{{reason="AnalysisRunFailed"}}[1d])))'),
        (IN_CANARY, _phase("Progressing|Paused")),
        (DEGRADED, _phase("Degraded")),
        (TIME_IN_CANARY, f"avg_over_time({IN_CANARY}[1d]) * 86400"),
        (TIME_DEGRADED, f"avg_over_time({DEGRADED}[1d]) * 86400"),
        # Mean time to restore over the day: time spent degraded per abort; absent on a day without aborts.
        (TIME_TO_RESTORE, f"{TIME_DEGRADED} / ({ABORTS} > 0)"),
        (PLATFORM_PROMOTIONS, f"sum({PROMOTIONS})"),
        (PLATFORM_ABORTS, f"sum({ABORTS})"),
        # Aborted rollouts never complete, so the changes attempted are completions plus aborts.
        (PLATFORM_FAILURE_RATE, f"{PLATFORM_ABORTS} / ({PLATFORM_PROMOTIONS} + {PLATFORM_ABORTS} > 0)"),
    ]
    return [{"name": GROUP, "rules": [{"record": name, "expr": expr} for name, expr in rules]}]


def dashboard_panels() -> list[tuple[str, str, str]]:
    """Title, query and unit of each panel of the delivery dashboard."""
    return [
        ("Promotions per day by model", f"sum by (namespace, name) ({PROMOTIONS})", "none"),
        ("Aborted rollouts per day by model", f"sum by (namespace, name) ({ABORTS})", "none"),
        ("Time in canary over the last day", f"max by (namespace, name) ({TIME_IN_CANARY})", "s"),
        ("Mean time to restore over the last day", f"max by (namespace, name) ({TIME_TO_RESTORE})", "s"),
        ("Platform change failure rate (aborts / attempts, last day)", PLATFORM_FAILURE_RATE, "percentunit"),
        ("Rollouts in canary now", f"sum({IN_CANARY})", "none"),
    ]
