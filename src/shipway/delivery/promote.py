"""Promotion: write a model's rendered objects into a GitOps clone and commit them on a pull-request branch.

Git is driven through the `git` command, so hooks, credentials and config behave as they do for people.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipway.delivery.errors import PromotionRefused
from shipway.delivery.placement import Profile
from shipway.delivery import pull_request
from shipway.delivery.render import artifact_reference, file_name, render
from shipway.dora import trailers
from shipway.files import target_path, write_tree
from shipway.spec.model import ModelSpec
from shipway.yamlio import to_yaml

GATE_REPORT_SCHEMA = "shipway.dev/gate-report/v1"
VERSION_LABEL = "shipway.dev/version"
LOCK_FILE = "shipway-promote.lock"
SCRATCH_DIR = "shipway-promote"  # under the git dir: where a promotion's scratch work tree lives
IDENTITY = ("-c", "user.name=Shipway", "-c", "user.email=shipway@localhost")


@dataclass(frozen=True)
class GateVerdict:
    """What the gate report says about the version: pass, fail, or no report."""

    result: str
    source: str | None = None
    reasons: tuple[str, ...] = ()
    model: str | None = None
    version: str | None = None
    artifact_digest: str | None = None

    def describe(self) -> str:
        """The verdict, its report and what that report judged, for the commit message."""
        if self.result == "skipped":
            return "skipped (--no-gate)"
        judged = " ".join(part for part in (self.model, self.version) if part)
        parts = [self.source, f"judged {judged}" if judged else None,
                 f"artifact {self.artifact_digest}" if self.artifact_digest else None]
        detail = ", ".join(part for part in parts if part)
        return f"{self.result} ({detail})" if detail else self.result


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: the branch, the commit (None when nothing changed) and the folder."""

    branch: str
    folder: str
    commit: str | None
    changed: bool
    previous_version: str | None
    gate: GateVerdict
    pushed: bool = False
    base: str = "main"


def read_gate_report(path: Path | None, no_gate: bool = False) -> GateVerdict:
    """The gate's verdict from its JSON report; no report is refused unless the caller said --no-gate."""
    if path is None:
        if not no_gate:
            raise PromotionRefused("no gate report: run `make gate` (build/gate/gate-report.json) or pass "
                                   "--gate-report FILE; --no-gate promotes without one and says so in the commit")
        return GateVerdict("skipped")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PromotionRefused(f"cannot read the gate report {path}: {error}") from None
    if not isinstance(report, dict) or report.get("schema") != GATE_REPORT_SCHEMA or not isinstance(
            report.get("passed"), bool):
        raise PromotionRefused(f"{path} is not a Shipway gate report (schema {GATE_REPORT_SCHEMA} with `passed`)")
    reasons = tuple(str(reason) for reason in report.get("reasons", []))
    judged = report.get("model") if isinstance(report.get("model"), dict) else {}

    def text(key: str) -> str | None:
        value = judged.get(key)
        return str(value) if value is not None else None

    return GateVerdict("pass" if report["passed"] else "fail", str(path), reasons, text("name"), text("version"),
                       text("artifactDigest"))


def check_gate_verdict(gate: GateVerdict, spec: ModelSpec) -> None:
    """Refuse a failed gate, and a report that does not name this model and version: it judged something else."""
    if gate.source is None:
        return
    if gate.model is not None and gate.version is not None and (gate.model, gate.version) != (spec.name,
                                                                                                 spec.version):
        raise PromotionRefused(f"the gate report {gate.source} judged {gate.model} {gate.version}, not "
                               f"{spec.name} {spec.version}; gate this version first "
                               f"(shipway gate ... --model-version {spec.version})")
    if gate.result == "fail":
        reasons = "; ".join(gate.reasons) or "see the report"
        raise PromotionRefused(f"the gate report {gate.source} failed {spec.name} {spec.version}: {reasons}. "
                               "A version that fails its gate is not promoted")
    if gate.model is None or gate.version is None:
        raise PromotionRefused(f"the gate report {gate.source} does not say which model and version it judged; "
                               f"run the gate again with --model model.yaml (and --model-version {spec.version})")


def branch_name(environment: str, spec: ModelSpec) -> str:
    """The pull-request branch of one promotion."""
    return f"promote/{environment}/{spec.name}-{spec.version}"


def model_folder(profile: Profile, environment: str, spec: ModelSpec) -> str:
    """apps/<env>/<team>/<model>, under the GitOps root the ApplicationSet watches."""
    root = (profile.get("gitops") or {}).get("path") or "apps"
    return f"{root}/{environment}/{spec.team}/{spec.name}"


def rendered_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Each object as its own YAML file, named by kind and name."""
    return {file_name(obj): to_yaml(obj) for obj in objects}


def promote(spec: ModelSpec, profile: Profile, repo: Path, environment: str, gate: GateVerdict,
            push: bool = False, force: bool = False, remote: str = "origin",
            source: trailers.SourceCommit | None = None, artifact_digest: str | None = None) -> Promotion:
    """Render the model into the GitOps clone and commit it on promote/<env>/<model>-<version>.

    `artifact_digest` is the manifest digest the version's tag names now (resolve_artifact_digest):
    the committed pods pull by it, so a tag moved later changes nothing that runs.
    """
    check_gate_verdict(gate, spec)
    repo = target_path(repo)
    git = Git(repo)
    git.check_repository()
    with git.lock():
        # Under the lock: a promotion holding it changes the tree, so a check before it would see that as dirty.
        git.check_clean()
        git.discard_scratch_trees()
        revision = str((profile.get("gitops") or {}).get("revision") or "main")
        base = git.deployed_ref(revision)
        folder = model_folder(profile, environment, spec)
        _check_previous_environment(git, base, profile, environment, spec, force)
        previous = git.version_at(base, folder, spec.name)
        objects = render(spec, profile, environment, stable_version=previous, artifact_digest=artifact_digest)
        files = rendered_files(objects)
        branch = branch_name(environment, spec)
        if git.files_at(base, folder) == files:
            # Already deployed as rendered: there is nothing for a pull request to change.
            return Promotion(branch, folder, None, False, previous, gate, base=revision)
        tip = git.tip(branch)
        # The commit is made in a scratch work tree (hooks run there as in any commit), so nothing a failure or
        # a kill interrupts ever touches this clone's branch, index or files.
        with git.scratch_tree(tip or base) as scratch:
            replace_folder(scratch.repo / folder, files)
            scratch.run("add", "--all", "--", folder)
            if not scratch.staged_changes():
                return Promotion(branch, folder, None, False, previous, gate, base=revision)
            scratch.commit(commit_message(spec, environment, gate, previous) + "\n"
                           + promotion_trailers(spec, environment, gate, previous, objects, source))
            commit = scratch.run("rev-parse", "HEAD").strip()
        was = git.head()
        try:
            # The clone was clean, so this moves the branch to the commit and checks it out, or changes nothing.
            git.run("checkout", "--quiet", "-B", branch, commit)
            if push:
                git.run("push", "--set-upstream", remote, branch)
        except BaseException:
            git.restore(was, branch, tip)
            raise
        return Promotion(branch, folder, commit, True, previous, gate, pushed=push, base=revision)


def resolve_artifact_digest(spec: ModelSpec, profile: Profile, registry_address: str | None = None,
                            plain_http: bool = False, credentials: Any = None) -> str:
    """The manifest digest the version's artifact reference names in the registry now.

    `registry_address` is where this machine reaches the platform's registry when that differs from
    the address pods use (CI through the gateway); the reference committed keeps the pods' address.
    """
    from shipway.artifacts.layout import parse_reference
    from shipway.artifacts.registry import RegistryClient

    reference = parse_reference(artifact_reference(spec, profile))
    if reference.digest is not None:
        return reference.digest
    if registry_address:
        reference = type(reference)(registry_address, reference.repository, reference.tag)
    digest = RegistryClient(reference.registry, plain_http=plain_http, credentials=credentials).manifest_digest(
        reference)
    if digest is None:
        raise PromotionRefused(f"{reference} names nothing in the registry: push {spec.name} {spec.version} "
                               "first (make push), then promote it")
    return digest


def next_step(repo: Path, done: Promotion, remote: str = "origin") -> str:
    """What to do after a promotion: push the branch, then open its pull request (a URL on github.com)."""
    url = Git(target_path(repo)).run("remote", "get-url", remote, check=False).strip()
    where = pull_request.compare_url(url, done.base, done.branch) if url else None
    request = f"open the pull request: {where}" if where else (
        f"open a pull request from {done.branch} into {done.base}"
        + (f" (gh pr create --head {done.branch} --base {done.base})" if url else ""))
    if done.pushed:
        return request
    return f"push the branch: git -C {repo} push --set-upstream {remote} {done.branch}; then {request}"


def open_pull_request(repo: Path, done: Promotion, token: str, api: str | None = None,
                      remote: str = "origin") -> pull_request.PullRequest:
    """Open the promotion's pull request on GitHub, titled and described by its commit."""
    git = Git(target_path(repo))
    url = git.run("remote", "get-url", remote).strip()
    title = git.run("log", "-1", "--format=%s", done.commit or done.branch).strip()
    body = git.run("log", "-1", "--format=%b", done.commit or done.branch).strip()
    return pull_request.open_pull_request(url, done.branch, done.base, title, body, token, api)


def commit_message(spec: ModelSpec, environment: str, gate: GateVerdict, previous: str | None) -> str:
    """A subject naming model, version, environment and gate result; details in the body."""
    lines = [
        f"Promote {spec.name} {spec.version} to {environment} (gate: {gate.result})",
        "",
        f"model: {spec.name}",
        f"team: {spec.team}",
        f"version: {spec.version}",
        f"replaces: {previous or 'nothing (first deployment)'}",
        f"environment: {environment}",
        f"gate: {gate.describe()}",
    ]
    return "\n".join(lines) + "\n"


def promotion_trailers(spec: ModelSpec, environment: str, gate: GateVerdict, previous: str | None,
                       objects: list[dict[str, Any]], source: trailers.SourceCommit | None) -> str:
    """The trailers `shipway dora` reads: what was promoted where, from which source commit, through which gate."""
    rollout = next((obj for obj in objects if obj.get("kind") == "Rollout"), {})
    meta = rollout.get("metadata", {})
    artifact = str(meta.get("annotations", {}).get("shipway.dev/artifact", "")) or None
    return trailers.trailer_block({
        trailers.MODEL: spec.name, trailers.TEAM: spec.team, trailers.VERSION: spec.version,
        trailers.ENVIRONMENT: environment, trailers.NAMESPACE: meta.get("namespace"), trailers.REPLACES: previous,
        trailers.SOURCE_COMMIT: source.sha if source else None, trailers.SOURCE_TIME: source.time if source else None,
        trailers.GATE: gate.result, trailers.ARTIFACT: artifact,
        trailers.ARTIFACT_DIGEST: trailers.digest_of(artifact) if artifact else None,
    })


def source_commit(model_dir: Path) -> trailers.SourceCommit | None:
    """The model repository's HEAD commit and its committer time, or None outside a git work tree."""
    try:
        done = subprocess.run(["git", "-C", str(model_dir), "log", "-1", "--format=%H%n%cI"], capture_output=True,
                              text=True, timeout=30, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    return trailers.SourceCommit(lines[0], lines[1]) if done.returncode == 0 and len(lines) == 2 else None


def _check_previous_environment(git: Git, base: str, profile: Profile, environment: str, spec: ModelSpec,
                                force: bool) -> None:
    """The last environment (prod) takes only a version already deployed in the one before it."""
    environments = list(profile.get("environments", []))
    if environment not in environments or environments.index(environment) != len(environments) - 1:
        return
    if len(environments) < 2 or force:
        return
    before = environments[-2]
    found = git.version_at(base, model_folder(profile, before, spec), spec.name)
    if found != spec.version:
        now = f"it runs {found} there" if found else "the model is not deployed there"
        raise PromotionRefused(f"{spec.name} {spec.version} is not in {before} yet ({now}, on {base}); "
                               f"promote it to {before} and merge that first, or pass --force")


def replace_folder(target: Path, files: dict[str, str]) -> None:
    """Swap the folder's contents for the files, so a reader never sees half a model."""
    write_tree(files, target)


class Git:
    """The few git operations promotion needs, each a `git -C REPO ...` call."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def run(self, *args: str, check: bool = True) -> str:
        """Run git and return stdout; a failure becomes a PromotionRefused carrying git's message."""
        try:
            done = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, text=True,
                                  timeout=120, check=False)
        except FileNotFoundError:
            raise PromotionRefused("git is not installed; promotion needs the git command") from None
        if check and done.returncode != 0:
            raise PromotionRefused(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def ok(self, *args: str) -> bool:
        """Whether a git command succeeds."""
        return subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, timeout=120).returncode == 0

    def check_repository(self) -> None:
        """Refuse anything but the work tree of a git repository."""
        if not self.repo.is_dir() or not self.ok("rev-parse", "--is-inside-work-tree"):
            raise PromotionRefused(f"{self.repo} is not a git clone; clone the GitOps repo (or run shipway "
                                   "init-gitops) and pass its path")

    def check_clean(self) -> None:
        """Refuse a work tree with uncommitted changes."""
        dirty = self.run("status", "--porcelain").strip()
        if dirty:
            raise PromotionRefused(f"{self.repo} has uncommitted changes; commit or stash them first:\n{dirty}")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise promotions into one clone, so two at once cannot interleave their git steps."""
        git_dir = Path(self.run("rev-parse", "--absolute-git-dir").strip())
        with open(git_dir / LOCK_FILE, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def deployed_ref(self, revision: str) -> str:
        """The branch Argo CD syncs (the profile's gitops.revision), or HEAD in a repo that lacks it."""
        for ref in (revision, f"refs/remotes/origin/{revision}"):
            if self.ok("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"):
                return ref
        if self.ok("rev-parse", "--verify", "--quiet", "HEAD^{commit}"):
            return "HEAD"
        raise PromotionRefused(f"{self.repo} has no commits; commit a README first (shipway init-gitops does)")

    def branch_exists(self, branch: str) -> bool:
        """Whether the local branch exists."""
        return self.ok("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")

    def files_at(self, ref: str, folder: str) -> dict[str, str]:
        """The folder's files at a commit, by name."""
        names = self.run("ls-tree", "--name-only", f"{ref}:{folder}", check=False).split()
        return {name: self.run("show", f"{ref}:{folder}/{name}") for name in names}

    def version_at(self, ref: str, folder: str, model: str) -> str | None:
        """The model version a folder holds at a commit, read from its Rollout's labels."""
        text = self.run("show", f"{ref}:{folder}/rollout-{model}.yaml", check=False)
        if not text:
            return None
        try:
            labels = (yaml.safe_load(text) or {}).get("metadata", {}).get("labels", {})
        except yaml.YAMLError:
            return None
        version = labels.get(VERSION_LABEL)
        return str(version) if version is not None else None

    def head(self) -> str:
        """What is checked out: a branch's name, or the commit of a detached HEAD."""
        name = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
        return name or self.run("rev-parse", "HEAD").strip()

    def tip(self, branch: str) -> str | None:
        """The commit a local branch points at, or None if there is no such branch."""
        found = self.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False).strip()
        return found or None

    def restore(self, head: str, branch: str, tip: str | None) -> None:
        """Put back what was checked out and where BRANCH pointed (deleting it if it did not exist)."""
        self.run("checkout", "--quiet", "--force", head, check=False)
        if tip is None:
            self.run("branch", "--quiet", "--delete", "--force", branch, check=False)
        else:
            self.run("update-ref", f"refs/heads/{branch}", tip, check=False)

    def _scratch_root(self) -> Path:
        common = Path(self.run("rev-parse", "--git-common-dir").strip())
        return (common if common.is_absolute() else self.repo / common) / SCRATCH_DIR

    def discard_scratch_trees(self) -> None:
        """Remove scratch work trees a killed promotion left (called under the lock, so none is in use)."""
        root = self._scratch_root()
        if root.is_dir():
            for leftover in root.iterdir():
                self.run("worktree", "remove", "--force", str(leftover), check=False)
                shutil.rmtree(leftover, ignore_errors=True)
        self.run("worktree", "prune", check=False)

    @contextlib.contextmanager
    def scratch_tree(self, start: str) -> Iterator[Git]:
        """A detached work tree of START, private to one promotion, removed however the promotion ends."""
        root = self._scratch_root()
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="tree-", dir=root))
        try:
            self.run("worktree", "add", "--quiet", "--force", "--detach", str(path), start)
            yield Git(path)
        finally:
            self.run("worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
            self.run("worktree", "prune", check=False)

    def staged_changes(self) -> bool:
        """Whether the index differs from HEAD."""
        return not self.ok("diff", "--cached", "--quiet")

    def commit(self, message: str) -> None:
        """Commit the index, with a fallback identity where git has none configured."""
        identity = () if self.run("config", "user.email", check=False).strip() else IDENTITY
        self.run(*identity, "commit", "--quiet", "-m", message)
