"""Promotion into a real git repository: branch, commit, idempotence, each refusal, two models at once."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery_cases import model
from shipway.delivery.errors import PromotionRefused
from shipway.delivery.gitops_repo import init_gitops
from shipway.delivery.promote import GateVerdict, promote, read_gate_report
from shipway.spec.model import ModelSpec



def passed(spec: ModelSpec) -> GateVerdict:
    """A passing gate report about exactly this model and version."""
    return GateVerdict("pass", "gate-report.json", model=spec.name, version=spec.version)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture()
def repo(tmp_path: Path, kind_profile: dict[str, Any]) -> Path:
    """A fresh GitOps repo made by init-gitops, with a bare origin to push to."""
    path = tmp_path / "gitops"
    init_gitops(path, kind_profile, json.dumps(kind_profile))
    subprocess.run(["git", "init", "--quiet", "--bare", str(tmp_path / "origin.git")], check=True)
    _git(path, "remote", "add", "origin", str(tmp_path / "origin.git"))
    return path


def _merge(repo: Path, branch: str) -> None:
    _git(repo, "checkout", "--quiet", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "merge", "--quiet", "--no-ff", "-m", "merge", branch)


def test_init_gitops_makes_the_applicationset_layout(repo: Path) -> None:
    assert sorted(_git(repo, "ls-files").split()) == [
        "CODEOWNERS", "README.md", "apps/prod/.gitkeep", "apps/staging/.gitkeep", "platform.json"]
    assert "apps/<environment>/<team>/<model>/" in (repo / "README.md").read_text()
    assert _git(repo, "branch", "--show-current").strip() == "main"


def test_promotion_commits_the_rendered_folder_on_a_branch(repo: Path, kind_profile: dict) -> None:
    spec = model("canary-sklearn")
    done = promote(spec, kind_profile, repo, "staging", passed(spec))
    assert done.changed and done.branch == "promote/staging/churn-1.2.0"
    assert _git(repo, "branch", "--show-current").strip() == done.branch
    assert _git(repo, "rev-parse", "HEAD").strip() == done.commit
    folder = repo / "apps" / "staging" / "fraud" / "churn"
    assert sorted(p.name for p in folder.iterdir()) == [
        "horizontalpodautoscaler-churn.yaml", "httproute-churn.yaml",
        "poddisruptionbudget-churn.yaml", "rollout-churn.yaml", "service-churn-canary.yaml", "service-churn-feedback.yaml",
        "service-churn-metrics.yaml", "service-churn-stable.yaml", "service-churn.yaml", "servicemonitor-churn.yaml"]
    rollout = yaml.safe_load((folder / "rollout-churn.yaml").read_text())
    assert rollout["metadata"]["labels"]["shipway.dev/version"] == "1.2.0"
    message = _git(repo, "log", "-1", "--format=%B")
    assert message.startswith("Promote churn 1.2.0 to staging (gate: pass)")
    assert "replaces: nothing (first deployment)" in message
    changed = _git(repo, "diff", "--name-only", "main", "HEAD").split()
    assert changed and all(path.startswith("apps/staging/fraud/churn/") for path in changed)
    assert _git(repo, "status", "--porcelain") == ""


def test_promoting_the_same_version_twice_changes_nothing(repo: Path, kind_profile: dict) -> None:
    first = promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")))
    head = _git(repo, "rev-parse", "HEAD")
    again = promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")))
    assert not again.changed and again.commit is None
    assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "rev-list", "--count", first.branch) == "2\n"
    _merge(repo, first.branch)
    merged = promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")))
    assert not merged.changed and _git(repo, "branch", "--show-current").strip() == "main"


def test_the_next_version_names_the_one_it_replaces_for_the_analysis(repo: Path, kind_profile: dict) -> None:
    _merge(repo, promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn"))).branch)
    done = promote(model("canary-sklearn").with_version("1.3.0"), kind_profile, repo, "staging", passed(model("canary-sklearn").with_version("1.3.0")))
    assert done.previous_version == "1.2.0" and "replaces: 1.2.0" in _git(repo, "log", "-1", "--format=%B")
    rollout = yaml.safe_load((repo / done.folder / "rollout-churn.yaml").read_text())
    args = {a["name"]: a["value"] for a in rollout["spec"]["strategy"]["canary"]["analysis"]["args"]}
    assert (args["canary-version"], args["stable-version"]) == ("1.3.0", "1.2.0")


def test_prod_is_refused_for_a_version_not_yet_in_staging(repo: Path, kind_profile: dict) -> None:
    spec = model("canary-sklearn")
    with pytest.raises(PromotionRefused, match=r"churn 1.2.0 is not in staging yet \(the model is not deployed"):
        promote(spec, kind_profile, repo, "prod", passed(spec))
    staging = promote(spec, kind_profile, repo, "staging", passed(spec))
    # On a branch, not merged, is not "in staging": Argo CD syncs main.
    with pytest.raises(PromotionRefused, match="not in staging yet"):
        promote(spec, kind_profile, repo, "prod", passed(spec))
    _merge(repo, staging.branch)
    with pytest.raises(PromotionRefused, match=r"it runs 1.2.0 there"):
        promote(spec.with_version("1.4.0"), kind_profile, repo, "prod", passed(spec.with_version("1.4.0")))
    done = promote(spec, kind_profile, repo, "prod", passed(spec))
    assert done.changed and done.branch == "promote/prod/churn-1.2.0"


def test_force_promotes_to_prod_without_staging(repo: Path, kind_profile: dict) -> None:
    done = promote(model("sklearn-none"), kind_profile, repo, "prod", passed(model("sklearn-none")), force=True)
    assert done.changed and (repo / "apps/prod/fraud/churn-basic/rollout-churn-basic.yaml").is_file()


def test_a_failed_gate_report_is_refused(repo: Path, kind_profile: dict, tmp_path: Path) -> None:
    report = tmp_path / "gate-report.json"
    report.write_text(json.dumps({"schema": "shipway.dev/gate-report/v1", "passed": False,
                                  "reasons": ["accuracy interval lower bound -0.04 is below -0.02"]}))
    verdict = read_gate_report(report)
    with pytest.raises(PromotionRefused, match="failed churn 1.2.0: accuracy interval lower bound"):
        promote(model("canary-sklearn"), kind_profile, repo, "staging", verdict)
    assert _git(repo, "branch", "--list", "promote/*") == ""


def test_a_file_that_is_not_a_gate_report_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps({"passed": True}))
    with pytest.raises(PromotionRefused, match="not a Shipway gate report"):
        read_gate_report(tmp_path / "other.json")


def test_no_gate_report_is_refused_unless_no_gate_is_given() -> None:
    with pytest.raises(PromotionRefused, match="no gate report.*--no-gate"):
        read_gate_report(None)
    skipped = read_gate_report(None, no_gate=True)
    assert skipped.result == "skipped" and skipped.describe() == "skipped (--no-gate)"


def test_uncommitted_changes_and_non_repositories_are_refused(repo: Path, kind_profile: dict,
                                                              tmp_path: Path) -> None:
    (repo / "notes.txt").write_text("half-done work")
    with pytest.raises(PromotionRefused, match="uncommitted changes"):
        promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")))
    with pytest.raises(PromotionRefused, match="is not a git clone"):
        promote(model("canary-sklearn"), kind_profile, tmp_path / "nowhere", "staging", passed(model("canary-sklearn")))


def test_two_models_promoted_at_once_to_one_environment_are_both_kept(repo: Path, kind_profile: dict) -> None:
    specs = [model("canary-sklearn"), model("blue-green-xgboost").with_version("2.1.0")]
    results: dict[str, Any] = {}

    def run(spec: Any) -> None:
        results[spec.name] = promote(spec, kind_profile, repo, "staging", passed(spec))

    threads = [threading.Thread(target=run, args=(spec,)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(results) == {"churn", "fraud-score"} and all(r.changed for r in results.values())
    for result in results.values():
        _merge(repo, result.branch)
    assert (repo / "apps/staging/fraud/churn/rollout-churn.yaml").is_file()
    assert (repo / "apps/staging/fraud/fraud-score/rollout-fraud-score.yaml").is_file()


def test_push_sends_the_branch_to_origin(repo: Path, kind_profile: dict, tmp_path: Path) -> None:
    done = promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")), push=True)
    assert done.pushed
    remote = subprocess.run(["git", "-C", str(tmp_path / "origin.git"), "rev-parse", done.branch],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert remote == done.commit


def test_a_promotion_waiting_for_the_lock_judges_the_tree_once_it_holds_it(repo: Path, kind_profile: dict) -> None:
    import fcntl
    import time

    from shipway.delivery.promote import LOCK_FILE

    results: dict[str, Any] = {}

    def run() -> None:
        try:
            results["done"] = promote(model("canary-sklearn"), kind_profile, repo, "staging", passed(model("canary-sklearn")))
        except PromotionRefused as error:
            results["refused"] = error

    # Another promotion holds the lock and is halfway through writing its folder.
    with open(repo / ".git" / LOCK_FILE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        (repo / "apps" / "staging" / "half-written.yaml").write_text("kind: Rollout\n")
        waiting = threading.Thread(target=run)
        waiting.start()
        time.sleep(1.0)
        (repo / "apps" / "staging" / "half-written.yaml").unlink()
        fcntl.flock(held, fcntl.LOCK_UN)
    waiting.join(timeout=60)
    assert "refused" not in results, results.get("refused")
    assert results["done"].changed


def _state(repo: Path) -> dict[str, str]:
    """Everything a failed promotion must leave as it found: branch, commits, index, files, work trees."""
    return {
        "head": _git(repo, "symbolic-ref", "--short", "HEAD"),
        "refs": _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "index": _git(repo, "ls-files", "--stage"),
        "status": _git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        "files": "\n".join(sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.parts)),
        "worktrees": _git(repo, "worktree", "list", "--porcelain"),
    }


def _hook(repo: Path, body: str) -> Path:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\n{body}\n")
    hook.chmod(0o755)
    return hook


def test_a_refusing_pre_commit_hook_leaves_no_trace(repo: Path, kind_profile: dict) -> None:
    before = _state(repo)
    hook = _hook(repo, "echo 'policy: no' >&2; exit 1")
    spec = model("canary-sklearn")
    with pytest.raises(PromotionRefused, match="policy: no"):
        promote(spec, kind_profile, repo, "staging", passed(spec))
    assert _state(repo) == before
    hook.unlink()
    assert promote(spec, kind_profile, repo, "staging", passed(spec)).changed


def test_an_unwritable_path_leaves_no_trace(repo: Path, kind_profile: dict) -> None:
    # A file where the team's folder must go: the model's folder cannot be written.
    (repo / "apps" / "staging" / "fraud").write_text("not a folder\n")
    _git(repo, "add", "--all")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "block")
    before = _state(repo)
    spec = model("canary-sklearn")
    with pytest.raises(OSError):
        promote(spec, kind_profile, repo, "staging", passed(spec))
    assert _state(repo) == before


def test_a_failed_push_leaves_no_trace(repo: Path, kind_profile: dict) -> None:
    _git(repo, "remote", "set-url", "origin", str(repo.parent / "no-such-remote.git"))
    before = _state(repo)
    spec = model("canary-sklearn")
    with pytest.raises(PromotionRefused, match="git push"):
        promote(spec, kind_profile, repo, "staging", passed(spec), push=True)
    assert _state(repo) == before


def test_a_promotion_killed_between_steps_leaves_no_trace(repo: Path, kind_profile: dict, tmp_path: Path) -> None:
    """SIGKILL while the commit is being made (its pre-commit hook is running): nothing can clean up after it."""
    import os
    import signal
    import sys
    import time

    before = _state(repo)
    marker = tmp_path / "hook-running"
    hook = _hook(repo, f"touch {marker}; sleep 60")
    (tmp_path / "platform.json").write_text(json.dumps(kind_profile))
    spec_file = Path(__file__).parent / "models" / "canary-sklearn.yaml"
    child = subprocess.Popen(
        [sys.executable, "-m", "shipway", "promote", str(spec_file), "--gitops-repo", str(repo), "--env", "staging",
         "--platform", str(tmp_path / "platform.json"), "--no-gate", "--artifact-digest", "sha256:" + "d" * 64],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the promotion never reached its commit"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    after = _state(repo)
    assert {key: after[key] for key in after if key != "worktrees"} == {
        key: before[key] for key in before if key != "worktrees"}
    hook.unlink()
    spec = model("canary-sklearn")
    assert promote(spec, kind_profile, repo, "staging", passed(spec)).changed
    # The next promotion cleared the scratch tree the killed one left.
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_init_gitops_writes_codeowners_binding_each_team_folder_to_its_owners(tmp_path: Path,
                                                                               kind_profile: dict) -> None:
    """Finding 6: whoever could merge into the shared GitOps repo could deploy into any team's namespaces."""
    profile = json.loads(json.dumps(kind_profile))
    profile["teams"]["fraud"]["codeOwners"] = ["@acme/fraud-ml", "lead@acme.example"]
    profile["teams"]["search"]["codeOwners"] = []
    init_gitops(tmp_path / "gitops", profile)
    lines = (tmp_path / "gitops" / "CODEOWNERS").read_text().splitlines()
    assert "/apps/*/fraud/ @acme/fraud-ml lead@acme.example" in lines
    assert not [line for line in lines if line.startswith("/apps/*/search/")]
    assert any(line.startswith("# search: no codeOwners") for line in lines)
    assert "Require review from Code Owners" in (tmp_path / "gitops" / "README.md").read_text()
