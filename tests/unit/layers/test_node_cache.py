"""The node model cache: a platform DaemonSet with the host folder, reached by model pods on their own node."""

from __future__ import annotations

import kubernetes_validate
import pytest
import typer
from typer.main import get_command

from shipway import catalog
from shipway.charts.pod_security import required_level, violations
from shipway.render import node_cache, registry
from shipway.render.common import POD_SECURITY_EXCEPTIONS
from shipway.spec.blueprint import Blueprint

KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"
TEAMS = {"namespaceSelector": {"matchExpressions": [{"key": "shipway.dev/team", "operator": "Exists"}]}}


def _in_cache_namespace(rendered, kind: str) -> list[dict]:
    return [obj for obj in rendered.kind(kind) if obj["metadata"].get("namespace") == node_cache.NAMESPACE]


def _blueprint(**registry_spec) -> Blueprint:
    return Blueprint.model_validate({
        "metadata": {"name": "x"}, "cluster": {"kind": "eks", "region": "us-east-1"}, "gitops": {"enabled": False},
        "nodePools": [{"name": "system", "instanceType": "m6i.large"}], "registry": registry_spec,
        "teams": [{"name": "t"}]})


def test_every_blueprint_runs_the_cache_by_default_and_its_objects_validate_strictly(each_blueprint) -> None:
    [daemon_set] = _in_cache_namespace(each_blueprint, "DaemonSet")
    [service] = _in_cache_namespace(each_blueprint, "Service")
    for obj in (daemon_set, service):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    # A pod always reaches the cache on its own node, never another node's.
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    pod = daemon_set["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "hostPath" in v]
    cache = each_blueprint.blueprint.registry.node_cache
    assert volume["hostPath"] == {"path": cache.path, "type": "DirectoryOrCreate"}
    [serve] = pod["containers"]
    args = serve["args"]
    assert args[args.index("--max-size") + 1] == cache.max_size
    assert args[args.index("--registry") + 1] == registry.url(each_blueprint.blueprint).split("/")[0]
    security = serve["securityContext"]
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert set(serve["resources"]["limits"]) == {"cpu", "memory"}
    # The one root step may change the folder's owner and nothing else.
    [prepare] = pod["initContainers"]
    assert prepare["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert prepare["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False


def test_the_caches_namespace_admits_it_and_is_the_listed_exception(each_blueprint) -> None:
    """Pod Security checks (kubernetes/pod-security-admission policy/check_*.go, in shipway.charts.pod_security):
    host paths are refused by baseline and restricted, so the cache's namespace is the one exception it needs."""
    [daemon_set] = _in_cache_namespace(each_blueprint, "DaemonSet")
    [namespace] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == node_cache.NAMESPACE]
    level = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    template = daemon_set["spec"]["template"]
    assert violations(template["metadata"], template["spec"], level) == []
    assert required_level(template["metadata"], template["spec"]) == level == "privileged"
    assert POD_SECURITY_EXCEPTIONS[node_cache.NAMESPACE][0] == level
    for stricter in ("baseline", "restricted"):
        assert any("hostPath" in v for v in violations(template["metadata"], template["spec"], stricter))


def test_only_team_pods_reach_the_cache_and_the_cache_reaches_only_the_registry(each_blueprint) -> None:
    from shipway.render import gateway

    policies = {p["metadata"]["name"]: p["spec"] for p in _in_cache_namespace(each_blueprint, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [ingress] = policies["allow-platform-ingress"]["ingress"]
    assert ingress == {"ports": [{"protocol": "TCP", "port": node_cache.PORT}], "from": [TEAMS]}
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": gateway.NAMESPACE}}} not in \
        ingress["from"]
    [egress] = policies["allow-platform-egress"]["egress"]
    assert egress == {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": registry.NAMESPACE}}}],
                      "ports": [{"protocol": "TCP", "port": registry.SERVICE_PORT}]}
    # zot admits the cache; each team namespace may call the cache on its port.
    [zot_ingress] = [p["spec"]["ingress"][0] for p in each_blueprint.kind("NetworkPolicy")
                     if p["metadata"]["namespace"] == registry.NAMESPACE
                     and p["metadata"]["name"] == "allow-platform-ingress"]
    # (On kind zot's port is open to every address, for the nodes' image mirror through its NodePort.)
    assert "from" not in zot_ingress or {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": node_cache.NAMESPACE}}} in zot_ingress["from"]
    blueprint = each_blueprint.blueprint
    for team in blueprint.teams:
        for ns in blueprint.namespaces[team.name].values():
            [rule] = [p["spec"]["egress"] for p in each_blueprint.kind("NetworkPolicy")
                      if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == "allow-node-cache"][0]
            assert rule["ports"] == [{"protocol": "TCP", "port": node_cache.PORT}]


def test_an_external_registry_is_reached_by_the_cache_outside_the_private_ranges_on_its_port() -> None:
    from shipway.render import tenancy

    built = _blueprint(type="external", url="registry.example.com:8443/models")
    [daemon_set] = [o for o in node_cache.render(built)[1] if o["kind"] == "DaemonSet"]
    args = daemon_set["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--registry") + 1] == "registry.example.com:8443" and "--plain-http" not in args
    [egress] = [p["spec"]["egress"] for p in tenancy.platform_network_policies(built)
                if p["metadata"]["namespace"] == node_cache.NAMESPACE and p["metadata"]["name"] == "allow-platform-egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(tenancy.PRIVATE_RANGES)}}],
                       "ports": [{"protocol": "TCP", "port": 8443}]}]


def test_a_blueprint_that_turns_the_cache_off_renders_none_of_it() -> None:
    from shipway.render import profile, tenancy

    built = _blueprint(type="zot", nodeCache={"enabled": False})
    assert node_cache.render(built) == ([], [])
    assert "nodeCache" not in profile.platform_profile(built)["registry"]
    namespaces = {p["metadata"]["namespace"] for p in tenancy.platform_network_policies(built)}
    assert node_cache.NAMESPACE not in namespaces
    team_policies = [p["metadata"]["name"] for p in tenancy.render(built).objects if p["kind"] == "NetworkPolicy"]
    assert "allow-node-cache" not in team_policies


@pytest.mark.parametrize("path", ["relative/cache", "/", "/var/lib/cache/", "/var/lib/ cache"])
def test_a_cache_path_that_is_not_an_absolute_folder_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        _blueprint(type="zot", nodeCache={"path": path})


def test_the_rendered_cache_command_line_parses_with_the_real_cli(kind_dev) -> None:
    from shipway.cli import artifacts

    [daemon_set] = _in_cache_namespace(kind_dev, "DaemonSet")
    args = daemon_set["spec"]["template"]["spec"]["containers"][0]["args"]
    app = typer.Typer()
    artifacts.register(app)
    group = get_command(app)
    model = group.get_command(group.make_context("shipway", list(args)), "model")
    serve = model.get_command(model.make_context("model", args[1:]), "cache-serve")
    parsed = serve.make_context("cache-serve", args[2:]).params
    assert str(parsed["cache_dir"]) == node_cache.CACHE_MOUNT and parsed["plain_http"] is True
    assert parsed["listen"] == f"0.0.0.0:{node_cache.PORT}"
