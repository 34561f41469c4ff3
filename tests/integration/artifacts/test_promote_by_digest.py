"""Promote resolves the version's tag to its manifest digest against a real registry and commits the digest.

Issue #16 finding 4: tags are mutable and pods pulled by tag, so whoever could move a tag changed what ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shipway.cli import app
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def _model_repo(root: Path, weights: bytes) -> Path:
    (root / "artifact").mkdir(parents=True, exist_ok=True)
    (root / "artifact" / "model.joblib").write_bytes(weights)
    (root / "model.yaml").write_text("name: churn-basic\nteam: fraud\nversion: 1.0.0\nruntime: sklearn\n"
                                     "rollout: {strategy: none}\n")
    return root


def _committed_reference(gitops: Path) -> str:
    """The artifact the committed pod runs: its node-cache CSI volume's `artifact` (kind-dev runs the node cache),
    else what its fetch init container pulls."""
    rollout = yaml.safe_load((gitops / "apps/staging/fraud/churn-basic/rollout-churn-basic.yaml").read_text())
    pod = rollout["spec"]["template"]["spec"]
    csi = [volume["csi"] for volume in pod.get("volumes", []) if "csi" in volume]
    if csi:
        return str(csi[0]["volumeAttributes"]["artifact"])
    [fetch] = pod["initContainers"]
    return str(fetch["command"][3])


def test_promote_commits_the_digest_and_a_moved_tag_changes_nothing_that_runs(auth_registry, tmp_path: Path) -> None:
    profile = platform_profile(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))
    (tmp_path / "platform.json").write_text(json.dumps(profile))
    gitops = tmp_path / "gitops"
    assert runner.invoke(app, ["init-gitops", str(gitops), "--platform", str(tmp_path / "platform.json")]).exit_code == 0
    repo = _model_repo(tmp_path / "repo", b"gated weights" * 100)
    env = {"SHIPWAY_REGISTRY_USERNAME": auth_registry.username, "SHIPWAY_REGISTRY_PASSWORD": auth_registry.password}
    ref = auth_registry.ref("fraud/churn-basic", "1.0.0")
    pushed = runner.invoke(app, ["model", "push", str(repo / "artifact"), ref, "--plain-http"], env=env)
    assert pushed.exit_code == 0, pushed.output
    digest = pushed.output.split("@")[1].split()[0]
    assert digest.startswith("sha256:")

    promoted = runner.invoke(app, ["promote", str(repo / "model.yaml"), "--gitops-repo", str(gitops), "--env",
                                   "staging", "--no-gate", "--registry-address", auth_registry.host, "--plain-http"],
                             env=env)
    assert promoted.exit_code == 0, promoted.output
    committed = _committed_reference(gitops)
    assert committed == f"oci://{profile['registry']['url']}/fraud/churn-basic@{digest}"

    # Someone moves the tag to other content; the committed reference still names what was promoted.
    (repo / "artifact" / "model.joblib").write_bytes(b"other weights" * 100)
    moved = runner.invoke(app, ["model", "push", str(repo / "artifact"), ref, "--plain-http", "--force"], env=env)
    assert moved.exit_code == 0, moved.output
    assert digest not in moved.output
    pinned = committed.replace(profile["registry"]["url"], auth_registry.host)
    pulled = runner.invoke(app, ["model", "pull", pinned, str(tmp_path / "pulled"), "--plain-http"], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "pulled" / "model.joblib").read_bytes() == b"gated weights" * 100


def test_promote_refuses_a_version_that_was_never_pushed(auth_registry, tmp_path: Path) -> None:
    profile = platform_profile(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))
    (tmp_path / "platform.json").write_text(json.dumps(profile))
    gitops = tmp_path / "gitops"
    runner.invoke(app, ["init-gitops", str(gitops), "--platform", str(tmp_path / "platform.json")])
    repo = _model_repo(tmp_path / "repo", b"w")
    env = {"SHIPWAY_REGISTRY_USERNAME": auth_registry.username, "SHIPWAY_REGISTRY_PASSWORD": auth_registry.password}
    result = runner.invoke(app, ["promote", str(repo / "model.yaml"), "--gitops-repo", str(gitops), "--env",
                                 "staging", "--no-gate", "--registry-address", auth_registry.host, "--plain-http"],
                           env=env)
    assert result.exit_code == 1, result.output
    assert "names nothing in the registry" in result.output
    assert not (gitops / "apps/staging/fraud").exists()
