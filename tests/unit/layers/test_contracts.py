"""The contract between render, tenancy and GitOps, on every example platform with every example model.

- every namespace a NetworkPolicy admits traffic from is one the platform creates (kube-system, which
  every cluster has, aside), so no policy names a namespace nothing makes;
- every kind `shipway render` emits for a team is one the team's AppProject lets Argo CD sync, into a
  namespace the AppProject lets it sync to;
- every HTTPRoute attaches to a listener of the shared Gateway that admits its namespace and its host,
  and routes to Services the same render emits (or, for zot, the chart's Service).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipway.delivery.errors import RenderRefused
from shipway.delivery.render import render
from shipway.render import registry
from shipway.spec import load_model_spec

MODELS = Path(__file__).resolve().parents[1] / "delivery" / "models"
# Every cluster has it; CoreDNS runs there.
CLUSTER_NAMESPACES = {"kube-system"}


def _model_objects(synthesised) -> list[dict[str, Any]]:
    """Every example model rendered for every team and environment of the platform that can run it."""
    blueprint, profile = synthesised.blueprint, synthesised.result.profile
    found, rendered = [], 0
    for path in sorted(MODELS.glob("*.yaml")):
        spec = load_model_spec(path)
        for team in blueprint.teams:
            for env in blueprint.team_environments(team):
                try:
                    found += render(spec.model_copy(update={"team": team.name}), profile, env, None)
                    rendered += 1
                except RenderRefused:
                    continue  # e.g. a GPU model on a team without GPU pools
    assert rendered, "no example model renders on this platform"
    return found


@pytest.fixture(scope="module")
def model_objects(each_blueprint) -> list[dict[str, Any]]:
    return _model_objects(each_blueprint)


def _admitted_namespaces(policy: dict[str, Any], namespaces: list[dict[str, Any]]) -> set[str]:
    """The namespaces a policy's peers name, by name or (for label selectors) by the label they select on."""
    names = set()
    for direction in ("ingress", "egress"):
        for rule in policy["spec"].get(direction, []):
            for peer in rule.get("from", []) + rule.get("to", []):
                selector = peer.get("namespaceSelector")
                if not selector:
                    continue  # absent: the policy's own namespace; {}: every namespace
                if "matchLabels" in selector:
                    names.add(selector["matchLabels"]["kubernetes.io/metadata.name"])
                for expression in selector.get("matchExpressions", []):
                    assert expression["operator"] == "Exists", policy["metadata"]["name"]
                    labelled = {ns["metadata"]["name"] for ns in namespaces
                                if expression["key"] in ns["metadata"]["labels"]}
                    # A label selector that no namespace of the platform carries admits nothing real.
                    names.add(f"<namespaces labelled {expression['key']}>" if not labelled else next(iter(labelled)))
    return names


def test_every_namespace_a_network_policy_admits_is_created_by_the_platform(each_blueprint, model_objects):
    namespaces = each_blueprint.kind("Namespace")
    created = {ns["metadata"]["name"] for ns in namespaces} | CLUSTER_NAMESPACES
    policies = each_blueprint.kind("NetworkPolicy") + [o for o in model_objects if o["kind"] == "NetworkPolicy"]
    assert policies
    for policy in policies:
        missing = _admitted_namespaces(policy, namespaces) - created
        assert not missing, f"{policy['metadata']['namespace']}/{policy['metadata']['name']} admits {missing}"


def test_every_kind_a_team_syncs_is_allowed_by_its_app_project(each_blueprint, model_objects):
    projects = {p["metadata"]["name"]: p["spec"] for p in each_blueprint.kind("AppProject")}
    assert set(projects) == {team.name for team in each_blueprint.blueprint.teams}
    kinds_seen = set()
    for obj in model_objects:
        team = obj["metadata"]["labels"]["shipway.dev/team"]
        project = projects[team]
        group = obj["apiVersion"].rpartition("/")[0]
        assert {"group": group, "kind": obj["kind"]} in project["namespaceResourceWhitelist"], (team, obj["kind"])
        assert {"server": "https://kubernetes.default.svc", "namespace": obj["metadata"]["namespace"]} in \
            project["destinations"]
        kinds_seen.add(obj["kind"])
    assert {"Rollout", "Service", "HTTPRoute"} <= kinds_seen


def _host_matches(listener_host: str, host: str) -> bool:
    if listener_host.startswith("*."):
        return host.endswith(listener_host[1:]) and host != listener_host[2:]
    return host == listener_host


def test_every_route_attaches_to_a_listener_that_admits_it(each_blueprint, model_objects):
    gateways = {(g["metadata"]["namespace"], g["metadata"]["name"]): g for g in each_blueprint.kind("Gateway")}
    services = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in model_objects if o["kind"] == "Service"}
    services.add((registry.NAMESPACE, registry.RELEASE))  # the zot chart's Service
    routes = each_blueprint.kind("HTTPRoute") + [o for o in model_objects if o["kind"] == "HTTPRoute"]
    assert any(r["metadata"]["namespace"].startswith(tuple(t.name for t in each_blueprint.blueprint.teams))
               for r in routes)
    for route in routes:
        namespace = route["metadata"]["namespace"]
        for parent in route["spec"]["parentRefs"]:
            gateway = gateways[(parent.get("namespace", namespace), parent["name"])]
            listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
            listener = listeners[parent["sectionName"]]
            allowed = listener["allowedRoutes"]["namespaces"]
            if allowed["from"] == "Same":
                assert namespace == gateway["metadata"]["namespace"], route["metadata"]["name"]
            else:
                assert allowed["selector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
            for host in route["spec"].get("hostnames", []):
                assert _host_matches(listener["hostname"], host), (host, listener["hostname"])
        for rule in route["spec"]["rules"]:
            for ref in rule.get("backendRefs", []):
                assert (namespace, ref["name"]) in services, f"{route['metadata']['name']} -> {ref['name']}"
