"""Traffic: a canary walked through its steps sets the route weights exactly; blue-green switches the route;
without a gateway, a client Service selecting both still sends the canary traffic, in proportion to its pods.

How Argo Rollouts' Gateway API plugin (argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi v0.15.0,
pkg/plugin/httproute.go SetWeight) sets weights: it reads the HTTPRoute named in the Rollout's plugin
config (in the config's namespace), finds the rules whose backendRefs name the Rollout's canaryService and
stableService, and sets the canary's weight to the step's weight and the stable's to 100 minus it. A route
without both backends in one rule makes the plugin fail the step.
"""

from __future__ import annotations

from typing import Any

import pytest

from delivery_cases import CASES, ROOT, model, profile_of
from shipway import catalog
from shipway.delivery.render import render
from shipway.render import serving
from shipway.render.profile import platform_profile
from shipway.spec import load_blueprint


def _rendered(case: str, profile: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    blueprint, environment, stable = CASES[case]
    return render(model(case), profile or profile_of(blueprint), environment, stable)


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def plugin_weights(rollout: dict[str, Any], routes: list[dict[str, Any]], weight: int) -> dict[str, int]:
    """The backend weights the plugin leaves on the route after `setWeight: weight`, by Service name."""
    canary = rollout["spec"]["strategy"]["canary"]
    config = canary["trafficRouting"]["plugins"][catalog.ROLLOUTS_GATEWAY_PLUGIN]
    namespace = config.get("namespace", rollout["metadata"]["namespace"])
    [route] = [r for r in routes if r["metadata"]["name"] == config["httpRoute"]
               and r["metadata"]["namespace"] == namespace]
    rules = [rule for rule in route["spec"]["rules"]
             if {canary["canaryService"], canary["stableService"]} <= {ref["name"] for ref in rule["backendRefs"]}]
    if not rules:
        raise AssertionError(f"route {route['metadata']['name']} has no rule with both canary and stable backends")
    weights: dict[str, int] = {}
    for rule in rules:
        for ref in rule["backendRefs"]:
            if ref["name"] == canary["canaryService"]:
                ref["weight"] = weight
            elif ref["name"] == canary["stableService"]:
                ref["weight"] = 100 - weight
            weights[ref["name"]] = ref["weight"]
    return weights


def test_each_canary_step_sets_the_route_to_exactly_its_weight():
    objects = _rendered("canary-sklearn")
    rollout = _one(objects, "Rollout", "churn")
    routes = [obj for obj in objects if obj["kind"] == "HTTPRoute"]
    steps = [step["setWeight"] for step in rollout["spec"]["strategy"]["canary"]["steps"] if "setWeight" in step]
    assert steps == [10, 50]
    # Before the first step the route sends everything to stable.
    [rule] = routes[0]["spec"]["rules"]
    assert {ref["name"]: ref["weight"] for ref in rule["backendRefs"]} == {"churn-stable": 100, "churn-canary": 0}
    for weight in [*steps, 100]:
        assert plugin_weights(rollout, routes, weight) == {"churn-stable": 100 - weight, "churn-canary": weight}


def test_the_routed_services_are_the_rollouts_own():
    objects = _rendered("canary-sklearn")
    canary = _one(objects, "Rollout", "churn")["spec"]["strategy"]["canary"]
    services = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Service"}
    assert {canary["canaryService"], canary["stableService"]} <= services
    [route] = [obj for obj in objects if obj["kind"] == "HTTPRoute"]
    assert {ref["name"] for ref in route["spec"]["rules"][0]["backendRefs"]} == {
        canary["canaryService"], canary["stableService"]}


def test_the_plugin_the_rollout_names_is_the_one_the_controller_loads():
    release = serving.rollouts_values(load_blueprint(ROOT / "blueprints" / "kind-dev.yaml"))
    loaded = {plugin["name"] for plugin in release["controller"]["trafficRouterPlugins"]}
    rollout = _one(_rendered("canary-sklearn"), "Rollout", "churn")
    assert set(rollout["spec"]["strategy"]["canary"]["trafficRouting"]["plugins"]) <= loaded


def test_the_route_attaches_to_its_team_listener_under_the_blueprint_host_scheme():
    objects = _rendered("canary-sklearn")
    [route] = [obj for obj in objects if obj["kind"] == "HTTPRoute"]
    [parent] = route["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == (
        "shipway", "envoy-gateway-system", "https-fraud-staging")
    assert route["spec"]["hostnames"] == ["churn.fraud.staging.shipway-dev.localhost"]


def test_a_path_scheme_strips_the_model_prefix():
    blueprint = load_blueprint(ROOT / "blueprints" / "gke-prod.yaml")
    spec = model("canary-sklearn").model_copy(update={"team": "recsys"})
    [route] = [obj for obj in render(spec, platform_profile(blueprint), "prod", None) if obj["kind"] == "HTTPRoute"]
    assert route["spec"]["hostnames"] == ["recsys.prod.ml.acme-gke.example"]
    [rule] = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/churn"}}]
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]


def test_blue_green_routes_to_the_active_service_and_previews_on_its_own_host():
    objects = _rendered("blue-green-xgboost")
    blue_green = next(obj for obj in objects if obj["kind"] == "Rollout")["spec"]["strategy"]["blueGreen"]
    routes = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "HTTPRoute"}
    name = blue_green["activeService"]
    # Argo Rollouts switches the active Service's selector at promotion, so the route switches with it.
    assert [ref["name"] for ref in routes[name]["spec"]["rules"][0]["backendRefs"]] == [blue_green["activeService"]]
    preview = routes[blue_green["previewService"]]
    assert [ref["name"] for ref in preview["spec"]["rules"][0]["backendRefs"]] == [blue_green["previewService"]]
    assert preview["spec"]["hostnames"][0].startswith(f"{blue_green['previewService']}.")


def test_llm_routes_wait_for_streamed_completions():
    [route] = [obj for obj in _rendered("llm-vllm-mig") if obj["kind"] == "HTTPRoute"]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "600s"}


# --- without a gateway ----------------------------------------------------------------------


def _no_gateway_profile() -> dict[str, Any]:
    blueprint = load_blueprint(ROOT / "blueprints" / "kind-dev.yaml")
    return platform_profile(blueprint.model_copy(update={
        "gateway": blueprint.gateway.model_copy(update={"enabled": False})}))


def test_without_a_gateway_the_client_service_selects_both_and_no_route_is_rendered():
    """Without a traffic router Argo Rollouts approximates the weight with pod counts (argoproj/argo-rollouts
    utils/replicaset/canary.go, approximateWeightedCanaryStableReplicaCounts), which only a Service selecting
    both ReplicaSets turns into traffic."""
    objects = _rendered("canary-sklearn", _no_gateway_profile())
    rollout = _one(objects, "Rollout", "churn")
    canary = rollout["spec"]["strategy"]["canary"]
    assert "trafficRouting" not in canary
    assert not [obj for obj in objects if obj["kind"] == "HTTPRoute"]
    client = _one(objects, "Service", "churn")
    # The Rollout's own selector, with no pod-template hash: stable and canary pods alike.
    assert client["spec"]["selector"] == rollout["spec"]["selector"]["matchLabels"]
    assert "churn" not in (canary["canaryService"], canary["stableService"])
