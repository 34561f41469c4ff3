"""The four keys per model, team and platform, and the DORA performance band each falls in.

Bands follow the performance clusters of DORA's Accelerate State of DevOps report 2023:
deployment frequency elite on demand (here: at least daily), high daily to weekly, medium weekly to
monthly; lead time for changes elite under a day, high under a week, medium under a month; change
failure rate elite 5%, high 10%, medium 15%; failed deployment recovery time elite under an hour,
high under a day, medium under a week. Anything slower is low. Lead time and time to restore are
medians, as DORA reports them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipway.dora.history import Deployment, DoraInputError, History

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
MONTH = 30 * DAY
_UNITS = {"s": 1.0, "m": 60.0, "h": HOUR, "d": DAY, "w": WEEK, "y": 365 * DAY}


class Band(StrEnum):
    """DORA performance cluster; `none` where there is nothing to measure."""

    ELITE = "elite"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


def parse_window(text: str) -> float:
    """`90d`, `12w`, `36h` or `1d12h` as seconds; anything else is an input error."""
    parts = re.findall(r"(\d+)([smhdwy])", text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise DoraInputError(f'--since "{text}" is not a duration; give one like 90d, 12w or 36h')
    seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise DoraInputError(f'--since "{text}" is empty; give a positive duration like 90d')
    return seconds


def frequency_band(per_day: float, deployments: int) -> Band:
    """Deployments per day: daily or more is elite (on demand), weekly high, monthly medium."""
    if deployments == 0:
        return Band.NONE
    if per_day >= 1:
        return Band.ELITE
    if per_day >= 1 / 7:
        return Band.HIGH
    if per_day >= 1 / 30:
        return Band.MEDIUM
    return Band.LOW


def lead_time_band(seconds: float | None) -> Band:
    """Median commit-to-production time: under a day elite, a week high, a month medium."""
    return _under(seconds, (DAY, WEEK, MONTH))


def restore_band(seconds: float | None) -> Band:
    """Median time to restore: under an hour elite, a day high, a week medium."""
    return _under(seconds, (HOUR, DAY, WEEK))


def failure_rate_band(rate: float | None) -> Band:
    """Share of deployments that failed: 5% elite, 10% high, 15% medium."""
    if rate is None:
        return Band.NONE
    for bound, band in ((0.05, Band.ELITE), (0.10, Band.HIGH), (0.15, Band.MEDIUM)):
        if rate <= bound + 1e-12:
            return band
    return Band.LOW


def _under(seconds: float | None, bounds: tuple[float, float, float]) -> Band:
    if seconds is None:
        return Band.NONE
    for bound, band in zip(bounds, (Band.ELITE, Band.HIGH, Band.MEDIUM)):
        if seconds < bound:
            return band
    return Band.LOW


@dataclass(frozen=True)
class Keys:
    """The four keys for one scope (a model, a team, or the platform), with their bands and counts."""

    scope: str
    name: str
    deployments: int
    per_day: float
    lead_time_median: float | None
    failures: int
    change_failure_rate: float | None
    restore_median: float | None
    restores: int
    unrestored: int
    rollbacks: int
    reverts: int
    aborts: int

    @property
    def bands(self) -> dict[str, Band]:
        """Each key's band."""
        return {"deployment_frequency": frequency_band(self.per_day, self.deployments),
                "lead_time": lead_time_band(self.lead_time_median),
                "change_failure_rate": failure_rate_band(self.change_failure_rate),
                "time_to_restore": restore_band(self.restore_median)}

    def to_dict(self) -> dict[str, Any]:
        """The keys for JSON: seconds and fractions, unrounded, with bands."""
        return {
            "scope": self.scope, "name": self.name,
            "deployments": self.deployments, "deployments_per_day": self.per_day,
            "lead_time_median_seconds": self.lead_time_median,
            "failed_deployments": self.failures, "change_failure_rate": self.change_failure_rate,
            "time_to_restore_median_seconds": self.restore_median, "restores": self.restores,
            "unrestored_failures": self.unrestored,
            "rollbacks": self.rollbacks, "reverts": self.reverts, "aborted_rollouts": self.aborts,
            "bands": {key: band.value for key, band in self.bands.items()},
        }


@dataclass(frozen=True)
class Window:
    """The period measured: [start, end) in Unix seconds."""

    start: float
    end: float

    @property
    def days(self) -> float:
        """Its length in days."""
        return (self.end - self.start) / DAY

    def __contains__(self, moment: float) -> bool:
        return self.start <= moment < self.end


def keys_for(scope: str, name: str, deployments: Sequence[Deployment], window: Window) -> Keys:
    """The four keys over the deployments of one scope (rollbacks included, counted apart)."""
    changes = [item for item in deployments if not item.rollback and item.deployed_at in window]
    failures = [item for item in changes if item.failed_at is not None]
    # A failure counts toward time to restore when it happened in the window, whatever change it hit.
    failed_here = [item for item in deployments if item.failed_at is not None and item.failed_at in window]
    restores = [item.time_to_restore for item in failed_here if item.time_to_restore is not None]
    lead_times = [item.lead_time for item in changes if item.lead_time is not None]
    return Keys(
        scope=scope, name=name, deployments=len(changes), per_day=len(changes) / window.days,
        lead_time_median=statistics.median(lead_times) if lead_times else None,
        failures=len(failures), change_failure_rate=len(failures) / len(changes) if changes else None,
        restore_median=statistics.median(restores) if restores else None, restores=len(restores),
        unrestored=sum(1 for item in failed_here if item.restored_at is None),
        rollbacks=sum(1 for item in deployments if item.rollback and item.deployed_at in window),
        reverts=sum(1 for item in failed_here if item.failure == "reverted"),
        aborts=sum(1 for item in failed_here if (item.failure or "").startswith("rollout ")),
    )


@dataclass(frozen=True)
class DoraReport:
    """The keys for the platform, each team and each model, over one window and environment."""

    repository: str
    environment: str
    window: Window
    platform: Keys
    teams: tuple[Keys, ...]
    models: tuple[Keys, ...]
    deployments: tuple[Deployment, ...]
    sources: tuple[str, ...]

    def weekly(self) -> list[dict[str, Any]]:
        """Deployments and failed deployments per week of the window, oldest first (what the chart draws)."""
        weeks = max(1, int(-(-(self.window.end - self.window.start) // WEEK)))
        rows = [{"week_start": self.window.start + index * WEEK, "deployments": 0, "failed": 0}
                for index in range(weeks)]
        for item in self.deployments:
            if item.rollback or item.deployed_at not in self.window:
                continue
            row = rows[min(weeks - 1, int((item.deployed_at - self.window.start) // WEEK))]
            row["deployments"] += 1
            row["failed"] += int(item.failed_at is not None)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The whole report for machines."""
        return {
            "schema": "shipway.dev/dora-report/v1",
            "repository": self.repository, "environment": self.environment,
            "window": {"start": iso(self.window.start), "end": iso(self.window.end), "days": self.window.days},
            "sources": list(self.sources),
            "platform": self.platform.to_dict(),
            "teams": [keys.to_dict() for keys in self.teams],
            "models": [keys.to_dict() for keys in self.models],
            "weekly": [{**row, "week_start": iso(row["week_start"])} for row in self.weekly()],
        }


def iso(moment: float) -> str:
    """A Unix time as ISO 8601 UTC with a Z."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def compute(history: History, environment: str, window: Window, repository: str, team: str | None = None,
            model: str | None = None, sources: Iterable[str] = ()) -> DoraReport:
    """The report for one environment (production, normally), optionally narrowed to a team or a model."""
    chosen = [item for item in history.deployments if item.environment == environment
              and (team is None or item.team == team) and (model is None or item.model == model)]
    platform_name = "platform" if team is None and model is None else f"{team or ''}{'/' if team and model else ''}{model or ''}"
    grouped = _group(chosen, lambda item: item.team)
    by_model = _group(chosen, lambda item: f"{item.team}/{item.model}")
    return DoraReport(
        repository=repository, environment=environment, window=window,
        platform=keys_for("platform", platform_name, chosen, window),
        teams=tuple(keys_for("team", name, items, window) for name, items in sorted(grouped.items())),
        models=tuple(keys_for("model", name, items, window) for name, items in sorted(by_model.items())),
        deployments=tuple(chosen), sources=tuple(sources),
    )


def _group(items: Iterable[Deployment], key: Callable[[Deployment], str]) -> dict[str, list[Deployment]]:
    groups: dict[str, list[Deployment]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
