"""`shipway doctor` on this very machine: it must report what is really present and missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shipway.doctor import Report, Status, Target, diagnose
from shipway.doctor.requirements import DEFAULT_DOCKER_ROOT, GIB, TOOLS


@pytest.fixture(scope="module")
def report() -> Report:
    return diagnose(Target())


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
def test_each_tool_is_reported_as_present_or_missing_exactly_as_path_says(report: Report, tool) -> None:
    result = report.by_name()[tool.name]
    if shutil.which(tool.name) is None:
        assert result.status is Status.MISSING
        assert result.found == ""
        assert result.fix, "a missing tool must come with what to install"
    else:
        assert result.status is not Status.MISSING
        # A present tool either ran and printed a version, or the report says why not.
        assert result.found or result.status is Status.FAIL
    assert result.required == f">= {tool.minimum_text}"


def test_a_present_tool_reports_the_version_it_prints(report: Report) -> None:
    present = [tool for tool in TOOLS if shutil.which(tool.name)]
    if not present:
        pytest.skip("none of pulumi, kubectl, kind, docker, helm is on PATH here")
    for tool in present:
        result = report.by_name()[tool.name]
        if result.status is Status.FAIL:
            continue
        printed = subprocess.run(tool.version_command.split(), capture_output=True, text=True, timeout=30).stdout
        assert result.found in printed, f"{tool.name}: {result.found!r} is not in {printed!r}"


def test_docker_engine_is_reported_as_reachable_exactly_when_docker_info_succeeds(report: Report) -> None:
    result = report.by_name()["docker engine"]
    if shutil.which("docker") is None:
        assert result.status is Status.SKIPPED
        return
    engine_runs = subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0
    assert result.status is (Status.OK if engine_runs else Status.FAIL)
    if not engine_runs:
        assert result.fix and result.detail


def test_memory_is_the_machines_total(report: Report) -> None:
    result = report.by_name()["memory"]
    if report.by_name()["docker engine"].status is Status.OK:
        pytest.skip("the docker engine's memory is reported instead of the host's")
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert result.found == f"{total / GIB:.1f} GiB"
    assert result.status is (Status.OK if total >= 8 * GIB else Status.FAIL)


def test_disk_is_the_free_space_where_docker_keeps_its_data(report: Report) -> None:
    result = report.by_name()["disk"]
    path = Path(DEFAULT_DOCKER_ROOT)
    while not path.exists():
        path = path.parent
    if report.by_name()["docker engine"].status is not Status.OK:
        assert result.detail == f"free on {path}"
    reported = float(result.found.removesuffix(" GiB")) * GIB
    # Other processes write to the disk between the two readings.
    assert abs(reported - shutil.disk_usage(path).free) < GIB


def test_the_report_blocks_on_exactly_what_is_missing_here(report: Report) -> None:
    expected = {tool.name for tool in TOOLS if tool.needed and shutil.which(tool.name) is None}
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode:
        expected.add("docker engine")
    if os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") < 8 * GIB:
        expected.add("memory")
    # Present tools that are too old or broken block too; their versions are checked above.
    broken = {
        tool.name
        for tool in TOOLS
        if shutil.which(tool.name) and report.by_name()[tool.name].status in (Status.TOO_OLD, Status.FAIL)
    }
    blocking = {result.name for result in report.results if result.blocking}
    assert blocking - broken - {"disk"} == expected
    assert report.ok is (not blocking)


def test_without_a_blueprint_no_context_is_checked(report: Report) -> None:
    result = report.by_name()["kube context"]
    assert result.status is Status.SKIPPED
    assert not result.blocking
