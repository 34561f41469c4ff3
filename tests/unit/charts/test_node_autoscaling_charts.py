"""The releases behind node autoscaling and pod metrics, rendered through their real charts at their pins.

Karpenter, metrics-server, the Cluster Autoscaler and GKE's DCGM exporter: what Shipway sets takes effect in
the objects Helm would install, those objects validate for the catalog's Kubernetes version, and Karpenter's
NodePools and EC2NodeClasses validate against the CRDs the karpenter-crd chart installs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from shipway import catalog
from shipway.charts.cache import ChartCache
from shipway.charts.engine import ReleaseInput, render_release
from shipway.platform.synth import SynthResult, kubernetes_objects, render_charts, run_program
from shipway.render import nodepools

pytestmark = pytest.mark.slow  # whole-chart renders of several synths: tens of seconds
ROOT = Path(__file__).resolve().parents[3]
VERSION = f"{catalog.KUBERNETES_VERSION}.0"


def _render(chart_cache: Path, name: str) -> SynthResult:
    result = run_program(ROOT / "blueprints" / f"{name}.yaml")
    render_charts(result, ChartCache(chart_cache))
    return result


@pytest.fixture(scope="module")
def eks(chart_cache: Path) -> SynthResult:
    return _render(chart_cache, "eks-prod")


def _release(result: SynthResult, name: str) -> Any:
    assert result.charts is not None
    [rendered] = [r for r in result.charts.rendered if r.release.name == name]
    return rendered


def _one(objects: list[dict], kind: str) -> dict:
    [found] = [obj for obj in objects if obj["kind"] == kind]
    return found


def _validate_core(objects: list[dict]) -> None:
    for obj in objects:
        if obj["kind"] not in ("CustomResourceDefinition", "APIService") and "." not in obj["apiVersion"].split("/")[0]:
            kubernetes_validate.validate(obj, VERSION, strict=True)


def test_karpenter_controller_runs_as_shipway_configures_it(eks: SynthResult) -> None:
    karpenter = _release(eks, "karpenter")
    objects = karpenter.objects()
    assert not karpenter.objects("crd"), "karpenter-crd owns the CRDs; the controller chart must not bring them"
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["CLUSTER_NAME"] == "shipway-prod" and env["INTERRUPTION_QUEUE"] == "shipway-prod-karpenter"
    assert pod["serviceAccountName"] == nodepools.KARPENTER_SERVICE_ACCOUNT  # the Pod Identity association's
    assert pod["nodeSelector"]["shipway.dev/pool"] == "system"
    assert deployment["metadata"]["namespace"] == nodepools.SYSTEM_NAMESPACE
    _validate_core(objects)


def test_node_pools_validate_against_the_crds_karpenter_crd_installs(eks: SynthResult) -> None:
    crds = {crd["spec"]["names"]["kind"]: crd for crd in _release(eks, "karpenter-crd").objects()}
    checked = 0
    for _, obj in kubernetes_objects(eks):
        if obj["kind"] not in ("NodePool", "EC2NodeClass"):
            continue
        group, version = obj["apiVersion"].split("/")
        crd = crds[obj["kind"]]
        assert crd["spec"]["group"] == group
        [served] = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
        errors = [f"{list(e.path)}: {e.message}" for e in
                  jsonschema.Draft7Validator(served["schema"]["openAPIV3Schema"]).iter_errors(obj)]
        assert not errors, (obj["kind"], obj["metadata"]["name"], errors)
        checked += 1
    assert checked == 4  # a NodePool and an EC2NodeClass for each of the two GPU pools


def test_metrics_server_serves_the_metrics_api(eks: SynthResult, chart_cache: Path) -> None:
    objects = _release(eks, "metrics-server").objects()
    assert _one(objects, "APIService")["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert _one(objects, "Deployment")["spec"]["replicas"] == 2
    assert _one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    _validate_core(objects)
    kind = _release(_render(chart_cache, "kind-dev"), "metrics-server").objects()
    [container] = _one(kind, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--kubelet-insecure-tls" in container["args"]
    _validate_core(kind)


def test_cluster_autoscaler_chart_runs_with_shipways_values(eks: SynthResult, chart_cache: Path) -> None:
    blueprint = eks.blueprint
    scaled = blueprint.model_copy(update={"cluster": blueprint.cluster.model_copy(
        update={"autoscaling": "cluster-autoscaler"})})
    release = ReleaseInput("nodepools", "cluster-autoscaler", "cluster-autoscaler", catalog.CLUSTER_AUTOSCALER.version,
                           catalog.CLUSTER_AUTOSCALER.repo, nodepools.SYSTEM_NAMESPACE,
                           nodepools.cluster_autoscaler_values(scaled))
    with helm.Chart.load(chart_cache / f"cluster-autoscaler-{catalog.CLUSTER_AUTOSCALER.version}") as chart:
        objects = render_release(chart, release, VERSION).objects()
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/" \
           "shipway-prod" in container["command"]
    # The autoscaler supports the Kubernetes minor it was built for.
    assert container["image"].rsplit(":", 1)[1].startswith(f"v{catalog.KUBERNETES_VERSION}.")
    assert pod["serviceAccountName"] == nodepools.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    _validate_core(objects)


def test_gke_dcgm_exporter_is_privileged_as_kubernetes_admits(chart_cache: Path) -> None:
    gke = _render(chart_cache, "gke-prod")
    objects = _release(gke, "dcgm-exporter").objects()
    [container] = _one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    security = container["securityContext"]
    assert security["privileged"] is True
    # The API server refuses privileged beside allowPrivilegeEscalation: false (the chart's default).
    assert security["allowPrivilegeEscalation"] is True
    _validate_core(objects)
