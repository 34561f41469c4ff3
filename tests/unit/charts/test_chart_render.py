"""synth --charts: every release rendered through its real chart at its pin, with Helm's own engine, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from shipway import catalog
from shipway.charts.cache import ChartCache
from shipway.charts.engine import (
    ChartRenderError, ReleaseInput, api_versions_of, kube_version_allows, release_input, render_release,
)
from shipway.platform.synth import SynthResult, releases

ROOT = Path(__file__).resolve().parents[3]


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_release_is_rendered_or_named_missing(rendered_example: tuple[SynthResult, Path]) -> None:
    result, out = rendered_example
    assert result.charts is not None
    names = {release["name"] for _, release in releases(result)}
    rendered = {r.release.name for r in result.charts.rendered}
    absent = {release.name for release, _ in result.charts.absent}
    assert rendered | absent == names and not rendered & absent
    assert rendered, "nothing rendered from the chart cache"
    plan = json.loads((out / "plan.json").read_text())["charts"]
    assert plan["kubernetesVersion"] == f"{catalog.KUBERNETES_VERSION}.0"
    for name, counts in plan["releases"].items():
        stem = next(p.stem for p in (out / "releases").glob(f"*--{name}.yaml"))
        files = list((out / "rendered" / stem).glob("*.yaml"))
        assert len(files) == counts["objects"] > 0, name
        assert all(f.read_text().startswith("# Source: ") for f in files)
    assert plan["objects"] == sum(c["objects"] for c in plan["releases"].values())
    assert len(plan["missingCharts"]) == len(absent)


def test_crds_come_from_the_charts_own_crds_folder(chart_cache: Path) -> None:
    """fake-gpu-operator 0.2.0 ships two CRDs in crds/, and its subcharts (off by default) more: Helm installs the two."""
    folder = chart_cache / "fake-gpu-operator-0.2.0"
    release = ReleaseInput("gpu", "fake-gpu-operator", "fake-gpu-operator", "0.2.0", "", "gpu-operator", {})
    with helm.Chart.load(folder) as chart:
        rendered = render_release(chart, release, "1.31.0")
    names = sorted(crd["metadata"]["name"] for crd in rendered.objects("crd"))
    assert names == ["clusterpolicies.nvidia.com", "computedomains.resource.nvidia.com"]
    with helm.Chart.load(folder) as chart:
        on = render_release(chart, ReleaseInput("gpu", "fake-gpu-operator", "fake-gpu-operator", "0.2.0", "",
                                                "gpu-operator", {"gpuOperator": {"enabled": True}}), "1.31.0")
    assert len(on.objects("crd")) > len(names)


def test_hooks_are_kept_and_test_hooks_are_not(chart_cache: Path) -> None:
    """zot's only hooks are `helm test` pods, which an install never creates; argo-cd's install hooks are kept."""
    zot = ReleaseInput("registry", "zot", "zot", "0.1.122", "", "shipway-registry", {})
    with helm.Chart.load(chart_cache / "zot-0.1.122") as chart:
        raw = helm.Chart.render(chart, {}, name="zot", namespace="shipway-registry")
        rendered = render_release(chart, zot, "1.31.0")
    assert any('"helm.sh/hook": test' in text for text in raw.values())
    assert not rendered.objects("hook") and rendered.objects("template")
    assert "NOTES.txt" in " ".join(raw) and "NOTES.txt" not in " ".join(item.source for item in rendered.items)
    argo = ReleaseInput("gitops", "argo-cd", "argo-cd", "10.1.1", "", "argocd", {})
    with helm.Chart.load(chart_cache / "argo-cd-10.1.1") as chart:
        hooks = render_release(chart, argo, "1.31.0").objects("hook")
    assert {hook["metadata"]["annotations"]["helm.sh/hook"] for hook in hooks} == {"pre-install,pre-upgrade"}


def _scaffold(tmp_path: Path, template: str, kube_version: str | None = None) -> Path:
    chart_dir = tmp_path / "probe"
    (chart_dir / "templates").mkdir(parents=True)
    meta = {"apiVersion": "v2", "name": "probe", "version": "1.0.0"}
    if kube_version:
        meta["kubeVersion"] = kube_version
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(meta))
    (chart_dir / "templates" / "cm.yaml").write_text(template)
    return chart_dir


PROBE = ReleaseInput("serving", "probe", "probe", "1.0.0", "", "ns", {})


def test_the_blueprints_kubernetes_version_and_served_apis_reach_the_templates(tmp_path: Path) -> None:
    template = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata:\n"
                "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
                "  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n")
    with helm.Chart.load(_scaffold(tmp_path, template)) as chart:
        plain = render_release(chart, PROBE, "1.31.0").objects()[0]["data"]
        served = render_release(chart, PROBE, "1.29.0", ("monitoring.coreos.com/v1",)).objects()[0]["data"]
    assert plain == {"kube": "v1.31.0", "monitoring": "false"}
    assert served == {"kube": "v1.29.0", "monitoring": "true"}


def test_a_charts_kubernetes_version_constraint_is_enforced(tmp_path: Path) -> None:
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
    with helm.Chart.load(_scaffold(tmp_path, template, ">=1.32.0-0")) as chart:
        with pytest.raises(ChartRenderError, match=r"requires Kubernetes >=1.32.0-0.*targets 1.31.0"):
            render_release(chart, PROBE, "1.31.0")
        assert render_release(chart, PROBE, "1.32.0").objects()


@pytest.mark.parametrize(("constraint", "version", "allowed"), [
    (">= 1.16.0-0", "1.31.0", True), (">=1.32.0-0", "1.31.0", False), (">=1.25.0-0 <1.31.0", "1.31.0", False),
    (">=1.25.0-0, <1.32", "1.31.4", True), ("<1.20 || >=1.30", "1.31.0", True), ("1.31.x", "1.31.9", True),
    ("~1.30.0", "1.31.0", False), ("^1.20", "1.31.0", True),
])
def test_kube_version_constraints_read_as_helm_reads_them(constraint: str, version: str, allowed: bool) -> None:
    assert kube_version_allows(constraint, version) is allowed


def test_values_the_chart_schema_refuses_fail_naming_the_release(chart_cache: Path) -> None:
    release = ReleaseInput("gateway", "cert-manager", "cert-manager", "v1.19.4", "", "cert-manager",
                           {"replicaCount": "two"})
    with helm.Chart.load(chart_cache / "cert-manager-v1.19.4") as chart:
        with pytest.raises(ChartRenderError, match=r"(?s)release cert-manager .*replicaCount"):
            render_release(chart, release, "1.31.0")


def test_crds_rendered_anywhere_become_served_api_versions() -> None:
    crd = {"kind": "CustomResourceDefinition", "spec": {"group": "monitoring.coreos.com", "names": {"kind": "ServiceMonitor"},
                                                        "versions": [{"name": "v1", "served": True},
                                                                     {"name": "v1alpha1", "served": False}]}}
    assert api_versions_of([crd]) == {"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"}


def test_a_missing_chart_is_named_with_how_to_get_it(tmp_path: Path) -> None:
    found = ChartCache(tmp_path).locate("zot", "0.1.122", "https://zotregistry.dev/helm-charts")
    assert str(found) == "zot 0.1.122 (https://zotregistry.dev/helm-charts)"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipway", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_without_a_chart_cache_synth_says_so_and_writes_what_it_wrote_before(tmp_path: Path) -> None:
    blueprint = str(ROOT / "blueprints" / "kind-dev.yaml")
    without = _cli("synth", blueprint, "-o", str(tmp_path / "a"), "-q", "--no-charts")
    absent = _cli("synth", blueprint, "-o", str(tmp_path / "b"), "-q", env={"SHIPWAY_CHARTS": str(tmp_path / "none")})
    assert without.returncode == absent.returncode == 0, absent.stderr
    assert "no chart cache at" in absent.stderr and "shipway charts pull" in absent.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_synth_names_each_chart_the_cache_lacks(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    run = _cli("synth", str(ROOT / "blueprints" / "kind-dev.yaml"), "-o", str(tmp_path / "out"), "-q",
               "--charts", str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr
    for chart in ("zot 0.1.122", "argo-cd 10.1.1", "argo-rollouts 2.41.0"):
        assert chart in run.stderr
    assert "shipway charts pull" in run.stderr
    assert not (tmp_path / "out" / "rendered").exists()


def test_release_inputs_take_the_charts_own_name() -> None:
    release = release_input("serving", {"name": "kserve", "chart": "oci://ghcr.io/kserve/charts/kserve-resources",
                                        "version": "v0.17.1", "namespace": "kserve", "values": {}})
    assert (release.chart, release.repo) == ("kserve-resources", "")
