"""Preflight for a platform engineer's machine or a CI runner, on pytest-testinfra's local backend."""

from __future__ import annotations

import testinfra

from shipway.doctor.blueprint import target_from_blueprint
from shipway.doctor.checks import CheckResult, Report, Status, Target, run_checks


def diagnose(target: Target) -> Report:
    """Run every check on this machine."""
    return run_checks(testinfra.get_host("local://"), target)


__all__ = ["CheckResult", "Report", "Status", "Target", "diagnose", "run_checks", "target_from_blueprint"]
