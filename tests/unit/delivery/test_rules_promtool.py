"""Each model's PrometheusRule passes `promtool check rules`; each alert fires on a bad version, not a good one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery_cases import CASES, model, profile_of
from shipway import metric_names as m
from shipway.delivery.render import render

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
BAD, GOOD = "1.2.0", "1.1.0"


def _rule(case: str) -> dict[str, Any]:
    blueprint, environment, stable = CASES[case]
    objects = render(model(case), profile_of(blueprint), environment, stable)
    return next(obj for obj in objects if obj["kind"] == "PrometheusRule")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rules_pass_promtool_check(case: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": _rule(case)["spec"]["groups"]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _series(version: str, bad: bool) -> list[dict[str, str]]:
    sel = f'model="churn",namespace="fraud-staging",version="{version}"'
    fast = "0+0x30" if bad else "0+100x30"
    return [
        {"series": f"{m.REQUESTS_TOTAL}{{{sel}}}", "values": "0+100x30"},
        {"series": f"{m.REQUEST_ERRORS_TOTAL}{{{sel}}}", "values": "0+10x30" if bad else "0+0x30"},
        # Bad: every request slower than 1 s; good: every request under 100 ms.
        {"series": f'{m.REQUEST_DURATION_SECONDS}_bucket{{{sel},le="0.1"}}', "values": fast},
        {"series": f'{m.REQUEST_DURATION_SECONDS}_bucket{{{sel},le="1"}}', "values": fast},
        {"series": f'{m.REQUEST_DURATION_SECONDS}_bucket{{{sel},le="+Inf"}}', "values": "0+100x30"},
        {"series": f'{m.FEATURE_DRIFT_PSI}{{{sel},feature="age"}}', "values": "0.6x30" if bad else "0.05x30"},
        {"series": f"{m.DRIFT_WINDOW_ROWS}{{{sel}}}", "values": "1000x30"},
        {"series": f"{m.ONLINE_ACCURACY}{{{sel}}}", "values": "0.5x30" if bad else "0.95x30"},
    ]


def test_each_alert_fires_on_the_bad_version_and_stays_quiet_on_the_good(tmp_path: Path) -> None:
    (group,) = _rule("canary-sklearn")["spec"]["groups"]
    # Descriptions render live values; the firing logic is in expr, labels and for, which stay untouched.
    for rule in group["rules"]:
        rule["annotations"] = {"summary": rule["annotations"]["summary"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    alerts = [rule["alert"] for rule in group["rules"]]
    assert alerts == ["ShipwayModelErrorRateHigh", "ShipwayModelLatencyP99High", "ShipwayModelFeatureDrift",
                      "ShipwayModelOnlineAccuracyLow"]
    labels = {"namespace": "fraud-staging", "model": "churn", "version": BAD}
    tests = [{
        "interval": "1m",
        "input_series": _series(BAD, bad=True) + _series(GOOD, bad=False),
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": rule["alert"],
             "exp_alerts": [{"exp_labels": {**labels, **rule["labels"]},
                             "exp_annotations": rule["annotations"]}]}
            for rule in group["rules"]
        ],
    }, {
        "interval": "1m",
        "input_series": _series(GOOD, bad=False),
        "alert_rule_test": [{"eval_time": "15m", "alertname": alert, "exp_alerts": []} for alert in alerts],
    }]
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
