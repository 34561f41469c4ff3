"""Each check against real stand-in tools on PATH: too old, broken, unreachable, not needed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import testinfra

from shipway import catalog
from shipway.doctor import Status, Target, run_checks
from shipway.doctor.checks import CheckResult, check_context, check_tool, parse_version
from shipway.doctor.requirements import TOOLS, ToolRequirement

TOOL = {tool.name: tool for tool in TOOLS}


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory put first on PATH, for stand-in tools."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def write_tool(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("local://")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0", ((1, 32, 4), "v1.32.4-dispatcher")),
        ("Docker version 28.2.2, build e6534b4", ((28, 2, 2), "28.2.2")),
        ("kind v0.24.0 go1.22.6 linux/amd64", ((0, 24, 0), "v0.24.0")),
        ("v3.16.2+g13654a5", ((3, 16, 2), "v3.16.2+g13654a5")),
        ("v3.130", ((3, 130, 0), "v3.130")),
        ("no version here", None),
    ],
)
def test_parse_version_reads_what_each_tool_prints(output: str, expected) -> None:
    assert parse_version(output) == expected


def test_a_tool_older_than_the_minimum_is_too_old_and_says_how_to_upgrade(bin_dir: Path, host) -> None:
    write_tool(bin_dir, "kind", "echo 'kind v0.10.0 go1.15.7 linux/amd64'")
    result = check_tool(host, TOOL["kind"], Target(), "linux", "x86_64")
    assert (result.status, result.found, result.needed) == (Status.TOO_OLD, "v0.10.0", True)
    assert result.fix.startswith("upgrade kind: ")
    # The kind release the catalog's node image was built for.
    assert "kind-linux-amd64" in result.fix and catalog.KIND_VERSION in result.fix


def test_a_tool_at_the_minimum_is_ok(bin_dir: Path, host) -> None:
    write_tool(bin_dir, "pulumi", "echo v3.130.0")
    result = check_tool(host, TOOL["pulumi"], Target(), "linux", "x86_64")
    assert (result.status, result.found, result.fix) == (Status.OK, "v3.130.0", "")


def test_a_tool_that_exits_non_zero_fails_with_its_message(bin_dir: Path, host) -> None:
    write_tool(bin_dir, "helm", "echo 'helm: cannot execute binary file' >&2; exit 126")
    result = check_tool(host, TOOL["helm"], Target(), "linux", "x86_64")
    assert result.status is Status.FAIL
    assert result.detail == "`helm version --short` exited 126: helm: cannot execute binary file"
    # helm is optional, so even a broken one does not block.
    assert not result.blocking


def test_a_tool_that_prints_no_version_fails(bin_dir: Path, host) -> None:
    write_tool(bin_dir, "kubectl", "echo '{}'")
    result = check_tool(host, TOOL["kubectl"], Target(), "linux", "x86_64")
    assert result.status is Status.FAIL and result.blocking
    assert "no version" in result.detail


def test_a_missing_tool_names_the_install_command_for_the_system(host) -> None:
    absent = ToolRequirement(
        name="shipway-no-such-tool",
        minimum=(1, 2, 3),
        version_command="shipway-no-such-tool --version",
        purpose="is never installed",
        install_linux="sudo apt-get install shipway-no-such-tool={version_bare}",
        install_darwin="brew install shipway-no-such-tool",
    )
    linux = check_tool(host, absent, Target(), "linux", "x86_64")
    darwin = check_tool(host, absent, Target(), "darwin", "arm64")
    assert (linux.status, linux.fix) == (Status.MISSING, "sudo apt-get install shipway-no-such-tool=1.2.3")
    assert darwin.fix == "brew install shipway-no-such-tool"
    assert linux.blocking


def test_kind_and_docker_are_not_needed_for_a_cloud_cluster(host) -> None:
    report = run_checks(host, Target(cluster_kind="eks"))
    results = report.by_name()
    for name in ("kind", "docker", "docker engine"):
        assert not results[name].needed, name
    assert results["memory"].status is Status.SKIPPED and results["disk"].status is Status.SKIPPED
    assert results["pulumi"].needed and results["kubectl"].needed


KUBECTL_OK = CheckResult("kubectl", Status.OK, "v1.31.0", ">= v1.29.0", "", True)


def fake_kubectl(directory: Path, contexts: str, cluster_info_rc: int) -> None:
    write_tool(
        directory,
        "kubectl",
        f"""case "$*" in
  "config get-contexts -o name") printf '{contexts}' ;;
  *cluster-info*) echo "$*" > "{directory}/cluster-info-args"
      if [ {cluster_info_rc} -eq 0 ]; then echo 'Kubernetes control plane is running at https://127.0.0.1:6443';
      else echo 'Unable to connect to the server: connection refused' >&2; exit 1; fi ;;
esac""",
    )


def test_a_named_context_that_answers_is_ok_and_bounded_by_a_timeout(bin_dir: Path, host) -> None:
    fake_kubectl(bin_dir, "kind-a\\nprod\\n", 0)
    result = check_context(host, KUBECTL_OK, Target(cluster_kind="existing", context="prod"))
    assert (result.status, result.found, result.needed) == (Status.OK, "reachable", True)
    assert (bin_dir / "cluster-info-args").read_text().split() == [
        "--context",
        "prod",
        "--request-timeout=5s",
        "cluster-info",
    ]


def test_a_named_context_that_does_not_answer_fails_with_kubectls_error(bin_dir: Path, host) -> None:
    fake_kubectl(bin_dir, "prod\\n", 1)
    result = check_context(host, KUBECTL_OK, Target(cluster_kind="existing", context="prod"))
    assert (result.status, result.found) == (Status.FAIL, "unreachable")
    assert "connection refused" in result.detail and "kubectl --context prod cluster-info" in result.fix


def test_a_context_missing_from_the_kubeconfig_fails_before_any_request(bin_dir: Path, host) -> None:
    fake_kubectl(bin_dir, "kind-a\\n", 0)
    result = check_context(host, KUBECTL_OK, Target(cluster_kind="existing", context="prod"))
    assert result.status is Status.FAIL and result.blocking
    assert result.detail == "context 'prod' is not in the kubeconfig"
    assert not (bin_dir / "cluster-info-args").exists()


def test_a_named_context_is_skipped_not_passed_when_kubectl_is_missing(host) -> None:
    kubectl = CheckResult("kubectl", Status.MISSING, "", ">= v1.29.0", "install", True)
    result = check_context(host, kubectl, Target(cluster_kind="existing", context="prod"))
    assert (result.status, result.detail) == (Status.SKIPPED, "kubectl is missing")


def test_a_kind_context_not_created_yet_is_skipped_with_how_to_create_it(bin_dir: Path, host) -> None:
    fake_kubectl(bin_dir, "other\\n", 0)
    target = Target(cluster_kind="kind", context="kind-dev", kind_cluster="dev")
    result = check_context(host, KUBECTL_OK, target)
    assert (result.status, result.blocking) == (Status.SKIPPED, False)
    assert "kind create cluster --name dev" in result.detail


def test_a_kind_context_that_exists_must_answer(bin_dir: Path, host) -> None:
    fake_kubectl(bin_dir, "kind-dev\\n", 1)
    target = Target(cluster_kind="kind", context="kind-dev", kind_cluster="dev")
    assert check_context(host, KUBECTL_OK, target).blocking
