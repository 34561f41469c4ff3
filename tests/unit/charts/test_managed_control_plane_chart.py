"""kube-prometheus-stack's own templates, with Shipway's values: managed control planes get no scrape and no alert.

The chart cache holds kube-prometheus-stack without its third-party subcharts (kube-state-metrics, node exporter,
Grafana), which Helm then refuses to render. The control-plane ServiceMonitors and alert rules are the parent
chart's own templates, so a copy that declares only the subcharts present renders them exactly as the full
chart would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from shipway import catalog
from shipway.charts.engine import ReleaseInput, render_release
from shipway.platform.synth import releases, run_program

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow  # whole-chart renders of several synths: tens of seconds
CONTROL_PLANE_ALERTS = {"KubeControllerManagerDown", "KubeSchedulerDown", "KubeProxyDown", "etcdMembersDown"}


@pytest.fixture(scope="module")
def stack_chart(chart_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = catalog.KUBE_PROMETHEUS_STACK
    folder = tmp_path_factory.mktemp("kps") / chart.name
    shutil.copytree(chart_cache / f"{chart.name}-{chart.version}", folder)
    meta = yaml.safe_load((folder / "Chart.yaml").read_text())
    meta["dependencies"] = [dep for dep in meta["dependencies"] if (folder / "charts" / dep["name"]).is_dir()]
    (folder / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return folder


def _scraped_and_alerted(folder: Path, blueprint: str) -> tuple[set[str], set[str]]:
    result = run_program(ROOT / "blueprints" / f"{blueprint}.yaml")
    [values] = [release["values"] for _, release in releases(result) if release["name"] == "kube-prometheus-stack"]
    # The subcharts this copy lacks stay off; everything else is Shipway's values as synthesised.
    values = {**values, "grafana": {"enabled": False}, "kubeStateMetrics": {"enabled": False},
              "nodeExporter": {"enabled": False}}
    release = ReleaseInput("observability", "kube-prometheus-stack", "kube-prometheus-stack",
                           catalog.KUBE_PROMETHEUS_STACK.version, "", "monitoring", values)
    with helm.Chart.load(folder) as chart:
        objects = render_release(chart, release, f"{catalog.KUBERNETES_VERSION}.0").objects()
    monitors = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "ServiceMonitor"}
    alerts = {rule["alert"] for obj in objects if obj["kind"] == "PrometheusRule"
              for group in obj["spec"]["groups"] for rule in group["rules"] if "alert" in rule}
    return monitors, alerts


@pytest.mark.parametrize("blueprint", ["eks-prod", "gke-prod"])
def test_managed_clusters_neither_scrape_nor_alert_on_the_hidden_control_plane(stack_chart: Path,
                                                                              blueprint: str) -> None:
    monitors, alerts = _scraped_and_alerted(stack_chart, blueprint)
    assert alerts and not alerts & CONTROL_PLANE_ALERTS
    for component in ("kube-controller-manager", "kube-scheduler", "kube-etcd", "kube-proxy"):
        assert not any(component in name for name in monitors), (component, sorted(monitors))
    assert "KubeAPIDown" in alerts  # the API server is reachable on managed clusters and still watched


def test_kind_still_watches_its_own_control_plane(stack_chart: Path) -> None:
    monitors, alerts = _scraped_and_alerted(stack_chart, "kind-dev")
    assert {"KubeControllerManagerDown", "KubeSchedulerDown"} <= alerts
    assert any("kube-controller-manager" in name for name in monitors)
