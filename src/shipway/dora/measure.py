"""One call from a GitOps clone (and optionally Prometheus) to the DORA report."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from shipway.dora import rollouts
from shipway.dora.history import DoraInputError, read_history
from shipway.dora.metrics import DoraReport, Window, compute, parse_window

DEFAULT_ENVIRONMENT = "prod"


def production(repo: Path) -> tuple[str, str]:
    """The environment DORA measures (the platform's last) and the branch Argo CD syncs, from platform.json."""
    try:
        profile = json.loads((repo / "platform.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        profile = {}
    environments = profile.get("environments") if isinstance(profile, dict) else None
    gitops = (profile.get("gitops") if isinstance(profile, dict) else None) or {}
    environment = str(environments[-1]) if isinstance(environments, list) and environments else DEFAULT_ENVIRONMENT
    return environment, str(gitops.get("revision") or "main")


def synced_ref(repo: Path, branch: str) -> str:
    """The synced branch, its remote-tracking copy, or HEAD in a clone that has neither."""
    for ref in (branch, f"refs/remotes/origin/{branch}"):
        found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                               capture_output=True, timeout=30, check=False)
        if found.returncode == 0:
            return ref
    return "HEAD"


def measure(repo: Path, since: str = "90d", until: float | None = None, environment: str | None = None,
            prometheus: str | None = None, team: str | None = None, model: str | None = None) -> DoraReport:
    """The four keys of the GitOps history of `repo` over the window ending `until` (now by default)."""
    if not (repo / ".git").exists() and not repo.joinpath("HEAD").is_file():
        raise DoraInputError(f"--gitops-repo {repo} is not a git clone; clone the GitOps repository and pass its path")
    measured, branch = production(repo)
    end = time.time() if until is None else until
    window = Window(end - parse_window(since), end)
    ref = synced_ref(repo, branch)
    history = read_history(repo, ref)
    sources = [f"git log of {ref} ({history.commits} commits)"]
    environment = environment or measured
    if prometheus is not None:
        chosen = [item for item in history.deployments if item.environment == environment]
        events = rollouts.query(prometheus, window.start, window.end)
        rollouts.apply(chosen, events)
        sources.append(f"Argo Rollouts metrics from {prometheus} ({len(events)} events)")
    return compute(history, environment, window, str(repo), team, model, sources)
