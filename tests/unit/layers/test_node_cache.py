"""The node model cache as a CSI driver: the CSIDriver, and a node plugin DaemonSet with its registrar sidecar.

The names and paths are the contract between this render and the plugin (`shipway model csi-node`,
shipway.artifacts.csi); tests/unit/layers/test_csi_contract.py holds the render to the plugin's own checks.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from shipway import catalog
from shipway.charts.pod_security import required_level, violations
from shipway.render import node_cache, registry
from shipway.render.common import POD_SECURITY_EXCEPTIONS
from shipway.spec.blueprint import Blueprint

KUBERNETES_VERSION = f"{catalog.KUBERNETES_VERSION}.0"


def _in_cache_namespace(rendered, kind: str) -> list[dict]:
    return [obj for obj in rendered.kind(kind) if obj["metadata"].get("namespace") == node_cache.NAMESPACE]


def _blueprint(**registry_spec) -> Blueprint:
    return Blueprint.model_validate({
        "metadata": {"name": "x"}, "cluster": {"kind": "eks", "region": "us-east-1"}, "gitops": {"enabled": False},
        "nodePools": [{"name": "system", "instanceType": "m6i.large"}], "registry": registry_spec,
        "teams": [{"name": "t"}]})


def _pod(rendered) -> dict:
    [daemon_set] = _in_cache_namespace(rendered, "DaemonSet")
    return daemon_set["spec"]["template"]["spec"]


def _container(pod: dict, name: str) -> dict:
    [found] = [c for c in pod["containers"] if c["name"] == name]
    return found


def _flag(args: list[str], name: str) -> str:
    """The value of `--name VALUE` or `--name=VALUE`."""
    for index, arg in enumerate(args):
        if arg == name:
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def _mount(container: dict, volume: str) -> dict:
    [found] = [m for m in container["volumeMounts"] if m["name"] == volume]
    return found


def _host_path(pod: dict, volume: str) -> str:
    [found] = [v["hostPath"]["path"] for v in pod["volumes"] if v["name"] == volume]
    return found


def test_every_blueprint_runs_the_csi_driver_and_its_objects_validate_strictly(each_blueprint) -> None:
    [driver] = [d for d in each_blueprint.kind("CSIDriver") if d["metadata"]["name"] == node_cache.DRIVER]
    [daemon_set] = _in_cache_namespace(each_blueprint, "DaemonSet")
    for obj in (driver, daemon_set):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    # Inline volumes only, nothing to attach, the pod's identity on publish, and the kubelet never chowns
    # the shared cache for a pod's fsGroup.
    assert driver["spec"] == {"attachRequired": False, "podInfoOnMount": True, "volumeLifecycleModes": ["Ephemeral"],
                              "fsGroupPolicy": "None", "requiresRepublish": False}
    # No Service: pods no longer reach the cache over the network.
    assert _in_cache_namespace(each_blueprint, "Service") == []


def test_the_plugin_is_privileged_for_its_mounts_and_bounded_and_the_registrar_is_locked_down(each_blueprint) -> None:
    pod = _pod(each_blueprint)
    plugin, registrar = _container(pod, "plugin"), _container(pod, "node-driver-registrar")
    assert [c["name"] for c in pod["containers"]] == ["plugin", "node-driver-registrar"]
    assert "initContainers" not in pod and pod["automountServiceAccountToken"] is False
    # Model pods run on every pool, tainted GPU pools included; the plugin is a node agent.
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    security = plugin["securityContext"]
    assert security["privileged"] is True and security["readOnlyRootFilesystem"] is True
    assert set(plugin["resources"]["limits"]) == {"cpu", "memory"}
    assert _mount(plugin, "pods-dir") == {"name": "pods-dir", "mountPath": "/var/lib/kubelet/pods",
                                          "mountPropagation": "Bidirectional"}
    assert _host_path(pod, "pods-dir") == "/var/lib/kubelet/pods"
    # The node name comes from the downward API and is the node id the plugin reports.
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in plugin["env"]
    assert _flag(plugin["args"], "--node-id") == "$(NODE_NAME)"
    assert _flag(plugin["args"], "--kubelet-dir") == "/var/lib/kubelet"
    # The registrar: pinned by digest, nothing it does not need.
    assert registrar["image"] == catalog.CSI_NODE_DRIVER_REGISTRAR_IMAGE
    assert registrar["image"].startswith("registry.k8s.io/sig-storage/csi-node-driver-registrar:v")
    assert "@sha256:" in registrar["image"]
    context = registrar["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True and "privileged" not in context
    assert set(registrar["resources"]["limits"]) == {"cpu", "memory"}
    assert all("mountPropagation" not in mount for mount in registrar["volumeMounts"])


def test_the_registrar_registers_the_socket_the_plugin_listens_on(each_blueprint) -> None:
    """The kubelet dials --kubelet-registration-path on the host; that must be the plugin's socket, which the
    plugin creates at --endpoint inside its socket-dir mount, the host folder the registrar also mounts."""
    pod = _pod(each_blueprint)
    plugin, registrar = _container(pod, "plugin"), _container(pod, "node-driver-registrar")
    endpoint = _flag(plugin["args"], "--endpoint")
    assert endpoint.startswith("unix://")
    plugin_socket = endpoint.removeprefix("unix://")
    plugin_mount = _mount(plugin, "socket-dir")["mountPath"]
    assert plugin_socket.startswith(f"{plugin_mount}/")
    socket_name = plugin_socket.removeprefix(f"{plugin_mount}/")
    host_socket = f"{_host_path(pod, 'socket-dir')}/{socket_name}"
    assert _flag(registrar["args"], "--kubelet-registration-path") == host_socket
    assert host_socket == f"/var/lib/kubelet/plugins/{node_cache.DRIVER}/csi.sock"
    assert _flag(registrar["args"], "--csi-address") == f"{_mount(registrar, 'socket-dir')['mountPath']}/{socket_name}"
    # node-driver-registrar writes its registration socket to /registration, the kubelet's plugins_registry.
    assert _mount(registrar, "registration-dir")["mountPath"] == "/registration"
    assert _host_path(pod, "registration-dir") == "/var/lib/kubelet/plugins_registry"


def test_the_cache_folder_and_registry_are_the_blueprints(each_blueprint) -> None:
    pod = _pod(each_blueprint)
    plugin = _container(pod, "plugin")
    cache = each_blueprint.blueprint.registry.node_cache
    args = plugin["args"]
    assert args[:2] == ["model", "csi-node"]
    assert _host_path(pod, "cache") == cache.path
    assert _flag(args, "--dir") == _mount(plugin, "cache")["mountPath"]
    assert _flag(args, "--max-size") == cache.max_size
    # The one registry the plugin pulls from is the host pull secrets are keyed by.
    assert _flag(args, "--registry") == registry.server(each_blueprint.blueprint)
    assert ("--plain-http" in args) is (each_blueprint.blueprint.registry.type == "zot")


def test_the_caches_namespace_admits_it_and_is_the_listed_exception(each_blueprint) -> None:
    """Pod Security checks (kubernetes/pod-security-admission policy/check_*.go, in shipway.charts.pod_security):
    host paths and privileged containers are refused by baseline and restricted, so the cache's namespace is
    the one exception it needs."""
    [daemon_set] = _in_cache_namespace(each_blueprint, "DaemonSet")
    [namespace] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == node_cache.NAMESPACE]
    level = namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    template = daemon_set["spec"]["template"]
    assert violations(template["metadata"], template["spec"], level) == []
    assert required_level(template["metadata"], template["spec"]) == level == "privileged"
    assert POD_SECURITY_EXCEPTIONS[node_cache.NAMESPACE][0] == level
    baseline = violations(template["metadata"], template["spec"], "baseline")
    assert "container plugin privileged" in baseline and any("hostPath" in v for v in baseline)


def test_nothing_reaches_the_cache_and_the_cache_reaches_only_dns_and_the_registry(each_blueprint) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _in_cache_namespace(each_blueprint, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # The kubelet calls the plugin through a host socket: no port is open on the pod network.
    assert "allow-platform-ingress" not in policies
    assert policies["allow-dns"]["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53},
                                                          {"protocol": "TCP", "port": 53}]
    [egress] = policies["allow-platform-egress"]["egress"]
    blueprint = each_blueprint.blueprint
    if blueprint.registry.type == "zot":
        assert egress == {"to": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": registry.NAMESPACE}}}],
            "ports": [{"protocol": "TCP", "port": registry.SERVICE_PORT}]}
        [zot_ingress] = [p["spec"]["ingress"][0] for p in each_blueprint.kind("NetworkPolicy")
                         if p["metadata"]["namespace"] == registry.NAMESPACE
                         and p["metadata"]["name"] == "allow-platform-ingress"]
        # (On kind zot's port is open to every address, for the nodes' image mirror through its NodePort.)
        assert "from" not in zot_ingress or {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": node_cache.NAMESPACE}}} in zot_ingress["from"]
    # Model pods no longer call the cache: no team namespace opens a way to it.
    team_namespaces = {ns for team in blueprint.teams for ns in blueprint.namespaces[team.name].values()}
    for policy in each_blueprint.kind("NetworkPolicy"):
        if policy["metadata"]["namespace"] in team_namespaces:
            for rule in policy["spec"].get("egress", []):
                assert {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": node_cache.NAMESPACE}}} not in rule.get("to", [])


def test_an_external_registry_is_reached_by_the_plugin_outside_the_private_ranges_on_its_port() -> None:
    from shipway.render import tenancy

    built = _blueprint(type="external", url="registry.example.com:8443/models")
    [daemon_set] = [o for o in node_cache.render(built)[1] if o["kind"] == "DaemonSet"]
    args = daemon_set["spec"]["template"]["spec"]["containers"][0]["args"]
    assert _flag(args, "--registry") == "registry.example.com:8443" and "--plain-http" not in args
    [egress] = [p["spec"]["egress"] for p in tenancy.platform_network_policies(built)
                if p["metadata"]["namespace"] == node_cache.NAMESPACE and p["metadata"]["name"] == "allow-platform-egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(tenancy.PRIVATE_RANGES)}}],
                       "ports": [{"protocol": "TCP", "port": 8443}]}]


def test_on_gke_a_quota_admits_the_plugins_critical_priority_outside_kube_system(gke_prod, eks_prod) -> None:
    """GKE admits pods of system-node-critical outside kube-system only under a ResourceQuota whose scope names
    that priority class; its bound is GKE's most nodes a cluster may have, so no node goes without the plugin."""
    [quota] = _in_cache_namespace(gke_prod, "ResourceQuota")
    kubernetes_validate.validate(quota, KUBERNETES_VERSION, strict=True)
    [expression] = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert expression["scopeName"] == "PriorityClass" and expression["operator"] == "In"
    assert _pod(gke_prod)["priorityClassName"] in expression["values"]
    assert int(quota["spec"]["hard"]["pods"]) >= node_cache.GKE_MAX_NODES
    assert _in_cache_namespace(eks_prod, "ResourceQuota") == []


def test_a_blueprint_that_turns_the_cache_off_renders_none_of_it() -> None:
    from shipway.render import profile, tenancy

    built = _blueprint(type="zot", nodeCache={"enabled": False})
    assert node_cache.render(built) == ([], [])
    assert "nodeCache" not in profile.platform_profile(built)["registry"]
    namespaces = {p["metadata"]["namespace"] for p in tenancy.platform_network_policies(built)}
    assert node_cache.NAMESPACE not in namespaces


def test_the_profile_names_the_driver_model_pods_mount_through(kind_dev) -> None:
    assert kind_dev.result.profile["registry"]["nodeCache"] == {"driver": node_cache.DRIVER}


@pytest.mark.parametrize("path", ["relative/cache", "/", "/var/lib/cache/", "/var/lib/ cache"])
def test_a_cache_path_that_is_not_an_absolute_folder_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        _blueprint(type="zot", nodeCache={"path": path})


def test_a_kubelet_kept_elsewhere_is_where_the_plugin_mounts_registers_and_checks_targets() -> None:
    """k0s, MicroK8s and others keep the kubelet's root elsewhere: a plugin looking in /var/lib/kubelet there
    never registers, and every model pod by digest waits for its volume for ever."""
    root = "/var/lib/k0s/kubelet"
    pod = _pod_of(_blueprint(type="zot", nodeCache={"kubeletDir": root}))
    plugin, registrar = _container(pod, "plugin"), _container(pod, "node-driver-registrar")
    assert _flag(plugin["args"], "--kubelet-dir") == root
    assert _host_path(pod, "pods-dir") == _mount(plugin, "pods-dir")["mountPath"] == f"{root}/pods"
    assert _host_path(pod, "registration-dir") == f"{root}/plugins_registry"
    assert _flag(registrar["args"], "--kubelet-registration-path") == f"{root}/plugins/{node_cache.DRIVER}/csi.sock"
    assert _host_path(pod, "socket-dir") == f"{root}/plugins/{node_cache.DRIVER}"


def test_a_registrar_that_lost_its_registration_is_restarted(each_blueprint) -> None:
    """node-driver-registrar's --http-endpoint serves /healthz, failing while its registration socket is gone
    (kubernetes-csi/node-driver-registrar v2.13.0 README, "Health Check with the http server"; the flag in
    cmd/csi-node-driver-registrar/main.go); the liveness probe asks it, on the pod's address (":port")."""
    registrar = _container(_pod(each_blueprint), "node-driver-registrar")
    endpoint = _flag(registrar["args"], "--http-endpoint")
    assert endpoint.startswith(":"), "127.0.0.1 would refuse the kubelet's probe, which dials the pod's address"
    port = int(endpoint.removeprefix(":"))
    [named] = [p for p in registrar["ports"] if p["containerPort"] == port]
    probe = registrar["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] in (named["name"], port)


def _pod_of(blueprint: Blueprint) -> dict:
    [daemon_set] = [obj for obj in node_cache.render(blueprint)[1] if obj["kind"] == "DaemonSet"]
    return daemon_set["spec"]["template"]["spec"]
