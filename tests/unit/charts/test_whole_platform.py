"""The whole platform, Shipway's objects and every chart-rendered object together, checked as one.

Each check is first shown to catch the defect it exists for (the findings of issue #17, rendered
through the real charts at their pins), then run over the three examples.
"""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from shipway.charts import checks
from shipway.charts.engine import ReleaseInput, RenderedRelease, chart_crds, render_release
from shipway.platform.synth import SynthResult, kubernetes_objects
from shipway.render import gpu, registry
from shipway.render.common import POD_SECURITY_EXCEPTIONS, namespace, service_monitor

K8S = "1.31.0"


def _render(cache: Path, folder: str, release: ReleaseInput, api_versions: tuple[str, ...] = ()) -> RenderedRelease:
    with helm.Chart.load(cache / folder) as chart:
        return render_release(chart, release, K8S, api_versions)


def _zot(cache: Path, values: dict) -> RenderedRelease:
    return _render(cache, "zot-0.1.122", ReleaseInput("registry", "zot", "zot", "0.1.122", "", "shipway-registry",
                                                      {"persistence": True, **values}))


def _findings(shipway: list, rendered: list, check: str) -> list[str]:
    owned = checks.platform_objects(shipway, rendered)
    found = {"schema": lambda: checks.schema_findings(owned, K8S), "owners": lambda: checks.owner_findings(owned),
             "scraping": lambda: checks.service_monitor_findings(owned),
             "volumes": lambda: checks.volume_findings(owned),
             "pod-security": lambda: checks.pod_security_findings(owned, POD_SECURITY_EXCEPTIONS)}[check]()
    return [str(f) for f in found]


# --- each check catches its defect ---------------------------------------------------------------------------


def test_zots_statefulset_without_the_headless_service_fails_strict_schema(chart_cache: Path) -> None:
    before = _findings([], [_zot(chart_cache, {})], "schema")
    assert any("StatefulSet zot: spec: 'serviceName' is a required property" in f for f in before)
    assert not _findings([], [_zot(chart_cache, {"serviceHeadless": {"enabled": True}})], "schema")


def test_custom_resources_are_checked_against_the_crds_the_charts_install(chart_cache: Path) -> None:
    """The Prometheus stack's CRDs come from its own crds/ folders, even when its subcharts are missing."""
    stack = chart_crds(chart_cache / "kube-prometheus-stack-88.5.3",
                       ReleaseInput("observability", "kube-prometheus-stack", "kube-prometheus-stack", "88.5.3", "",
                                    "monitoring", {}))
    good = service_monitor("probe", "monitoring", {"app": "probe"}, "metrics")
    bad = {**good, "spec": {**good["spec"], "endpoints": [{"port": "metrics", "intervall": "15s"}]}}
    assert not _findings([("observability", good)], [stack], "schema")
    [finding] = _findings([("observability", bad)], [stack], "schema")
    assert "Additional properties are not allowed ('intervall' was unexpected)" in finding
    [finding] = _findings([("observability", good)], [], "schema")
    assert "neither Kubernetes 1.31.0 nor a CRD the platform installs serves monitoring.coreos.com/v1" in finding


def test_an_object_two_owners_create_is_found(chart_cache: Path) -> None:
    cert_manager = ReleaseInput("serving", "cert-manager", "cert-manager", "v1.19.4", "", "cert-manager",
                                {"crds": {"enabled": True}})
    once = _render(chart_cache, "cert-manager-v1.19.4", cert_manager)
    twice = _render(chart_cache, "cert-manager-v1.19.4", ReleaseInput(**{**cert_manager.__dict__, "name": "tls"}))
    assert not _findings([], [once], "owners")
    found = _findings([], [once, twice], "owners")
    assert any("CustomResourceDefinition.apiextensions.k8s.io certificates.cert-manager.io" in f
               and "release cert-manager, release tls" in f for f in found)


def test_a_service_monitor_over_zots_two_services_scrapes_every_pod_twice(chart_cache: Path) -> None:
    zot = _zot(chart_cache, {"serviceHeadless": {"enabled": True}})
    labels = {"app.kubernetes.io/name": "zot", "app.kubernetes.io/instance": "zot"}
    old = service_monitor("shipway-zot", "shipway-registry", labels, "zot")
    [finding] = _findings([("registry", old)], [zot], "scraping")
    assert "scrapes the same pods twice, through Service shipway-registry/zot, Service shipway-registry/zot-headless" \
        in finding
    assert not _findings([("registry", registry.zot_pod_monitor())], [zot], "scraping")


def test_a_monitor_naming_a_port_or_service_that_is_not_there_is_found(chart_cache: Path) -> None:
    zot = _zot(chart_cache, {})
    wrong_port = service_monitor("a", "shipway-registry", {"app.kubernetes.io/name": "zot"}, "metrics")
    no_service = service_monitor("b", "shipway-registry", {"app": "nothing"}, "zot")
    found = _findings([("registry", wrong_port), ("registry", no_service)], [zot], "scraping")
    assert any("endpoint port 'metrics' is not a port name of Service shipway-registry/zot" in f for f in found)
    assert any("monitoring.coreos.com shipway-registry/b: selects no Service" in f for f in found)
    pods = {**registry.zot_pod_monitor(), "metadata": {"name": "c", "namespace": "shipway-registry"}}
    pods["spec"] = {**pods["spec"], "podMetricsEndpoints": [{"port": "metrics"}]}
    assert any("endpoint port 'metrics' is no container port name" in f
               for f in _findings([("registry", pods)], [zot], "scraping"))


def test_replacing_dcgm_exporters_mounts_leaves_its_counters_file_unmounted(chart_cache: Path) -> None:
    release = ReleaseInput("gpu", "dcgm-exporter", "dcgm-exporter", "4.8.2", "", "gpu-operator", {})
    gke_mount = {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia", "readOnly": True}
    volume = [{"name": "nvidia-install-dir-host", "hostPath": gpu.GKE_NVIDIA_DIR}]
    replaced = _render(chart_cache, "dcgm-exporter-4.8.2", ReleaseInput(
        **{**release.__dict__, "values": {"extraHostVolumes": volume, "extraVolumeMounts": [gke_mount]}}))
    [finding] = _findings([], [replaced], "volumes")
    assert "declares volumes no container mounts: ['exporter-metrics-volume']" in finding
    fixed = _render(chart_cache, "dcgm-exporter-4.8.2", ReleaseInput(
        **{**release.__dict__, "values": {"extraHostVolumes": volume,
                                          "extraVolumeMounts": [*gpu.DCGM_EXPORTER_DEFAULT_MOUNTS, gke_mount]}}))
    assert not _findings([], [fixed], "volumes")


def test_a_pod_its_namespace_refuses_and_an_exception_no_pod_needs_are_found(chart_cache: Path) -> None:
    release = ReleaseInput("gpu", "dcgm-exporter", "dcgm-exporter", "4.8.2", "", "monitoring", {})
    dcgm = _render(chart_cache, "dcgm-exporter-4.8.2", release)
    [finding] = _findings([("observability", namespace("monitoring"))], [dcgm], "pod-security")
    assert "namespace monitoring enforces restricted, which refuses: hostPath volumes" in finding
    assert "adds capabilities ['SYS_ADMIN']" in finding
    # zot's chart defaults set no security context: Shipway's values are what make it restricted.
    found = _findings([("gpu", namespace("gpu-operator"))], [_zot(chart_cache, {})], "pod-security")
    assert any("Namespace gpu-operator: enforces privileged, but its pods need only restricted" in f for f in found)
    assert any("namespace shipway-registry is not the platform's, which holds its pods to restricted, which "
               "refuses: container zot allowPrivilegeEscalation != false" in f for f in found)


def test_every_exception_says_why() -> None:
    assert POD_SECURITY_EXCEPTIONS and all(level in ("baseline", "privileged") and len(reason) > 30
                                           for level, reason in POD_SECURITY_EXCEPTIONS.values())


# --- the three examples -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def example_findings(rendered_example: tuple[SynthResult, Path]) -> tuple[SynthResult, list[checks.Finding]]:
    result, _ = rendered_example
    assert result.charts is not None
    return result, checks.check_platform(kubernetes_objects(result), result.charts, POD_SECURITY_EXCEPTIONS)


@pytest.mark.parametrize("check", ["schema", "owners", "scraping", "pod-security", "volumes"])
def test_the_examples_pass_every_check(example_findings: tuple[SynthResult, list[checks.Finding]],
                                       check: str) -> None:
    result, findings = example_findings
    assert not [str(f) for f in findings if f.check == check], result.blueprint.metadata.name


def test_the_examples_render_completely(example_findings: tuple[SynthResult, list[checks.Finding]]) -> None:
    result, _ = example_findings
    assert result.charts is not None
    if not result.charts.complete:
        # Then the pod-security check cannot tell whether each exception is needed: some pods are unknown.
        pytest.skip(f"the chart cache cannot render: {'; '.join(str(a) for _, a in result.charts.absent)}")


def test_argo_cd_ha_needs_three_untainted_nodes_and_a_blueprint_with_fewer_is_refused(chart_cache: Path,
                                                                                     tmp_path: Path) -> None:
    """redis-ha's servers and HAProxy pods each require a node of their own: gke-prod's system pool once
    started at 2 nodes, so one Redis server never scheduled."""
    from shipway.errors import SpecError
    from shipway.spec import load_blueprint
    from shipway.spec.blueprint import REDIS_HA_NODES

    argo = _render(chart_cache, "argo-cd-10.1.1", ReleaseInput("gitops", "argo-cd", "argo-cd", "10.1.1", "", "argocd",
                                                               {"redis-ha": {"enabled": True}}))
    spread = [obj for obj in argo.objects() if obj.get("kind") in ("StatefulSet", "Deployment")
              and "redis-ha" in obj["metadata"]["name"]]
    assert len(spread) == 2
    for workload in spread:
        required = workload["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]
        assert workload["spec"]["replicas"] == REDIS_HA_NODES
        assert {term["topologyKey"] for term in required} == {"kubernetes.io/hostname"}
    root = Path(__file__).resolve().parents[3]
    gke = load_blueprint(root / "blueprints" / "gke-prod.yaml")
    assert sum(pool.min_size for pool in gke.node_pools if not pool.effective_taints) >= REDIS_HA_NODES
    two = tmp_path / "gke-two.yaml"
    two.write_text((root / "blueprints" / "gke-prod.yaml").read_text().replace("    minSize: 3\n", "    minSize: 2\n", 1))
    with pytest.raises(SpecError, match="redis-ha needs 3 nodes without taints"):
        load_blueprint(two)


def test_fake_gpu_operators_topology_holds_only_shipways_pools_with_their_gpu_memory(chart_cache: Path) -> None:
    """fake-gpu-operator 0.2.0's values.yaml has a `default` pool of two Tesla-K80s; Helm merges maps, so it
    stayed beside Shipway's until deleted, and pools without gpuMemory simulate 0 MiB GPUs."""
    from shipway.spec import load_blueprint
    from shipway.yamlio import from_yaml

    blueprint = load_blueprint(Path(__file__).resolve().parents[3] / "blueprints" / "kind-dev.yaml")
    rendered = _render(chart_cache, "fake-gpu-operator-0.2.0", ReleaseInput(
        "gpu", "fake-gpu-operator", "fake-gpu-operator", "0.2.0", "", "gpu-operator", gpu.fake_operator_values(blueprint)))
    [topology] = [obj for obj in rendered.objects() if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "topology"]
    pools = from_yaml(topology["data"]["topology.yml"])["nodePools"]
    assert set(pools) == {pool.name for pool in blueprint.gpu_pools}
    assert all(pool["gpuMemory"] > 0 for pool in pools.values())


def test_kserve_runtimes_start_their_servers_as_kserves_own_runtimes_do() -> None:
    """kserve v0.17.1 config/runtimes: MLServer takes its implementation and ports from the environment,
    Triton needs its model store and ports as arguments."""
    from shipway.render import serving
    from shipway.spec.blueprint import DEFAULT_RUNTIMES

    sklearn = serving.cluster_serving_runtime("sklearn", DEFAULT_RUNTIMES["sklearn"])["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in sklearn["env"]} == {
        "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_sklearn.SKLearnModel", "MLSERVER_HTTP_PORT": "8080",
        "MLSERVER_GRPC_PORT": "9000"}
    triton = serving.cluster_serving_runtime("triton", DEFAULT_RUNTIMES["triton"])["spec"]["containers"][0]
    assert triton["args"][:2] == ["tritonserver", "--model-store=/mnt/models"]
    assert "--http-port=8000" in triton["args"] and triton["ports"][0]["containerPort"] == 8000
