"""The gateway layer's releases (Envoy Gateway, cert-manager, external-dns) and Argo Rollouts with its Gateway API
plugin, rendered through their pinned charts by synth's chart engine: every object validates, the Gateway API
CRDs are at the catalog's pin, the values Shipway sets take effect, and the Gateway, route and policy objects
Shipway emits validate against the CRDs these charts install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from crd_support import is_core, strict_schema

from shipway import catalog
from shipway.charts.cache import ChartCache
from shipway.charts.engine import RenderedRelease, release_input, render_release
from shipway.delivery.render import render as render_model
from shipway.platform.synth import SynthResult, kubernetes_objects, releases, run_program
from shipway.spec import load_model_spec

ROOT = Path(__file__).resolve().parents[3]
RELEASES = ("cert-manager", "envoy-gateway", "external-dns", "argo-rollouts")
VERSION = f"{catalog.KUBERNETES_VERSION}.0"


@pytest.fixture(scope="module")
def eks() -> SynthResult:
    return run_program(ROOT / "blueprints" / "eks-prod.yaml")


@pytest.fixture(scope="module")
def rendered(eks: SynthResult, chart_cache: Path) -> dict[str, RenderedRelease]:
    """eks-prod's gateway releases and Argo Rollouts, each rendered through its chart at its pin."""
    cache, found = ChartCache(chart_cache), {}
    for layer, release in releases(eks):
        if release["name"] not in RELEASES:
            continue
        wanted = release_input(layer, release)
        with helm.Chart.load(cache.locate(wanted.chart, wanted.version, wanted.repo)) as chart:
            found[release["name"]] = render_release(chart, wanted, VERSION)
    assert set(found) == set(RELEASES)
    return found


def _crds(rendered: dict[str, RenderedRelease]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd for release in rendered.values()
            for crd in release.objects() if crd["kind"] == "CustomResourceDefinition"}


def _errors_against(crds: dict[tuple[str, str], dict[str, Any]], obj: dict[str, Any]) -> list[str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    crd = crds.get((group, obj["kind"]))
    if crd is None:
        return [f"no chart here installs {obj['apiVersion']} {obj['kind']}"]
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served")]
    if not served:
        return [f"{obj['kind']} {version} is not served by {crd['metadata']['name']}"]
    schema = strict_schema(served[0]["schema"]["openAPIV3Schema"])
    return [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]


@pytest.mark.parametrize("name", RELEASES)
def test_every_object_the_release_creates_validates(rendered: dict[str, RenderedRelease], name: str) -> None:
    crds = _crds(rendered)
    objects = rendered[name].objects()
    assert objects
    for obj in objects:
        if is_core(obj["apiVersion"]):
            kubernetes_validate.validate(obj, VERSION, strict=True)
        elif obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus stack's CRDs: validated with the observability layer
        else:
            assert not _errors_against(crds, obj), (name, obj["kind"], obj["metadata"]["name"])


def test_envoy_gateway_installs_the_gateway_api_at_the_catalog_pin(rendered: dict[str, RenderedRelease]) -> None:
    gateway_api = [crd for crd in rendered["envoy-gateway"].objects("crd")
                   if crd["spec"]["group"] == "gateway.networking.k8s.io"]
    assert {crd["spec"]["names"]["kind"] for crd in gateway_api} >= {"Gateway", "GatewayClass", "HTTPRoute",
                                                                     "ReferenceGrant", "GRPCRoute"}
    assert {crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
            for crd in gateway_api} == {catalog.GATEWAY_API_VERSION}


def test_shipway_gateway_objects_validate_against_the_crds_the_charts_install(
        eks: SynthResult, rendered: dict[str, RenderedRelease]) -> None:
    crds = _crds(rendered)
    groups = ("gateway.networking.k8s.io", "gateway.envoyproxy.io", "cert-manager.io")
    ours = [obj for _, obj in kubernetes_objects(eks) if obj["apiVersion"].rpartition("/")[0] in groups]
    spec = load_model_spec(ROOT / "tests" / "unit" / "delivery" / "models" / "canary-sklearn.yaml")
    ours += [obj for obj in render_model(spec, eks.profile, "staging", "1.1.0") if obj["kind"] == "HTTPRoute"]
    kinds = {obj["kind"] for obj in ours}
    assert {"Gateway", "GatewayClass", "HTTPRoute", "EnvoyProxy", "ClientTrafficPolicy", "ClusterIssuer",
            "Certificate"} <= kinds
    for obj in ours:
        assert not _errors_against(crds, obj), (obj["kind"], obj["metadata"]["name"], _errors_against(crds, obj))


def _one(release: RenderedRelease, kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [obj for obj in release.objects() if obj["kind"] == kind
               and (name is None or obj["metadata"]["name"] == name)]
    return found


def test_argo_rollouts_loads_the_plugin_the_rollouts_name(rendered: dict[str, RenderedRelease]) -> None:
    release = rendered["argo-rollouts"]
    config = _one(release, "ConfigMap", "argo-rollouts-config")
    [plugin] = yaml.safe_load(config["data"]["trafficRouterPlugins"])
    assert plugin["name"] == catalog.ROLLOUTS_GATEWAY_PLUGIN
    path = plugin["location"].removeprefix("file://")
    pod = _one(release, "Deployment")["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert init["image"] == catalog.ROLLOUTS_GATEWAY_PLUGIN_IMAGE and init["command"][-1] == path
    [controller] = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in controller["volumeMounts"]}
    directory = path.rsplit("/", 1)[0]
    assert mounts[directory] == init["volumeMounts"][0]["name"]
    assert mounts[directory] in {volume["name"] for volume in pod["volumes"]}
    # The chart's provider RBAC lets the controller (and so the plugin) update HTTPRoutes.
    rules = _one(release, "ClusterRole", "argo-rollouts")["rules"]
    assert any("httproutes" in rule.get("resources", []) and "update" in rule["verbs"] for rule in rules)


def test_cert_manager_solves_through_gateway_api(rendered: dict[str, RenderedRelease]) -> None:
    configs = [obj for obj in rendered["cert-manager"].objects() if obj["kind"] == "ConfigMap"
               and "enableGatewayAPI" in "".join(obj.get("data", {}).values())]
    assert configs, "cert-manager's controller config does not carry enableGatewayAPI"
    [config] = configs
    assert yaml.safe_load(next(iter(config["data"].values())))["enableGatewayAPI"] is True


def test_external_dns_watches_routes_in_the_gateway_domain(rendered: dict[str, RenderedRelease]) -> None:
    [container] = _one(rendered["external-dns"], "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert {"--source=gateway-httproute", "--domain-filter=ml.acme.example", "--provider=aws",
            "--txt-owner-id=shipway-prod", "--policy=upsert-only"} <= set(args), args
