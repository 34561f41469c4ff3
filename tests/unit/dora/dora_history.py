"""A GitOps history with known answers, made by the real `promote` and real git merges and reverts at set times.

Production (prod) over the 28 days from T0:

| model | deployment | source commit | lands | what happens |
|---|---|---|---|---|
| fraud/churn | 1.0.0 | T0 | T0+1d | lead 1d |
| fraud/churn | 1.1.0 | T0+2d | T0+2d2h | lead 2h; rolled back to 1.0.0 at T0+2d5h (restore 3h) |
| fraud/churn | 1.0.0 | - | T0+2d5h | the rollback: not a change |
| fraud/churn | 1.2.0 | T0+7d | T0+7d30m | lead 30m |
| search/ranker | 1 | T0+1d | T0+1d4h | lead 4h |
| search/ranker | 2 | T0+10d | T0+10d1h | lead 1h; its merge reverted at T0+10d1h20m (restore 20m) |
| search/ranker | 3 | T0+14d | T0+15d | lead 1d |
| search/ranker | 4 | T0+20d | T0+20d6h | lead 6h; Argo aborts it at T0+20d7h, completes at T0+20d9h |

Plus fraud/churn 0.9.0 landed 10 days before T0 (outside the window) and staging promotions (not production).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipway.delivery.gitops_repo import init_gitops
from shipway.delivery.promote import GateVerdict, promote
from shipway.dora.trailers import SourceCommit
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint
from shipway.spec.model import ModelSpec

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
HOUR, DAY = 3600, 86400
UNTIL = T0 + 28 * DAY
# Argo Rollouts events of search/ranker 4 in prod, for the Prometheus half.
ABORTED_AT = T0 + 20 * DAY + 7 * HOUR
COMPLETED_AT = T0 + 20 * DAY + 9 * HOUR

EXPECTED_GIT = {
    "deployments": 7, "lead_time_median": 4 * HOUR, "failures": 2, "restore_median": (3 * HOUR + 20 * 60) / 2,
    "rollbacks": 1, "reverts": 1,
}


def profile() -> dict[str, Any]:
    """The kind-dev platform: environments staging then prod, teams fraud and search."""
    return platform_profile(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))


def spec(name: str, team: str, version: str) -> ModelSpec:
    """A small canary sklearn model."""
    return ModelSpec.model_validate({"name": name, "team": team, "version": version, "runtime": "sklearn",
                                     "rollout": {"strategy": "canary"}})


def _at(moment: float) -> dict[str, str]:
    stamp = datetime.fromtimestamp(moment, UTC).isoformat()
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def _git(repo: Path, moment: float, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True, env={**os.environ, **_at(moment)}).stdout


def _promote(repo: Path, name: str, team: str, version: str, environment: str, source: float | None,
             committed: float, landed: float) -> str:
    """Promote on a branch at `committed`, merge it into main with --no-ff at `landed`; the merge's sha."""
    old = {key: os.environ.get(key) for key in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    os.environ.update(_at(committed))
    try:
        stamp = datetime.fromtimestamp(source, UTC).isoformat() if source is not None else None
        done = promote(spec(name, team, version), profile(), repo, environment,
                       GateVerdict("pass", "gate-report.json", model=name, version=version), force=True,
                       source=SourceCommit(f"{int(source or 0):040x}", stamp) if stamp else None)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _git(repo, landed, "checkout", "--quiet", "main")
    _git(repo, landed, "merge", "--quiet", "--no-ff", "-m", f"Merge {done.branch}", done.branch)
    # As a forge does on merge, so a later promotion of the same version starts a fresh branch.
    _git(repo, landed, "branch", "--quiet", "-D", done.branch)
    return _git(repo, landed, "rev-parse", "HEAD").strip()


def build(repo: Path) -> Path:
    """Write the history above into a new GitOps repository at `repo`."""
    init_gitops(repo, profile(), json.dumps(profile()))
    p = _promote
    p(repo, "churn", "fraud", "0.9.0", "prod", T0 - 11 * DAY, T0 - 10 * DAY, T0 - 10 * DAY + 60)
    p(repo, "churn", "fraud", "1.0.0", "staging", T0, T0 + 3 * HOUR, T0 + 4 * HOUR)
    p(repo, "churn", "fraud", "1.0.0", "prod", T0, T0 + 20 * HOUR, T0 + DAY)
    p(repo, "ranker", "search", "1", "prod", T0 + DAY, T0 + DAY + 3 * HOUR, T0 + DAY + 4 * HOUR)
    p(repo, "churn", "fraud", "1.1.0", "prod", T0 + 2 * DAY, T0 + 2 * DAY + HOUR, T0 + 2 * DAY + 2 * HOUR)
    p(repo, "churn", "fraud", "1.0.0", "prod", None, T0 + 2 * DAY + 4 * HOUR, T0 + 2 * DAY + 5 * HOUR)
    p(repo, "churn", "fraud", "1.2.0", "prod", T0 + 7 * DAY, T0 + 7 * DAY + 10 * 60, T0 + 7 * DAY + 30 * 60)
    merge = p(repo, "ranker", "search", "2", "prod", T0 + 10 * DAY, T0 + 10 * DAY + 30 * 60, T0 + 10 * DAY + HOUR)
    _git(repo, T0 + 10 * DAY + HOUR + 20 * 60, "revert", "--no-edit", "-m", "1", merge)
    p(repo, "ranker", "search", "3", "prod", T0 + 14 * DAY, T0 + 14 * DAY + HOUR, T0 + 15 * DAY)
    p(repo, "ranker", "search", "4", "prod", T0 + 20 * DAY, T0 + 20 * DAY + HOUR, T0 + 20 * DAY + 6 * HOUR)
    return repo


def rollout_events_openmetrics() -> str:
    """Argo Rollouts' rollout_events_total for ranker in prod around its abort, one sample a minute (OpenMetrics)."""
    lines = ["# HELP rollout_events_total Count of rollout events", "# TYPE rollout_events_total counter"]
    start, end = int(ABORTED_AT - 3 * HOUR), int(COMPLETED_AT + 3 * HOUR)
    for reason, at, kind in (("RolloutAborted", ABORTED_AT, "Warning"), ("RolloutCompleted", COMPLETED_AT, "Normal")):
        for moment in range(start, end, 60):
            value = 1 if moment >= at else 0
            lines.append(f'rollout_events_total{{namespace="search-prod",name="ranker",type="{kind}",'
                         f'reason="{reason}"}} {value} {moment}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
