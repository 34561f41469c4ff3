"""Every PrometheusRule passes `promtool check rules`; the platform alerts fire on bad series, stay quiet on good."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shipway.platform.synth import kubernetes_objects, run_program

REPO = Path(__file__).resolve().parents[3]
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("rules")
    files = {}
    for blueprint in ("kind-dev", "eks-prod", "gke-prod"):
        for _, obj in kubernetes_objects(run_program(REPO / "blueprints" / f"{blueprint}.yaml")):
            if obj["kind"] == "PrometheusRule":
                path = out / f"{blueprint}-{obj['metadata']['name']}.yaml"
                path.write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}, sort_keys=False))
                files[path.stem] = path
    return files


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def test_every_rule_file_checks(rule_files):
    assert {"kind-dev-shipway-platform", "eks-prod-shipway-model-slo"} <= set(rule_files)
    for path in rule_files.values():
        result = _promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def _alert_test(name: str, series: list[dict], eval_time: str, fired: list[dict]) -> dict:
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": eval_time, "alertname": name, "exp_alerts": fired}]}


def test_platform_alerts_fire_on_bad_series_and_stay_quiet_on_good(rule_files, tmp_path):
    rules = rule_files["kind-dev-shipway-platform"]
    gpu = 'Hostname="node-a",gpu="0"'
    pending = 'namespace="fraud-prod",pod="p"'
    tests = [
        _alert_test("GpuTooHot", [{"series": f"DCGM_FI_DEV_GPU_TEMP{{{gpu}}}", "values": "90x10"}], "10m",
                    [{"exp_labels": {"severity": "warning", "Hostname": "node-a", "gpu": "0"},
                      "exp_annotations": {"summary": "GPU 0 on node-a is above 85C."}}]),
        _alert_test("GpuTooHot", [{"series": f"DCGM_FI_DEV_GPU_TEMP{{{gpu}}}", "values": "60x10"}], "10m", []),
        _alert_test("GpuMemoryNearlyFull", [
            {"series": f"DCGM_FI_DEV_FB_USED{{{gpu}}}", "values": "79000x15"},
            {"series": f"DCGM_FI_DEV_FB_FREE{{{gpu}}}", "values": "1000x15"}], "15m",
            [{"exp_labels": {"severity": "warning", "Hostname": "node-a", "gpu": "0"},
              "exp_annotations": {"summary": "GPU 0 on node-a has over 95% memory used."}}]),
        _alert_test("GpuMemoryNearlyFull", [
            {"series": f"DCGM_FI_DEV_FB_USED{{{gpu}}}", "values": "40000x15"},
            {"series": f"DCGM_FI_DEV_FB_FREE{{{gpu}}}", "values": "40000x15"}], "15m", []),
        _alert_test("GpuUtilisationLow", [{"series": 'DCGM_FI_DEV_GPU_UTIL{Hostname="node-a"}', "values": "2x150"}],
                    "150m", [{"exp_labels": {"severity": "info", "Hostname": "node-a"},
                              "exp_annotations": {"summary": "GPUs on node-a under 10% busy for 2h: idle spend."}}]),
        _alert_test("GpuUtilisationLow", [{"series": 'DCGM_FI_DEV_GPU_UTIL{Hostname="node-a"}', "values": "80x150"}],
                    "150m", []),
        _alert_test("GpuPoolSaturated", [
            {"series": 'kube_pod_container_resource_requests{resource="nvidia_com_gpu",node="n1",pod="a"}',
             "values": "2x20"},
            {"series": 'kube_node_status_allocatable{resource="nvidia_com_gpu",node="n1"}', "values": "2x20"}], "20m",
            [{"exp_labels": {"severity": "warning", "node": "n1"},
              "exp_annotations": {"summary": "All GPUs on n1 are requested; new GPU pods will pend."}}]),
        _alert_test("GpuPoolSaturated", [
            {"series": 'kube_pod_container_resource_requests{resource="nvidia_com_gpu",node="n1",pod="a"}',
             "values": "1x20"},
            {"series": 'kube_node_status_allocatable{resource="nvidia_com_gpu",node="n1"}', "values": "2x20"}], "20m",
            []),
        # Two GPU containers in one pending pod: the join must still evaluate.
        _alert_test("GpuPodsPending", [
            {"series": f'kube_pod_status_phase{{{pending},phase="Pending"}}', "values": "1x15"},
            {"series": f'kube_pod_container_resource_requests{{{pending},container="a",resource="nvidia_com_gpu"}}',
             "values": "1x15"},
            {"series": f'kube_pod_container_resource_requests{{{pending},container="b",resource="nvidia_com_gpu"}}',
             "values": "1x15"}], "15m",
            [{"exp_labels": {"severity": "warning"},
              "exp_annotations": {"summary": "GPU pods have been pending for 10 minutes: a GPU pool is full."}}]),
        _alert_test("GpuPodsPending", [
            {"series": f'kube_pod_status_phase{{{pending},phase="Pending"}}', "values": "0x15"},
            {"series": f'kube_pod_container_resource_requests{{{pending},container="a",resource="nvidia_com_gpu"}}',
             "values": "1x15"}], "15m", []),
    ]
    test_file = tmp_path / "platform_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
