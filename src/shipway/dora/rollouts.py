"""Argo Rollouts' own metrics from Prometheus: aborted rollouts and failed analyses are failed changes.

Argo Rollouts counts every event it records on a Rollout in `rollout_events_total{namespace, name, type,
reason}` (controller/metrics/prommetrics.go); the reasons used here are its own constants
(utils/conditions/conditions.go): RolloutAborted, AnalysisRunFailed and RolloutCompleted. A failure is
restored by the next RolloutCompleted of the same Rollout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass

from shipway.dora.history import Deployment
from shipway.errors import ShipwayError

EVENTS = "rollout_events_total"
ABORTED = "RolloutAborted"
ANALYSIS_FAILED = "AnalysisRunFailed"
COMPLETED = "RolloutCompleted"
FAILURE_REASONS = (ABORTED, ANALYSIS_FAILED)
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 10_000


class PrometheusError(ShipwayError):
    """Prometheus could not be asked or did not answer as its HTTP API documents."""

    exit_code = 1


@dataclass(frozen=True)
class RolloutEvent:
    """One event on one Rollout, at the end of the step it was counted in."""

    namespace: str
    name: str
    reason: str
    time: float


def step_for(start: float, end: float) -> float:
    """The coarsest step that keeps the range query under Prometheus's point limit, at least a minute."""
    return max(60.0, float(int((end - start) / MAX_POINTS) + 1))


def query(prometheus: str, start: float, end: float) -> list[RolloutEvent]:
    """Every counted failure and completion in the window, one query_range call."""
    step = step_for(start, end)
    reasons = "|".join((*FAILURE_REASONS, COMPLETED))
    promql = (f'sum by (namespace, name, reason) (increase({EVENTS}{{reason=~"{reasons}"}}[{int(step)}s]))'
              " > 0")
    params = urllib.parse.urlencode({"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                     "step": f"{int(step)}s"})
    url = f"{prometheus.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - the user's own Prometheus URL
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise PrometheusError(f"cannot query Prometheus at {prometheus}: {error}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus at {prometheus} refused the query: {body.get('error', body)}")
    events = []
    for series in body["data"]["result"]:
        labels = series["metric"]
        for moment, value in series["values"]:
            if float(value) > 0:
                events.append(RolloutEvent(labels.get("namespace", ""), labels.get("name", ""),
                                           labels.get("reason", ""), float(moment)))
    return sorted(events, key=lambda event: event.time)


def apply(deployments: list[Deployment], events: list[RolloutEvent]) -> int:
    """Fail each deployment whose Rollout aborted or failed analysis before the next deployment; count them."""
    by_rollout: dict[tuple[str, str], list[RolloutEvent]] = defaultdict(list)
    for event in events:
        by_rollout[(event.namespace, event.name)].append(event)
    timelines: dict[tuple[str, str], list[Deployment]] = defaultdict(list)
    for item in sorted(deployments, key=lambda item: item.deployed_at):
        timelines[(item.namespace, item.model)].append(item)
    failed = 0
    for rollout, timeline in timelines.items():
        seen = by_rollout.get(rollout, [])
        for index, item in enumerate(timeline):
            until = timeline[index + 1].deployed_at if index + 1 < len(timeline) else float("inf")
            failure = next((event for event in seen if event.reason in FAILURE_REASONS
                            and item.deployed_at <= event.time < until), None)
            if failure is None:
                continue
            restored = next((event for event in seen if event.reason == COMPLETED and event.time > failure.time), None)
            was_failed = item.failed_at is not None
            item.fail(failure.time, f"rollout {failure.reason}", restored.time if restored else None,
                      f"{rollout[0]}/{rollout[1]} {COMPLETED}" if restored else None)
            failed += int(not was_failed)
    return failed
