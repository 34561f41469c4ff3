"""Delivery through the platform: a sample model syncs from a local GitOps repo, and a bad canary is aborted.

The GitOps repo is a bare repo on the runner, served to the cluster by `git daemon`
in a container on kind's docker network. The sample model is written in the
GitOps layout (apps/<env>/<team>/<model>) as a Rollout with an analysis step.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

from smoke_support import PAUSE_IMAGE, Cluster, restricted_container, run, tool_problem, wait_until

pytestmark = pytest.mark.smoke

GIT_CONTAINER = "shipway-smoke-git"
GIT_IMAGE = "alpine/git:2.47.2"
CHECK_IMAGE = "busybox:1.37"
MODEL = "smoke-model"
ARGOCD = "argocd"
GROUP, VERSION = "argoproj.io", "v1alpha1"


@dataclass(frozen=True)
class GitopsRepo:
    """A working clone on the runner and the URL the cluster fetches it from."""

    clone: Path
    url: str

    def commit(self, path: str, documents: list[dict[str, Any]], message: str) -> None:
        """Write the documents to path in the repo and push them."""
        target = self.clone / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        git = ["git", "-C", str(self.clone), "-c", "user.name=smoke", "-c", "user.email=smoke@shipway.dev"]
        run([*git, "add", "-A"])
        run([*git, "commit", "-m", message])
        run([*git, "push", "origin", "HEAD:main"])


@pytest.fixture(scope="module")
def gitops_repo(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitopsRepo]:
    """A bare repo served by git daemon on kind's docker network; the container is removed afterwards."""
    problem = tool_problem("docker")
    if problem:
        pytest.skip(f"the GitOps repo container needs {problem}")
    root = tmp_path_factory.mktemp("gitops")
    run(["git", "init", "--bare", "--initial-branch=main", str(root / "gitops.git")])
    run(["git", "clone", str(root / "gitops.git"), str(root / "clone")])
    subprocess.run(["docker", "rm", "-f", GIT_CONTAINER], capture_output=True, timeout=60)
    run(["docker", "run", "-d", "--name", GIT_CONTAINER, "--network", "kind", "-v", f"{root}:/srv/git:ro",
         GIT_IMAGE, "-c", "safe.directory=*", "daemon", "--reuseaddr", "--export-all", "--base-path=/srv/git",
         "/srv/git"], timeout=300)
    try:
        server = testinfra.get_host(f"docker://{GIT_CONTAINER}")
        wait_until(lambda: server.run("git ls-remote git://127.0.0.1/gitops.git").rc == 0, 60, "git daemon to serve")
        address = run(["docker", "inspect", "-f", "{{.NetworkSettings.Networks.kind.IPAddress}}", GIT_CONTAINER])
        yield GitopsRepo(clone=root / "clone", url=f"git://{address.stdout.strip()}/gitops.git")
    finally:
        subprocess.run(["docker", "rm", "-f", GIT_CONTAINER], capture_output=True, timeout=60)


def analysis_template() -> dict[str, Any]:
    """Passes when the version under analysis is `good`: a stand-in for the model circuit breakers."""
    check = restricted_container(
        "check", CHECK_IMAGE,
        {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        command=["sh", "-c", 'test "{{args.version}}" = good'],
    )
    job = {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [check]}}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AnalysisTemplate",
        "metadata": {"name": f"{MODEL}-check"},
        "spec": {"args": [{"name": "version"}],
                 "metrics": [{"name": "version-is-good", "provider": {"job": {"spec": job}}}]},
    }


def rollout(version: str) -> dict[str, Any]:
    """The sample model as a canary Rollout whose analysis judges `version`."""
    server = restricted_container(
        "model", PAUSE_IMAGE,
        {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
    )
    labels = {"app.kubernetes.io/name": MODEL}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Rollout",
        "metadata": {"name": MODEL},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": {**labels, "shipway.dev/version": version}},
                         "spec": {"containers": [server]}},
            "strategy": {"canary": {"steps": [
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": f"{MODEL}-check"}],
                              "args": [{"name": "version", "value": version}]}},
            ]}},
        },
    }


@pytest.fixture(scope="module")
def model_app(cluster: Cluster, blueprint: Any, custom: Any, gitops_repo: GitopsRepo) -> Iterator[tuple[str, str]]:
    """The sample model's Argo CD Application, syncing apps/<env>/<team>/<model>; deleted afterwards."""
    team = blueprint.teams[0]
    environment = blueprint.team_environments(team)[0]
    namespace = team.namespace(environment)
    path = f"{blueprint.gitops.path}/{environment}/{team.name}/{MODEL}"
    gitops_repo.commit(f"{path}/model.yaml", [analysis_template(), rollout("good")], "promote smoke-model good")
    application = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
        "metadata": {"name": f"smoke-{MODEL}", "namespace": ARGOCD},
        "spec": {
            "project": "default",
            "source": {"repoURL": gitops_repo.url, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", application)
    yield f"smoke-{MODEL}", namespace
    custom.delete_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", f"smoke-{MODEL}")


def refresh(custom: Any, name: str) -> None:
    """Ask Argo CD to look at the repo now instead of at its next poll."""
    patch = {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", name, patch)


def rollout_status(custom: Any, namespace: str) -> dict[str, Any]:
    try:
        return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", MODEL).get("status", {})
    except Exception:  # noqa: BLE001 - absent until Argo CD has synced it
        return {}


def test_a_promoted_model_syncs_and_its_rollout_becomes_healthy(custom: Any, model_app: tuple[str, str]) -> None:
    name, namespace = model_app
    refresh(custom, name)

    def synced() -> str | None:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", name).get("status", {})
        return status.get("sync", {}).get("status") if status.get("sync", {}).get("status") == "Synced" else None

    wait_until(synced, timeout=300, what=f"Application {name} Synced")
    wait_until(lambda: rollout_status(custom, namespace).get("phase") == "Healthy", 300, f"Rollout {MODEL} Healthy")


def test_a_canary_with_a_bad_version_is_aborted_by_analysis(
    custom: Any, model_app: tuple[str, str], gitops_repo: GitopsRepo, blueprint: Any
) -> None:
    name, namespace = model_app
    wait_until(lambda: rollout_status(custom, namespace).get("phase") == "Healthy", 300, f"Rollout {MODEL} Healthy")
    team = blueprint.teams[0]
    environment = blueprint.team_environments(team)[0]
    path = f"{blueprint.gitops.path}/{environment}/{team.name}/{MODEL}/model.yaml"
    gitops_repo.commit(path, [analysis_template(), rollout("bad")], "promote smoke-model bad")
    refresh(custom, name)

    status = wait_until(
        lambda: (s := rollout_status(custom, namespace)).get("abort") and s, 420, f"Rollout {MODEL} aborted"
    )
    assert status["phase"] == "Degraded"
    runs = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "analysisruns")["items"]
    assert any(item.get("status", {}).get("phase") == "Failed" for item in runs)
