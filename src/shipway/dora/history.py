"""The GitOps history as deployment events: promotions, reverts and rollbacks, read with one `git log`.

A promotion is a commit carrying Shipway's trailers (see `trailers`). It is deployed when it lands on the
branch Argo CD syncs: its own time on that branch's first-parent line, or the time of the merge that brought
it in. A revert (`git revert`, "This reverts commit X") of a promotion, or of the merge that landed it, fails
that deployment and restores service when it lands. A promotion to a version older than the one running is
a rollback: it fails the deployment it replaces and restores service; it is not itself counted as a change.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from shipway.dora import trailers
from shipway.errors import ShipwayError

_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,64})")
# One record per commit (-z ends each with NUL), fields split by US. The trailers are read from the message's
# last paragraph here, as git-interpret-trailers reads them: asking git to format them costs more than the log.
_FORMAT = "%H%x1f%P%x1f%ct%x1f%B"
_MARKER = trailers.MODEL + ":"
_MISSING = (None, "", trailers.NONE)


class DoraInputError(ShipwayError):
    """An input `shipway dora` cannot use: no clone, an unreadable history, a malformed window."""

    exit_code = 2


@dataclass
class Deployment:
    """One promotion that landed on the synced branch, and what later happened to it."""

    commit: str
    model: str
    team: str
    environment: str
    namespace: str
    version: str
    replaces: str | None
    deployed_at: float
    source_commit: str | None
    source_time: float | None
    gate: str
    artifact_digest: str | None
    rollback: bool = False
    failed_at: float | None = None
    failure: str | None = None
    restored_at: float | None = None
    restored_by: str | None = None

    @property
    def lead_time(self) -> float | None:
        """Seconds from the model repo's commit to this deployment, when the source time is recorded."""
        return None if self.source_time is None else max(0.0, self.deployed_at - self.source_time)

    @property
    def time_to_restore(self) -> float | None:
        """Seconds from the failure to the restoring change, when both are known."""
        if self.failed_at is None or self.restored_at is None:
            return None
        return max(0.0, self.restored_at - self.failed_at)

    def fail(self, at: float, why: str, restored_at: float | None, restored_by: str | None) -> None:
        """Mark the deployment failed, keeping the earliest failure."""
        if self.failed_at is not None and self.failed_at <= at:
            return
        self.failed_at, self.failure, self.restored_at, self.restored_by = at, why, restored_at, restored_by


@dataclass
class History:
    """Every deployment on the synced branch, oldest first, and the reverts found."""

    deployments: list[Deployment] = field(default_factory=list)
    reverts: int = 0
    commits: int = 0


@dataclass
class _Commit:
    sha: str
    parents: list[str]
    time: float
    trailers: dict[str, str]
    reverts: str | None


def git_log(repo: Path, ref: str) -> Iterator[str]:
    """The whole history of `ref` in one git call, one record per commit as git writes them.

    Records are parsed while git is still writing the rest, so the two share the machine's cores.
    """
    if not repo.is_dir():
        raise DoraInputError(f"--gitops-repo {repo} is not a directory; pass a clone of the GitOps repository")
    try:
        process = subprocess.Popen(["git", "-C", str(repo), "log", "-z", f"--format={_FORMAT}", ref, "--"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise DoraInputError("git is not installed; shipway dora reads the GitOps history with git") from None
    assert process.stdout is not None and process.stderr is not None
    with process:
        pending = b""
        while chunk := process.stdout.read(1 << 20):
            *records, pending = (pending + chunk).split(b"\0")
            yield from (record.decode("utf-8", "replace") for record in records)
        if pending:
            yield pending.decode("utf-8", "replace")
        problem = process.stderr.read().decode("utf-8", "replace").strip()
    if process.returncode != 0:
        hint = "; it has no commits yet (shipway init-gitops makes the first)" if "bad revision" in problem else ""
        raise DoraInputError(f"cannot read the history of {ref} in {repo}: {problem}{hint}")


def _parse(records: Iterable[str]) -> dict[str, _Commit]:
    commits: dict[str, _Commit] = {}
    for record in records:
        if not record.strip():
            continue
        sha, parents, time, body = record.split("\x1f", 3)
        found: dict[str, str] = {}
        start = body.rfind(_MARKER)
        if start >= 0 and (start == 0 or body[start - 1] == "\n"):
            # The last block of Shipway trailers, up to the paragraph's end.
            for line in body[start:].split("\n\n", 1)[0].splitlines():
                key, colon, value = line.partition(":")
                if colon and key.startswith("Shipway-"):
                    found[key] = value.strip()
        reverted = _REVERTS.search(body) if "This reverts commit" in body else None
        sha = sha.lstrip("\n")
        commits[sha] = _Commit(sha, parents.split(), float(time), found, reverted.group(1) if reverted else None)
    return commits


def _landing(commits: dict[str, _Commit], head: str) -> tuple[list[str], dict[str, float], dict[str, list[str]]]:
    """Commits in landing order, when each landed on the first-parent line, and what each merge brought in."""
    line = []
    cursor: str | None = head
    while cursor is not None and cursor in commits:
        line.append(cursor)
        parents = commits[cursor].parents
        cursor = parents[0] if parents else None
    line.reverse()
    landed: dict[str, float] = {}
    order: list[str] = []
    brought: dict[str, list[str]] = {}
    for sha in line:
        commit = commits[sha]
        merged: list[str] = []
        stack = list(commit.parents[1:])
        while stack:
            other = stack.pop()
            if other in landed or other not in commits:
                continue
            landed[other] = commit.time
            merged.append(other)
            stack.extend(commits[other].parents)
        # Branch commits in their own commit order, before the merge itself.
        merged.sort(key=lambda item: commits[item].time)
        order += merged
        brought[sha] = merged
        landed[sha] = commit.time
        order.append(sha)
    return order, landed, brought


def _seconds(iso: str | None) -> float | None:
    if not iso or iso == trailers.NONE:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _value(found: dict[str, str], key: str) -> str | None:
    value = found.get(key)
    return None if value in (None, "", trailers.NONE) else value


def read_history(repo: Path, ref: str = "HEAD") -> History:
    """Deployments, reverts and rollbacks from one `git log` of the synced branch."""
    return build_history(git_log(repo, ref))


def build_history(records: Iterable[str] | str) -> History:
    """The history from `git log -z` output in this module's format (whole, or as records)."""
    commits = _parse(records.split("\0") if isinstance(records, str) else records)
    if not commits:
        return History()
    head = next(iter(commits))  # git log lists the tip first
    order, landed, brought = _landing(commits, head)
    history = History(commits=len(commits))
    by_commit: dict[str, Deployment] = {}
    by_target: dict[tuple[str, str], _Timeline] = defaultdict(_Timeline)
    for sha in order:
        commit = commits[sha]
        found = commit.trailers
        if found and all(found.get(key) not in _MISSING for key in trailers.REQUIRED):
            model, environment = found[trailers.MODEL], found[trailers.ENVIRONMENT]
            deployment = Deployment(
                commit=sha, model=model, team=found[trailers.TEAM], environment=environment,
                namespace=_value(found, trailers.NAMESPACE) or f"{found[trailers.TEAM]}-{environment}",
                version=found[trailers.VERSION], replaces=_value(found, trailers.REPLACES),
                deployed_at=landed[sha], source_commit=_value(found, trailers.SOURCE_COMMIT),
                source_time=_seconds(found.get(trailers.SOURCE_TIME)), gate=found.get(trailers.GATE, "unknown"),
                artifact_digest=_value(found, trailers.ARTIFACT_DIGEST),
            )
            _place(deployment, by_target[(model, environment)])
            by_commit[sha] = deployment
            history.deployments.append(deployment)
        elif commit.reverts is not None:
            target = _resolve(commit.reverts, commits)
            victims = [by_commit[item] for item in [target, *brought.get(target or "", [])] if item in by_commit]
            if victims:
                history.reverts += 1
            for victim in victims:
                victim.fail(victim.deployed_at, "reverted", landed[sha], sha)
                _reinstate(victim, by_target[(victim.model, victim.environment)])
    return history


def _resolve(prefix: str, commits: dict[str, _Commit]) -> str | None:
    if prefix in commits:
        return prefix
    matches = [sha for sha in commits if sha.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


class _Timeline:
    """One model's deployments in one environment, and when each version first ran."""

    def __init__(self) -> None:
        self.running: list[Deployment] = []
        self.first_seen: dict[str, float] = {}


def _place(deployment: Deployment, timeline: _Timeline) -> None:
    """Add a deployment to its model's timeline; one to a version older than the running one is a rollback."""
    running = timeline.running[-1] if timeline.running else None
    first_seen = timeline.first_seen
    if running is not None and deployment.version in first_seen and running.version != deployment.version \
            and first_seen[deployment.version] < first_seen[running.version]:
        deployment.rollback = True
        running.fail(running.deployed_at, f"rolled back to {deployment.version}", deployment.deployed_at,
                     deployment.commit)
    timeline.running.append(deployment)
    first_seen.setdefault(deployment.version, deployment.deployed_at)


def _reinstate(victim: Deployment, timeline: _Timeline) -> None:
    """After a revert the model runs what the reverted promotion replaced, as far as rollbacks are concerned."""
    if timeline.running and timeline.running[-1] is victim:
        timeline.running.pop()
        # A reverted version never ran, so promoting it again later is a change, not a rollback.
        earlier = [item.deployed_at for item in timeline.running if item.version == victim.version]
        if earlier:
            timeline.first_seen[victim.version] = min(earlier)
        else:
            timeline.first_seen.pop(victim.version, None)
