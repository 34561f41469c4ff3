"""A delivered model's SLOs reach the platform's alerts: rendered sidecar flags -> threshold gauges -> promtool.

No per-model PrometheusRule is rendered. The model's overrides travel as `shipway
sidecar --slo-*` flags; the real CLI parses them, the real sidecar metrics export
them, and the platform's own shipway-model-slo rule (from the blueprint) alerts
each version at its own thresholds, or at the blueprint's where it has none.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.main import get_command

from delivery_cases import ROOT, model, profile_of
from shipway import metric_names as m
from shipway.cli import sidecar as sidecar_cli
from shipway.delivery.render import render
from shipway.render.observability import model_slo_rules
from shipway.sidecar.metrics import SidecarMetrics
from shipway.spec import load_blueprint

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
BLUEPRINT, ENVIRONMENT = "kind-dev", "prod"


def _sidecar_series(case: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The model's labels in Prometheus, and the threshold gauges its rendered sidecar command exports."""
    objects = render(model(case), profile_of(BLUEPRINT), ENVIRONMENT)
    rollout = objects[0]
    assert not [obj for obj in objects if obj["kind"] == "PrometheusRule"]
    (sidecar,) = [c for c in rollout["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar"]
    app = typer.Typer()
    app.command("sidecar")(sidecar_cli.sidecar)
    params = get_command(app).make_context("sidecar", sidecar["command"][2:]).params
    thresholds = sidecar_cli._thresholds(params["slo_latency_p99_ms"], params["slo_error_rate"],
                                         params["slo_drift_psi"], params["slo_drift_min_rows"],
                                         params["slo_accuracy_floor"])
    metrics = SidecarMetrics(params["model"], params["version"], thresholds)
    # In the cluster the ServiceMonitor's scrape adds the namespace label.
    labels = {"namespace": rollout["metadata"]["namespace"], "model": params["model"], "version": params["version"]}
    series = []
    for name in m.SLO_THRESHOLDS:
        value = metrics.registry.get_sample_value(name, {"model": params["model"], "version": params["version"]})
        if value is not None:
            series.append({"series": f"{name}{_labels(labels)}", "values": f"{value:g}x30"})
    return labels, series


def _labels(labels: dict[str, Any]) -> str:
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def _live(labels: dict[str, str], errors_per_1000: int, slowest: str, psi: float | None) -> list[dict[str, str]]:
    """1000 requests a minute, `errors_per_1000` failing, each in the latency bucket ending at `slowest`."""
    series = [
        {"series": f"{m.REQUESTS_TOTAL}{_labels({**labels, 'code': '200'})}", "values": "0+1000x30"},
        {"series": f"{m.REQUEST_ERRORS_TOTAL}{_labels(labels)}", "values": f"0+{errors_per_1000}x30"},
        {"series": f'{m.REQUEST_DURATION_SECONDS}_bucket{_labels({**labels, "le": "+Inf"})}', "values": "0+1000x30"},
    ]
    buckets = ("0.25", "0.5", "1")
    for bucket in buckets:
        reached = buckets.index(bucket) >= buckets.index(slowest)
        series.append({"series": f'{m.REQUEST_DURATION_SECONDS}_bucket{_labels({**labels, "le": bucket})}',
                       "values": f"{'0+1000' if reached else '0'}x30"})
    if psi is not None:
        series += [{"series": f'{m.FEATURE_DRIFT_PSI}{_labels({**labels, "feature": "amount"})}',
                    "values": f"{psi}x30"},
                   {"series": f'{m.FEATURE_DRIFT_ROWS}{_labels({**labels, "feature": "amount"})}',
                    "values": "2000x30"},
                   {"series": f"{m.DRIFT_WINDOW_ROWS}{_labels(labels)}", "values": "2000x30"}]
    return series


def _write_blueprint_rules(tmp_path: Path) -> None:
    """The blueprint's shipway-model-slo groups as a rules file, annotations left out."""
    rule = model_slo_rules(load_blueprint(ROOT / "blueprints" / f"{BLUEPRINT}.yaml"))
    groups = rule["spec"]["groups"]
    for group in groups:
        for alert in group["rules"]:
            alert["annotations"] = {}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))


def _promtool(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    """`promtool test rules` on the written rules file; every expected alert, and no other, must fire."""
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run([str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_delivered_model_alerts_at_its_own_slos_and_a_plain_one_at_the_blueprints(tmp_path: Path) -> None:
    _write_blueprint_rules(tmp_path)
    # fraud-score overrides p99 150 ms, error rate 0.2% and PSI 0.3; kind-dev's defaults are 500 ms, 1%, 0.2.
    tuned, tuned_thresholds = _sidecar_series("blue-green-xgboost")
    assert {s["series"].split("{")[0] for s in tuned_thresholds} == {
        m.SLO_LATENCY_P99_SECONDS, m.SLO_ERROR_RATE, m.SLO_DRIFT_PSI, m.SLO_DRIFT_MIN_ROWS}
    plain, plain_thresholds = _sidecar_series("sklearn-none")
    assert plain_thresholds == []
    series = [
        # Within the defaults for errors (0.5%) and latency (p99 under 500 ms) but over its own SLOs;
        # over the default PSI but within its own bound.
        *tuned_thresholds, *_live(tuned, errors_per_1000=5, slowest="0.5", psi=0.25),
        # No overrides: over the defaults (2% errors, p99 near 1 s) fires.
        *plain_thresholds, *_live(plain, errors_per_1000=20, slowest="1", psi=None),
    ]
    fired = {"ShipwayModelErrorRateHigh": ("critical", [tuned, plain]),
             "ShipwayModelLatencyP99High": ("warning", [tuned, plain]),
             "ShipwayModelFeatureDrift": ("warning", []),
             "ShipwayModelOnlineAccuracyLow": ("critical", [])}
    tests = [{
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": name,
             "exp_alerts": [{"exp_labels": {**labels, "severity": severity}} for labels in models]}
            for name, (severity, models) in fired.items()
        ],
    }]
    _promtool(tmp_path, tests)


def test_the_drift_alert_trusts_each_feature_on_its_own_observed_rows(tmp_path: Path) -> None:
    """Issue #20 case 8: the guard read the window's rows, so a feature seen in 40 of 2,000 rows alerted on noise.

    One version, window of 2,000 rows: "rare" (PSI 0.9) was observed in 40 of them, "common" (PSI 0.1) in
    all; the alert stays silent. A second version's "rare" seen in 600 rows with PSI 0.9 fires.
    """
    _write_blueprint_rules(tmp_path)
    quiet = {"namespace": "team-a", "model": "m", "version": "1"}
    loud = {**quiet, "version": "2"}
    series = []
    for labels, rare_rows in ((quiet, 40), (loud, 600)):
        for feature, psi, rows in (("rare", 0.9, rare_rows), ("common", 0.1, 2000)):
            featured = _labels({**labels, "feature": feature})
            series += [{"series": f"{m.FEATURE_DRIFT_PSI}{featured}", "values": f"{psi}x30"},
                       {"series": f"{m.FEATURE_DRIFT_ROWS}{featured}", "values": f"{rows}x30"}]
        series.append({"series": f"{m.DRIFT_WINDOW_ROWS}{_labels(labels)}", "values": "2000x30"})
    tests = [{"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "15m", "alertname": "ShipwayModelFeatureDrift",
         "exp_alerts": [{"exp_labels": {**loud, "severity": "warning"}}]}]}]
    _promtool(tmp_path, tests)
