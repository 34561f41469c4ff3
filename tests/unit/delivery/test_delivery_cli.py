"""The delivery commands through typer: render, promote and init-gitops, with exit codes for bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from delivery_cases import MODELS
from shipway.cli.delivery import register
from shipway.files import write_tree

app = typer.Typer()
register(app)
runner = CliRunner()


def _platform(tmp_path: Path, profile: dict[str, Any]) -> Path:
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(profile))
    return path


def test_render_writes_one_file_per_object(tmp_path: Path, kind_profile: dict) -> None:
    platform = str(_platform(tmp_path, kind_profile))
    result = runner.invoke(app, ["render", str(MODELS / "canary-sklearn.yaml"), "--platform", platform,
                                 "--env", "staging", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "rendered churn 1.2.0 for staging: 10 objects" in result.output
    assert (tmp_path / "out" / "rollout-churn.yaml").is_file()
    assert (tmp_path / "out" / "httproute-churn.yaml").is_file()


def test_render_refusals_and_bad_specs_exit_2(tmp_path: Path, kind_profile: dict) -> None:
    platform = str(_platform(tmp_path, kind_profile))
    refused = runner.invoke(app, ["render", str(MODELS / "llm-vllm-mig.yaml"), "--platform", platform,
                                  "--env", "staging", "-o", str(tmp_path / "out")])
    assert refused.exit_code == 2 and 'team: "llm" is not a team' in refused.output
    bad = tmp_path / "model.yaml"
    bad.write_text("name: churn\nteam: fraud\nversion: 1.0.0\nruntime: sklearn\nreplicas: {min: 0}\n")
    invalid = runner.invoke(app, ["render", str(bad), "--platform", platform, "--env", "staging", "-o", "x"])
    assert invalid.exit_code == 2 and "model.yaml:5:" in invalid.output and "replicas.min" in invalid.output
    (tmp_path / "junk.json").write_text("{}")
    wrong = runner.invoke(app, ["render", str(MODELS / "sklearn-none.yaml"), "--platform",
                                str(tmp_path / "junk.json"), "--env", "staging", "-o", "x"])
    assert wrong.exit_code == 2 and "not a Shipway platform profile" in wrong.output
    missing = runner.invoke(app, ["render", str(MODELS / "sklearn-none.yaml"), "--platform",
                                  str(tmp_path / "missing.json"), "--env", "staging", "-o", "x"])
    assert missing.exit_code == 2 and "cannot read the platform profile" in missing.output
    tag = runner.invoke(app, ["render", str(MODELS / "canary-sklearn.yaml"), "--platform", platform, "--env",
                              "staging", "--artifact-digest", "latest", "-o", "x"])
    assert tag.exit_code == 2 and "expected sha256: and 64 hex digits" in tag.output


def test_render_by_digest_is_what_promote_commits(tmp_path: Path, kind_profile: dict) -> None:
    """By digest, a model on the platform registry mounts its model through the node cache's CSI volume, as the
    pods promote commits do; by tag an init container pulls it (a tag can move; the cache keys by digest)."""
    import yaml

    platform = str(_platform(tmp_path, kind_profile))
    digest = "sha256:" + "ab" * 32
    command = ["render", str(MODELS / "canary-sklearn.yaml"), "--platform", platform, "--env", "staging"]
    by_digest = runner.invoke(app, [*command, "--artifact-digest", digest, "-o", str(tmp_path / "digest")])
    by_tag = runner.invoke(app, [*command, "-o", str(tmp_path / "tag")])
    assert by_digest.exit_code == 0 and by_tag.exit_code == 0, by_digest.output + by_tag.output
    pod = yaml.safe_load((tmp_path / "digest" / "rollout-churn.yaml").read_text())["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "model")
    assert volume["csi"]["volumeAttributes"]["artifact"].endswith(f"@{digest}")
    assert "initContainers" not in pod or not any(c["name"] == "fetch" for c in pod["initContainers"])
    tagged = yaml.safe_load((tmp_path / "tag" / "rollout-churn.yaml").read_text())["spec"]["template"]["spec"]
    assert "csi" not in next(v for v in tagged["volumes"] if v["name"] == "model")
    assert tagged["initContainers"]


def test_init_gitops_then_promote_with_version_and_gate_report(tmp_path: Path, kind_profile: dict) -> None:
    gitops = tmp_path / "gitops"
    created = runner.invoke(app, ["init-gitops", str(gitops), "--platform", str(_platform(tmp_path, kind_profile))])
    assert created.exit_code == 0, created.output
    model_dir = tmp_path / "repo"
    (model_dir / "build" / "gate").mkdir(parents=True)
    (model_dir / "model.yaml").write_text((MODELS / "sklearn-none.yaml").read_text())
    report = model_dir / "build" / "gate" / "gate-report.json"
    judged = {"name": "churn-basic", "version": "abc1234", "artifactDigest": None}
    report.write_text(json.dumps({"schema": "shipway.dev/gate-report/v1", "passed": True, "reasons": [],
                                  "model": judged}))
    args = ["promote", str(model_dir / "model.yaml"), "--gitops-repo", str(gitops), "--env", "staging",
            "--artifact-digest", "sha256:" + "d" * 64, "--version", "abc1234"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "on branch promote/staging/churn-basic-abc1234 (gate: pass)" in done.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to do" in again.output
    # A passing report about abc1234 does not stand for abc9999.
    other = runner.invoke(app, [*args[:-1], "abc9999"])
    assert other.exit_code == 1 and "judged churn-basic abc1234, not churn-basic abc9999" in other.output
    report.write_text(json.dumps({"schema": "shipway.dev/gate-report/v1", "passed": False, "reasons": ["worse"],
                                  "model": {**judged, "version": "abc9999"}}))
    failed = runner.invoke(app, [*args[:-1], "abc9999"])
    assert failed.exit_code == 1 and "failed churn-basic abc9999: worse" in failed.output
    report.unlink()
    missing = runner.invoke(app, [*args[:-1], "abc7777"])
    assert missing.exit_code == 1 and "no gate report" in missing.output and "--no-gate" in missing.output
    skipped = runner.invoke(app, [*args[:-1], "abc7777", "--no-gate"])
    assert skipped.exit_code == 0, skipped.output
    body = subprocess.run(["git", "-C", str(gitops), "log", "-1", "--format=%B", "promote/staging/churn-basic-abc7777"],
                          capture_output=True, text=True, check=True).stdout
    assert "gate: skipped (--no-gate)" in body
    log = subprocess.run(["git", "-C", str(gitops), "log", "-1", "--format=%s", "promote/staging/churn-basic-abc1234"],
                         capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "Promote churn-basic abc1234 to staging (gate: pass)"


def test_init_gitops_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "existing.txt").write_text("x")
    result = runner.invoke(app, ["init-gitops", str(tmp_path)])
    assert result.exit_code == 1 and "is not empty" in result.output


def test_render_replaces_the_output_so_no_stale_object_lingers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "horizontalpodautoscaler-stale.yaml").write_text("kind: HorizontalPodAutoscaler\n")
    write_tree({"rollout-x.yaml": "kind: Rollout\n", "sub/service-x.yaml": "kind: Service\n"}, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "rollout-x.yaml", "sub/service-x.yaml"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="outside"):
        write_tree({"../escape.yaml": "x"}, out)
