"""Every value Shipway sets is read by its chart: a setting that changes nothing rendered fails here."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from shipway.charts.cache import Absent, ChartCache
from shipway.charts.dead import dead_settings
from shipway.charts.engine import ReleaseInput
from shipway.platform.synth import SynthResult


def _dead(cache: Path, folder: str, chart: str, version: str, namespace: str, values: dict) -> list[str]:
    with helm.Chart.load(cache / folder) as loaded:
        return dead_settings(loaded, ReleaseInput("test", chart, chart, version, "", namespace, values), "1.31.0")


def test_zots_former_ingress_and_metrics_values_were_dead(chart_cache: Path) -> None:
    """zot 0.1.122 renders its Ingress only with ingress.enabled, and metrics.enabled gates only its own
    ServiceMonitor (templates/ingress.yaml, templates/servicemonitor.yaml)."""
    values = {"persistence": True, "serviceHeadless": {"enabled": True},
              "ingress": {"enabled": False, "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "32768m"}},
              "metrics": {"enabled": True, "serviceMonitor": {"enabled": False}}}
    assert _dead(chart_cache, "zot-0.1.122", "zot", "0.1.122", "shipway-registry", values) == [
        "ingress.annotations.[nginx.ingress.kubernetes.io/proxy-body-size]", "metrics.enabled"]


def test_gpu_operators_default_runtime_was_dead(chart_cache: Path) -> None:
    values = {"operator": {"defaultRuntime": "containerd"}, "driver": {"enabled": False}}
    assert _dead(chart_cache, "gpu-operator-v26.7.0", "gpu-operator", "v26.7.0", "gpu-operator", values) == [
        "operator.defaultRuntime"]


@pytest.mark.parametrize("version", ["0.0.63", "0.2.0"])
def test_fake_gpu_operators_status_exporter_service_monitor_switch_was_dead(chart_cache: Path, version: str) -> None:
    values = {"statusExporter": {"serviceMonitor": {"enabled": False}},
              "topology": {"nodePools": {"default": None, "pool": {"gpuCount": 1, "gpuProduct": "NVIDIA-L4",
                                                                     "gpuMemory": 24576}}}}
    assert _dead(chart_cache, f"fake-gpu-operator-{version}", "fake-gpu-operator", version, "gpu-operator",
                 values) == ["statusExporter.serviceMonitor.enabled"]


def test_a_value_equal_to_the_default_is_not_dead(chart_cache: Path) -> None:
    # zot's default service port is 5000: rendering it away changes nothing, yet the chart reads it.
    assert _dead(chart_cache, "zot-0.1.122", "zot", "0.1.122", "shipway-registry", {"service": {"port": 5000}}) == []


@pytest.mark.slow
def test_no_release_of_the_examples_sets_a_dead_value(rendered_example: tuple[SynthResult, Path],
                                                      chart_cache: Path) -> None:
    result, _ = rendered_example
    assert result.charts is not None
    cache, dead = ChartCache(chart_cache), {}
    for rendered in result.charts.rendered:
        release = rendered.release
        folder = cache.locate(release.chart, release.version)
        assert not isinstance(folder, Absent)
        with helm.Chart.load(folder) as chart:
            found = dead_settings(chart, release, result.charts.kubernetes_version, result.charts.api_versions)
        if found:
            dead[release.name] = found
    assert not dead, f"{result.blueprint.metadata.name}: values no template reads: {dead}"
