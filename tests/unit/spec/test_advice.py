"""`shipway validate` warnings: legal blueprints that are likely wrong are reported at file:line and still pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipway.cli import app
from shipway.spec import blueprint_warnings, load_blueprint

REPO = Path(__file__).resolve().parents[3]
EKS = (REPO / "blueprints" / "eks-prod.yaml").read_text()


def _warnings(tmp_path: Path, text: str) -> list:
    path = tmp_path / "blueprint.yaml"
    path.write_text(text)
    return blueprint_warnings(path, load_blueprint(path))


@pytest.mark.parametrize("name", ["kind-dev", "eks-prod", "gke-prod"])
def test_the_examples_raise_no_warnings(name):
    path = REPO / "blueprints" / f"{name}.yaml"
    assert blueprint_warnings(path, load_blueprint(path)) == []


def test_private_only_endpoint_without_a_note_warns(tmp_path):
    private = EKS.replace("    publicEndpoint: true\n    publicAccessCidrs: [203.0.113.0/24]\n", "    publicEndpoint: false\n")
    [warning] = _warnings(tmp_path, private)
    assert warning.path == "cluster.network.publicEndpoint" and "private-only" in warning.message
    assert warning.line == private.splitlines().index("    publicEndpoint: false") + 1
    noted = private.replace("    publicEndpoint: false\n",
                            "    publicEndpoint: false\n    privateAccess: CI runs in the VPC\n")
    assert _warnings(tmp_path, noted) == []


@pytest.mark.parametrize(("cidrs", "path"), [
    ("    publicAccessCidrs: [0.0.0.0/0]\n", "cluster.network.publicAccessCidrs[0]"),
    ("    publicAccessCidrs: [203.0.113.0/24, 0.0.0.0/0]\n", "cluster.network.publicAccessCidrs[1]"),
    ("", "cluster.network.publicEndpoint"),
])
def test_an_endpoint_open_to_the_internet_warns(tmp_path, cidrs, path):
    """A demanding platform engineer wants the public EKS endpoint narrowed, not a flag that says "yes, open":
    an acknowledgement field would make the open endpoint a one-line habit, while an unlisted address range is
    the safe failure (a copy of the example that keeps the documentation range cannot reach the API, rather
    than exposing it). So the example names RFC 5737's 203.0.113.0/24 (a placeholder that routes nowhere) and
    raises no warning; 0.0.0.0/0, or no publicAccessCidrs (which EKS reads as 0.0.0.0/0), warns at its line."""
    text = EKS.replace("    publicAccessCidrs: [203.0.113.0/24]\n", cidrs)
    [warning] = _warnings(tmp_path, text)
    assert warning.path == path and "any address on the internet" in warning.message
    assert "publicAccessCidrs" in warning.hint
    line = "    publicEndpoint: true" if not cidrs else cidrs.rstrip("\n")
    assert warning.line == text.splitlines().index(line) + 1


def test_on_demand_p5_without_a_reservation_warns(tmp_path):
    text = EKS.replace("    capacityReservations: [cr-0123456789abcdef0]   # on-demand p5 capacity comes reserved\n", "")
    [warning] = _warnings(tmp_path, text)
    assert warning.path == "nodePools[2].capacityReservations" and "p5.48xlarge" in warning.message
    spot = text.replace("    diskSizeGiB: 1000\n", "    diskSizeGiB: 1000\n    spot: true\n")
    assert _warnings(tmp_path, spot) == []


@pytest.mark.parametrize(("instance", "claimed", "found"), [
    ("g5.2xlarge", "l4", "carries a10g"),
    ("m6i.xlarge", "a10g", "not one Shipway knows"),
    ("p4d.24xlarge", "h100-80gb", "carries a100-40gb"),
])
def test_gpu_pool_whose_instance_lacks_its_gpu_warns(tmp_path, instance, claimed, found):
    text = EKS.replace("    instanceType: g5.2xlarge\n    gpu: {model: a10g, count: 1}",
                       f"    instanceType: {instance}\n    gpu: {{model: {claimed}, count: 1}}")
    [warning] = _warnings(tmp_path, text)
    assert warning.path == "nodePools[1].gpu.model" and found in warning.message


def test_gke_machine_types_are_checked_too():
    from shipway.spec.gpus import gpu_of_instance

    assert gpu_of_instance("gke", "g2-standard-8").name == "l4"
    assert gpu_of_instance("gke", "a2-highgpu-1g").name == "a100-40gb"
    assert gpu_of_instance("gke", "a3-ultragpu-8g").name == "h200-141gb"
    assert gpu_of_instance("gke", "e2-standard-8") is None


def test_validate_prints_warnings_and_passes(tmp_path):
    path = tmp_path / "blueprint.yaml"
    path.write_text(EKS.replace("    publicEndpoint: true\n    publicAccessCidrs: [203.0.113.0/24]\n",
                                "    publicEndpoint: false\n"))
    result = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"] is True and report["problems"] == []
    [warning] = report["warnings"]
    assert warning["path"] == "cluster.network.publicEndpoint" and warning["line"] == 16
    table = CliRunner().invoke(app, ["validate", str(path)])
    assert table.exit_code == 0 and "warning:" in table.output and "1 warning(s)" in table.output


def test_retraining_with_no_team_repository_listed_warns(tmp_path):
    """The trigger refuses what no team lists (teams[].retrainRepositories), so retraining would start nothing."""
    listed = "    retrainRepositories:\n      github: [fraud/*]\n"
    assert listed in EKS
    text = EKS.replace(listed, "")
    [warning] = _warnings(tmp_path, text)
    assert warning.path == "observability.retraining" and "refuses every model's retrain" in warning.message
    assert warning.line == text.splitlines().index("    githubTokenSecret: retrainGithubToken") + 1  # the block
