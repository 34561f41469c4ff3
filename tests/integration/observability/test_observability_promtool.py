"""The generated model SLO rules under promtool: valid, and each alert fires on bad series only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shipway.render.model_rules import ModelSlo, model_rule_groups, write_rules_file

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")
SLO = ModelSlo(rate_window="1m", for_duration="1m", min_drift_rows=500)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    label_text = ",".join(f'{key}="{value}"' for key, value in {"namespace": "ns", "model": "iris", **labels}.items())
    return {"series": f"{name}{{{label_text}}}", "values": values}


def _alert(name: str, version: str, severity: str, description: str, summary: str, value: str) -> dict[str, object]:
    return {
        "exp_labels": {"severity": severity, "namespace": "ns", "model": "iris", "version": version},
        # `value` is the figure itself: the retraining trigger passes it on as the alert's evidence.
        "exp_annotations": {"summary": summary, "description": description, "value": value},
    }


def test_rules_file_passes_promtool_check(tmp_path: Path) -> None:
    rules = write_rules_file(tmp_path / "rules.yml", model_rule_groups(slo=SLO))
    result = _promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_each_alert_fires_on_a_bad_version_and_stays_quiet_on_a_good_one(tmp_path: Path) -> None:
    write_rules_file(tmp_path / "rules.yml", model_rule_groups(slo=SLO))
    series = [
        # Error rate: "bad" fails 1 in 4 requests, "good" none.
        _series("shipway_model_requests_total", "0+45x40", version="bad", code="200"),
        _series("shipway_model_requests_total", "0+15x40", version="bad", code="500"),
        _series("shipway_model_request_errors_total", "0+15x40", version="bad"),
        _series("shipway_model_requests_total", "0+60x40", version="good", code="200"),
        _series("shipway_model_request_errors_total", "0x40", version="good"),
        # Latency: every "bad" request is between 1 s and 2.5 s, every "good" one under 100 ms.
        _series("shipway_model_request_duration_seconds_bucket", "0x40", version="bad", le="1"),
        _series("shipway_model_request_duration_seconds_bucket", "0+10x40", version="bad", le="2.5"),
        _series("shipway_model_request_duration_seconds_bucket", "0+10x40", version="bad", le="+Inf"),
        _series("shipway_model_request_duration_seconds_bucket", "0+10x40", version="good", le="0.1"),
        _series("shipway_model_request_duration_seconds_bucket", "0+10x40", version="good", le="+Inf"),
        # Drift: "bad" drifted on a full window; "good" is calm; "young" drifted on too few rows to trust.
        _series("shipway_model_feature_drift_psi", "0.6x40", version="bad", feature="f0"),
        _series("shipway_model_feature_drift_psi", "0.01x40", version="bad", feature="f1"),
        _series("shipway_model_feature_drift_rows", "1000x40", version="bad", feature="f0"),
        _series("shipway_model_feature_drift_rows", "1000x40", version="bad", feature="f1"),
        _series("shipway_model_drift_window_rows", "1000x40", version="bad"),
        _series("shipway_model_feature_drift_psi", "0.05x40", version="good", feature="f0"),
        _series("shipway_model_feature_drift_rows", "1000x40", version="good", feature="f0"),
        _series("shipway_model_drift_window_rows", "1000x40", version="good"),
        _series("shipway_model_feature_drift_psi", "0.9x40", version="young", feature="f0"),
        _series("shipway_model_feature_drift_rows", "100x40", version="young", feature="f0"),
        _series("shipway_model_drift_window_rows", "100x40", version="young"),
        # Accuracy: "bad" is wrong half the time, "good" rarely; "new" has too few labels (NaN).
        _series("shipway_model_online_accuracy", "0.5x40", version="bad"),
        _series("shipway_model_online_accuracy", "0.95x40", version="good"),
        _series("shipway_model_online_accuracy", " ".join(["NaN"] * 41), version="new"),
    ]
    who = "iris bad in ns"
    cases = [
        ("ShipwayModelErrorRateHigh", "critical",
         f"{who}: 25% of requests failing (SLO: the model's own, else 5.00%).", "Model error rate above its SLO", "0.25"),
        ("ShipwayModelLatencyP99High", "warning", f"{who}: p99 latency 2.485s (SLO: the model's own, else 1s).",
         "Model p99 latency above its SLO", "2.485"),
        ("ShipwayModelFeatureDrift", "warning",
         f"{who}: largest feature PSI 0.600 (bound: the model's own, else 0.25).",
         "Model input features drifted from the training reference", "0.6"),
        ("ShipwayModelOnlineAccuracyLow", "critical",
         f"{who}: online accuracy 50% (SLO: the model's own, else 80%).", "Model online accuracy below its SLO",
         "0.5"),
    ]
    alert_tests = []
    for name, severity, description, summary, value in cases:
        # Before `for` has elapsed nothing fires; afterwards only the bad version does.
        alert_tests.append({"eval_time": "30s", "alertname": name, "exp_alerts": []})
        alert_tests.append(
            {"eval_time": "5m", "alertname": name, "exp_alerts": [_alert(name, "bad", severity, description, summary, value)]}
        )
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": series, "alert_rule_test": alert_tests}],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _model_series(model: str, *, errors_per_100: int, latency_bucket: str, psi: float, rows: int,
                  accuracy: float) -> list[dict[str, str]]:
    """One version (v1) of a model, on two replicas, with the given live values."""
    series = []
    for instance in ("a", "b"):
        labels = {"model": model, "version": "v1", "instance": instance}
        series += [
            _series("shipway_model_requests_total", "0+100x40", code="200", **labels),
            _series("shipway_model_request_errors_total", f"0+{errors_per_100}x40", **labels),
            _series("shipway_model_request_duration_seconds_bucket", "0x40", le="0.25", **labels),
            _series("shipway_model_request_duration_seconds_bucket", "0+100x40", le=latency_bucket, **labels),
            _series("shipway_model_request_duration_seconds_bucket", "0+100x40", le="+Inf", **labels),
            _series("shipway_model_feature_drift_psi", f"{psi}x40", feature="f0", **labels),
            _series("shipway_model_feature_drift_rows", f"{rows}x40", feature="f0", **labels),
            _series("shipway_model_drift_window_rows", f"{rows}x40", **labels),
            _series("shipway_model_online_accuracy", f"{accuracy}x40", **labels),
        ]
    return series


def _thresholds(model: str, **values: float) -> list[dict[str, str]]:
    """The threshold gauges a sidecar run with --slo-* flags exports, on both replicas."""
    return [_series(f"shipway_model_slo_{name}", f"{value}x40", model=model, version="v1", instance=instance)
            for name, value in values.items() for instance in ("a", "b")]


def test_a_model_alerts_at_its_own_thresholds_and_one_without_them_at_the_default(tmp_path: Path) -> None:
    """One rule set: overrides replace the default per model, in both directions; no override means the default."""
    groups = model_rule_groups(slo=SLO)
    for rule in groups[0]["rules"]:
        # Descriptions render live values; which versions fire depends on expr, labels and for alone.
        rule["annotations"] = {}
    write_rules_file(tmp_path / "rules.yml", groups)
    bad = {"errors_per_100": 25, "latency_bucket": "2.5", "psi": 0.6, "rows": 300, "accuracy": 0.5}
    series = [
        # "loose" is bad by the defaults (25% errors, p99 2.5 s, PSI 0.6, accuracy 50%) but within its own SLOs.
        *_model_series("loose", **bad),
        *_thresholds("loose", error_rate=0.3, latency_p99_seconds=3, drift_psi=0.8, drift_min_rows=200,
                     accuracy_floor=0.4),
        # "strict" is fine by the defaults (2% errors, p99 0.5 s, PSI 0.2, 85%) but outside its own SLOs; its
        # drift also counts on 300 rows, which its own minimum (200) trusts and the default (500) would not.
        *_model_series("strict", errors_per_100=2, latency_bucket="0.5", psi=0.2, rows=300, accuracy=0.85),
        *_thresholds("strict", error_rate=0.01, latency_p99_seconds=0.1, drift_psi=0.1, drift_min_rows=200,
                     accuracy_floor=0.9),
        # "plain" has no thresholds of its own: the defaults hold, on the same bad values as "loose"
        # except that its drift window is full.
        *_model_series("plain", **{**bad, "rows": 1000}),
    ]
    alerts = ["ShipwayModelErrorRateHigh", "ShipwayModelLatencyP99High", "ShipwayModelFeatureDrift",
              "ShipwayModelOnlineAccuracyLow"]
    severity = {"ShipwayModelErrorRateHigh": "critical", "ShipwayModelLatencyP99High": "warning",
                "ShipwayModelFeatureDrift": "warning", "ShipwayModelOnlineAccuracyLow": "critical"}
    alert_tests = [
        {"eval_time": "5m", "alertname": name, "exp_alerts": [
            {"exp_labels": {"severity": severity[name], "namespace": "ns", "model": model, "version": "v1"}}
            for model in ("plain", "strict")]}
        for name in alerts
    ]
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": "15s",
            "tests": [{"interval": "15s", "input_series": series, "alert_rule_test": alert_tests}]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_llm_breakers_pass_promtool_and_fail_only_a_slower_or_failing_canary(tmp_path: Path) -> None:
    """The LLM canary breakers (time to first token, inter-token latency, failed generations) as promtool
    evaluates them: a canary slower or failing more than stable exceeds the bound, an equal one does not."""
    from shipway.render.model_rules import LLM_BREAKERS, CircuitBreaker, breaker_queries, resolve_args

    breaker = CircuitBreaker(rate_window="1m")
    queries = breaker_queries(breaker)
    rules = []
    for canary in ("bad", "same"):
        args = {"model": "chat", "namespace": "ns", "canary-version": canary, "stable-version": "stable"}
        for name in LLM_BREAKERS:
            query, bound = queries[name]
            # 1 when the breaker's measurement is over its bound (the AnalysisRun fails), else 0.
            rules.append({"record": f"breaker_over:{name.replace('-', '_')}:{canary}",
                          "expr": f"({resolve_args(query, args)}) > bool {bound:g}"})
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "llm-breakers", "rules": rules}]}))
    checked = _promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout

    def llm(version: str, first_token_bucket: str, gap_bucket: str, errors: int) -> list[dict[str, str]]:
        ttft, itl = "shipway_llm_time_to_first_token_seconds_bucket", "shipway_llm_inter_token_latency_seconds_bucket"
        return [
            _series(ttft, "0x40", model="chat", version=version, le="0.1" if first_token_bucket != "0.1" else "0.05"),
            _series(ttft, "0+10x40", model="chat", version=version, le=first_token_bucket),
            _series(ttft, "0+10x40", model="chat", version=version, le="+Inf"),
            _series(itl, "0x40", model="chat", version=version, le="0.01"),
            _series(itl, "0+100x40", model="chat", version=version, le=gap_bucket),
            _series(itl, "0+100x40", model="chat", version=version, le="+Inf"),
            _series("shipway_llm_requests_total", f"0+{10 - errors}x40", model="chat", version=version,
                    outcome="success"),
            _series("shipway_llm_requests_total", f"0+{errors}x40", model="chat", version=version, outcome="error"),
        ]

    series = [*llm("stable", "0.1", "0.02", 0), *llm("same", "0.1", "0.02", 0), *llm("bad", "0.75", "0.05", 2)]
    expected = [{"expr": rule["record"], "eval_time": "5m",
                 "exp_samples": [{"labels": rule["record"], "value": 1 if rule["record"].endswith(":bad") else 0}]}
                for rule in rules]
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": "15s",
            "tests": [{"interval": "15s", "input_series": series, "promql_expr_test": expected}]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert result.returncode == 0, result.stdout + result.stderr

