"""The delivery recording rules under `promtool test rules`, on Argo Rollouts series whose answers are known.

One Rollout (fraud-prod/churn), one sample a minute for 25 hours: Healthy until 6h, in canary (Progressing)
6h-8h, Degraded after an abort 8h-9h, Healthy again from 9h when the next rollout completes. A completion at
10m falls outside the last day seen at 25h. So over that day: 1 promotion, 1 abort, 7200 s in canary,
3600 s degraded, a mean time to restore of 3600 s, and a platform change failure rate of 1 / 2.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shipway.render import delivery_rules as d
from shipway.render.observability import dashboards

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
ROLLOUT = 'namespace="fraud-prod",name="churn"'


def _info(phase: str) -> str:
    return f'rollout_info{{{ROLLOUT},strategy="canary",traffic_router="",phase="{phase}"}}'


SERIES = [
    {"series": _info("Healthy"), "values": "1x359 stale _x179 1x960"},
    {"series": _info("Progressing"), "values": "_x360 1x119 stale"},
    {"series": _info("Degraded"), "values": "_x480 1x59 stale"},
    {"series": f'rollout_events_total{{{ROLLOUT},type="Normal",reason="RolloutCompleted"}}',
     "values": "0x9 1x529 2x960"},
    {"series": f'rollout_events_total{{{ROLLOUT},type="Warning",reason="RolloutAborted"}}', "values": "0x479 1x1020"},
]


def _expect(name: str, value: float, labels: str = ROLLOUT, at: str = "25h") -> dict:
    """The recorded series `name` has exactly `value`."""
    return {"expr": name, "eval_time": at,
            "exp_samples": [{"labels": f'{{__name__="{name}"{"," + labels if labels else ""}}}', "value": value}]}


def _near(name: str, value: float, within: float) -> dict:
    """The recorded series `name` is within `within` of `value` (a day's range holds 1441 one-minute samples)."""
    return {"expr": f"abs({name} - {value}) < bool {within}", "eval_time": "25h",
            "exp_samples": [{"labels": f"{{{ROLLOUT}}}", "value": 1}]}


def _run(tmp_path: Path, tests: list[dict]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": d.rule_groups()}, sort_keys=False))
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": SERIES, "promql_expr_test": tests}]}, sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)


def test_recorded_series_have_the_known_answers(tmp_path: Path) -> None:
    done = _run(tmp_path, [
        _expect(d.PROMOTIONS, 1), _expect(d.ABORTS, 1), {"expr": d.ANALYSIS_FAILURES, "eval_time": "25h"},
        _near(d.TIME_IN_CANARY, 7200, 10), _near(d.TIME_DEGRADED, 3600, 5), _near(d.TIME_TO_RESTORE, 3600, 5),
        _expect(d.PLATFORM_PROMOTIONS, 1, ""), _expect(d.PLATFORM_ABORTS, 1, ""),
        _expect(d.PLATFORM_FAILURE_RATE, 0.5, ""),
        # Mid-canary at 7h; healthy again at 10h.
        _expect(d.IN_CANARY, 1, at="7h"), _expect(d.IN_CANARY, 0, at="10h"),
    ])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_a_wrong_answer_fails_so_the_test_above_can_fail(tmp_path: Path) -> None:
    done = _run(tmp_path, [_near(d.TIME_IN_CANARY, 3600, 10), _expect(d.ABORTS, 2)])
    assert done.returncode != 0 and "exp:" in done.stdout + done.stderr


def test_the_dashboard_plots_only_recorded_series() -> None:
    (board,) = [item for item in dashboards() if item["metadata"]["name"] == "shipway-dora-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    import json

    panels = json.loads(board["data"]["dora.json"])["panels"]
    recorded = {rule["record"] for rule in d.rule_groups()[0]["rules"]}
    for panel in panels:
        (target,) = panel["targets"]
        assert any(name in target["expr"] for name in recorded), panel["title"]
