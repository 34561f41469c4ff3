"""Tenancy: restricted namespaces, quotas with GPUs, limits, default-deny, RBAC, priority classes."""

from __future__ import annotations

from shipway.render import gateway
from shipway.render.tenancy import TEAM_ROLE
from shipway.spec.model import SIDECAR_PORT


def test_every_team_env_namespace_has_its_guard_rails(each_blueprint):
    blueprint = each_blueprint.blueprint
    for team in blueprint.teams:
        for env, ns in blueprint.namespaces[team.name].items():
            [namespace] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == ns]
            labels = namespace["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            assert labels["shipway.dev/environment"] == env
            [quota] = [q for q in each_blueprint.kind("ResourceQuota") if q["metadata"]["namespace"] == ns]
            hard = quota["spec"]["hard"]
            assert hard["requests.nvidia.com/gpu"] == str(team.quota.gpus)
            assert hard["requests.cpu"] == team.quota.cpu and hard["limits.memory"] == team.quota.memory
            policies = {p["metadata"]["name"]: p for p in each_blueprint.kind("NetworkPolicy")
                        if p["metadata"]["namespace"] == ns}
            assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            assert {"allow-dns", "allow-prometheus", "allow-gateway"} <= set(policies)
            # Only the gateway's proxies, only on the sidecar's serving port.
            assert policies["allow-gateway"]["spec"]["ingress"] == [{
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": gateway.NAMESPACE}}}],
                "ports": [{"protocol": "TCP", "port": SIDECAR_PORT}]}]
            assert any(lr["metadata"]["namespace"] == ns for lr in each_blueprint.kind("LimitRange"))


def test_eks_quotas_match_the_blueprint(eks_prod):
    hard = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in eks_prod.kind("ResourceQuota")}
    assert hard["llm-prod"]["requests.nvidia.com/gpu"] == "56"
    assert hard["fraud-staging"]["limits.cpu"] == "64"


def test_role_bindings_name_the_team_groups(eks_prod):
    bindings = {b["metadata"]["namespace"]: b for b in eks_prod.kind("RoleBinding")
                if b["roleRef"]["name"] == TEAM_ROLE}
    assert bindings["fraud-prod"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "fraud-ml-engineers"}]


def test_serving_preempts_batch(kind_dev):
    classes = {c["metadata"]["name"]: c for c in kind_dev.kind("PriorityClass")}
    assert classes["shipway-serving"]["value"] > classes["shipway-batch"]["value"]
    assert classes["shipway-batch"]["preemptionPolicy"] == "Never"


def test_tenancy_resources_are_children_of_the_tenancy_layer(kind_dev):
    for resource in kind_dev.result.resources:
        if resource.name.startswith("shipway-dev-tenancy-"):
            assert kind_dev.parent_type(resource) == "shipway:tenancy:Tenancy"
            assert resource.provider == "shipway-dev-cluster-provider-id"


def test_mig_slices_are_capped_by_the_team_gpu_quota(eks_prod):
    """eks-prod partitions its h100 pool with MIG (mixed, all-1g.10gb); team llm may use it, team fraud not."""
    hard = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in eks_prod.kind("ResourceQuota")}
    assert hard["llm-prod"]["requests.nvidia.com/mig-1g.10gb"] == "56" == hard["llm-prod"]["requests.nvidia.com/gpu"]
    assert not any(key.startswith("requests.nvidia.com/mig-") for key in hard["fraud-prod"])


def test_quota_resources_follow_the_sharing_strategy():
    from shipway.render import tenancy
    from shipway.spec.blueprint import Blueprint

    def blueprint(sharing):
        return Blueprint.model_validate({
            "metadata": {"name": "q"}, "cluster": {"kind": "eks", "region": "us-east-1"},
            "gitops": {"enabled": False},
            "nodePools": [{"name": "system", "instanceType": "m6i.large"},
                          {"name": "a100", "instanceType": "p4d.24xlarge", "maxSize": 1,
                           "gpu": {"model": "a100-40gb", "count": 8}}],
            "gpuStack": {"sharing": sharing},
            "teams": [{"name": "t", "quota": {"gpus": 8}}]})

    def resources(sharing):
        built = blueprint(sharing)
        return tenancy.gpu_resources(built, built.teams[0])

    assert resources({"strategy": "mig", "profile": "all-balanced"}) == [
        "nvidia.com/gpu", "nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb"]
    assert resources({"strategy": "mig", "migStrategy": "single", "profile": "all-1g.5gb"}) == ["nvidia.com/gpu"]
    assert resources({"strategy": "time-slicing", "replicas": 4, "renameByDefault": True}) == [
        "nvidia.com/gpu", "nvidia.com/gpu.shared"]
    built = blueprint({"strategy": "mig", "profile": "all-1g.5gb"})
    quota = tenancy.resource_quota(built.teams[0], "t-prod", tenancy.gpu_resources(built, built.teams[0]))
    assert quota["spec"]["hard"]["requests.nvidia.com/mig-1g.5gb"] == "8"


def test_an_external_registry_opens_https_egress_outside_the_private_ranges():
    from shipway.render import tenancy
    from shipway.spec.blueprint import Blueprint

    def policies(url):
        built = Blueprint.model_validate({
            "metadata": {"name": "ext"}, "cluster": {"kind": "kind"}, "gitops": {"enabled": False},
            "registry": {"type": "external", "url": url, "username": "puller"}, "teams": [{"name": "a"}]})
        return {p["metadata"]["name"]: p for p in tenancy.render(built).objects
                if p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == "a-prod"}

    egress = policies("registry.example.com/ml")["allow-external-registry"]["spec"]
    assert egress["policyTypes"] == ["Egress"] and egress["podSelector"] == {}
    [rule] = egress["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(tenancy.PRIVATE_RANGES)}}]
    assert "169.254.0.0/16" in tenancy.PRIVATE_RANGES, "the cloud metadata service stays unreachable"
    assert policies("harbor.example.com:8443/ml")["allow-external-registry"]["spec"]["egress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8443}]


def test_the_in_cluster_registry_needs_no_external_egress(each_blueprint):
    names = {p["metadata"]["name"] for p in each_blueprint.kind("NetworkPolicy")}
    assert "allow-registry" in names and "allow-external-registry" not in names


def _policies(rendered, namespace: str) -> dict:
    return {p["metadata"]["name"]: p["spec"] for p in rendered.kind("NetworkPolicy")
            if p["metadata"]["namespace"] == namespace}


def test_every_platform_namespace_with_pods_is_default_deny(each_blueprint):
    """Issue #16 finding 6: platform namespaces had no NetworkPolicy at all."""
    from shipway.render import tenancy

    expected = {flows.namespace for flows in tenancy.platform_flows(each_blueprint.blueprint)}
    platform = {n["metadata"]["name"] for n in each_blueprint.kind("Namespace")
                if "shipway.dev/team" not in n["metadata"].get("labels", {})}
    # shipway-system holds only the node-pool inventory ConfigMap: no pod runs there.
    assert expected == platform - {"shipway-system"}
    assert {"argo-rollouts", "shipway-registry"} <= expected | {"shipway-registry"}
    for namespace in expected:
        policies = _policies(each_blueprint, namespace)
        assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        assert {"allow-dns", "allow-prometheus", "allow-same-namespace"} <= set(policies)


def test_zot_takes_team_pods_and_the_gateway_on_its_port_and_calls_nothing(eks_prod):
    policies = _policies(eks_prod, "shipway-registry")
    assert "allow-platform-egress" not in policies
    [rule] = policies["allow-platform-ingress"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert {"namespaceSelector": {"matchExpressions": [{"key": "shipway.dev/team", "operator": "Exists"}]}} in rule["from"]


def test_only_prometheus_may_reach_into_every_namespace(eks_prod):
    from shipway.render import tenancy

    scraping = [flows.namespace for flows in tenancy.platform_flows(eks_prod.blueprint) if flows.scrape_everything]
    assert scraping == ["monitoring"]
    everywhere = [p for p in eks_prod.kind("NetworkPolicy")
                  for rule in p["spec"].get("egress", []) if {"namespaceSelector": {}} in rule.get("to", [])]
    assert {p["metadata"]["namespace"] for p in everywhere} == {"monitoring"}


def test_the_gateway_reaches_a_model_only_on_its_serving_port(kind_dev):
    """The sidecar's feedback port (labels) stays the team's own: NetworkPolicies add up, so the namespace's
    ingress-path policy itself must name the serving port."""
    from shipway.spec.model import SIDECAR_FEEDBACK_PORT, SIDECAR_PORT

    policies = _policies(kind_dev, "fraud-staging")
    [rule] = policies["allow-gateway"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": SIDECAR_PORT}]
    assert SIDECAR_FEEDBACK_PORT != SIDECAR_PORT


def test_team_role_creates_no_jobs_unless_the_blueprint_grants_them():
    """Finding 4: the team Role could create Jobs, which can mount the registry pull secret."""
    from shipway.render import tenancy
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "t"}, "cluster": {"kind": "kind"}, "gitops": {"enabled": False},
        "teams": [{"name": "a", "groups": ["a"]}, {"name": "b", "groups": ["b"], "runJobs": True}]})
    roles = {r["metadata"]["namespace"]: r for r in tenancy.render(blueprint).objects if r["kind"] == "Role"}

    def creatable(namespace: str) -> set[str]:
        return {resource for rule in roles[namespace]["rules"] if {"create", "patch", "update"} & set(rule["verbs"])
                for resource in rule["resources"]}

    assert "jobs" not in creatable("a-prod") and "pods" not in creatable("a-prod")
    assert "jobs" in creatable("b-prod") and "pods" not in creatable("b-prod")
    secrets = [rule for rule in roles["a-prod"]["rules"] if "secrets" in rule["resources"]]
    assert secrets == []


def _platform_rules(rendered, namespace: str) -> tuple[list, list]:
    policies = _policies(rendered, namespace)
    return (policies.get("allow-platform-egress", {}).get("egress", []),
            policies.get("allow-platform-ingress", {}).get("ingress", []))


def _ports(rule: dict) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}


def test_the_gpu_stack_namespace_is_default_deny_and_calls_only_the_api(each_blueprint):
    """Issue #16: the gpu-operator namespace was left without NetworkPolicies. Its controllers watch the API;
    nothing may call into it but Prometheus (the DCGM exporter) and its own pods."""
    policies = _policies(each_blueprint, "gpu-operator")
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-prometheus"]["ingress"] == [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}]
    egress, ingress = _platform_rules(each_blueprint, "gpu-operator")
    assert ingress == []
    assert [_ports(rule) for rule in egress] == [{443, 6443}]


def test_only_a_stack_that_installs_the_driver_reaches_package_mirrors():
    """The operator's driver container downloads kernel headers: HTTP and HTTPS, outside the private ranges only."""
    from shipway.render import tenancy
    from shipway.spec.blueprint import Blueprint

    def gpu_policies(install_driver: bool) -> list:
        built = Blueprint.model_validate({
            "metadata": {"name": "x"}, "cluster": {"kind": "eks", "region": "us-east-1"}, "gitops": {"enabled": False},
            "nodePools": [{"name": "system", "instanceType": "m6i.large"},
                          {"name": "a100", "instanceType": "p4d.24xlarge", "maxSize": 1,
                           "gpu": {"model": "a100-40gb", "count": 8}}],
            "gpuStack": {"installDriver": install_driver},
            "teams": [{"name": "t"}]})
        return [p for p in tenancy.platform_network_policies(built)
                if p["metadata"]["namespace"] == "gpu-operator" and p["metadata"]["name"] == "allow-platform-egress"]

    [without] = gpu_policies(False)
    assert [_ports(rule) for rule in without["spec"]["egress"]] == [{443, 6443}]
    [with_driver] = gpu_policies(True)
    out = [rule for rule in with_driver["spec"]["egress"] if _ports(rule) in ({443}, {80})]
    assert sorted(_ports(rule).pop() for rule in out) == [80, 443]
    for rule in out:
        assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(tenancy.PRIVATE_RANGES)}}]


def test_the_gateway_namespaces_admit_only_their_listeners_and_reach_only_serving_ports(eks_prod):
    """#14's gateway layer: the proxies take traffic from anywhere on the listeners' container ports and the
    controller's webhook port, and call team pods on the sidecar's serving port and zot, nothing else."""
    from shipway.render import registry, tenancy

    egress, ingress = _platform_rules(eks_prod, gateway.NAMESPACE)
    assert [(_ports(rule), "from" in rule) for rule in ingress] == [
        (set(tenancy.ENVOY_CONTAINER_PORTS), False), ({tenancy.ENVOY_GATEWAY_WEBHOOK_PORT}, False)]
    assert {10080, 10443} == set(tenancy.ENVOY_CONTAINER_PORTS)
    to_teams = [rule for rule in egress if rule["to"] == [tenancy.TEAM_NAMESPACES]]
    assert [_ports(rule) for rule in to_teams] == [{SIDECAR_PORT}]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": registry.NAMESPACE}}} in [
        target for rule in egress for target in rule["to"]]
    assert not [rule for rule in egress if _ports(rule) & {80, 22}]
    cert_egress, cert_ingress = _platform_rules(eks_prod, gateway.CERT_MANAGER_NAMESPACE)
    assert [_ports(rule) for rule in cert_ingress] == [{tenancy.WEBHOOK_PORTS["cert-manager"]}]
    assert {frozenset(_ports(rule)) for rule in cert_egress} <= {frozenset({443, 6443}), frozenset({443}),
                                                                 frozenset({80})}


def _opens_anywhere(rule: dict) -> bool:
    """Whether an egress rule reaches addresses outside the cluster's networks: no `to`, or 0.0.0.0/0."""
    return "to" not in rule or any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule["to"])


def test_platform_pods_reach_the_api_server_only_at_its_addresses(each_blueprint):
    """Review 1.6: the API-server rule allowed 0.0.0.0/0 on 443/6443 in every platform namespace, which made
    `https_out` meaningless. It now names the API server's networks per target: EKS, the VPC (the control
    plane's cross-account ENIs sit in the cluster's subnets; aws/aws-network-policy-agent issue #281, where the
    maintainers advise allowing the `kubernetes` Service's endpoint IPs or their subnet) and the `kubernetes`
    Service's ClusterIP, which the VPC CNI's agent sees before kube-proxy translates it (test_provider_contracts);
    GKE, the private cluster's control-plane /28 (master_ipv4_cidr_block); kind, the RFC 1918 ranges
    (apiServerCidrs' default)."""
    from shipway.render import common

    blueprint = each_blueprint.blueprint
    expected = {"kind": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], "eks": ["10.40.0.0/16", "172.20.0.1/32"],
                "gke": ["172.16.0.32/28"]}
    cidrs = common.api_server_cidrs(blueprint)
    assert cidrs == expected[blueprint.cluster.kind]
    assert "0.0.0.0/0" not in cidrs
    api_rules = [rule for policy in each_blueprint.kind("NetworkPolicy")
                 if policy["metadata"]["name"] == "allow-platform-egress"
                 for rule in policy["spec"]["egress"] if 6443 in _ports(rule)]
    assert api_rules, "no platform namespace reaches the API server"
    for rule in api_rules:
        assert rule == common.kube_api_egress(blueprint)
        assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == cidrs


def test_gpu_operator_on_kind_reaches_nothing_beyond_the_private_ranges(kind_dev):
    """Review 1.6's example: kind-dev's gpu-operator (no driver install) got 0.0.0.0/0:443 through the API rule."""
    import ipaddress

    from shipway.render import tenancy

    egress, _ = _platform_rules(kind_dev, "gpu-operator")
    private = [ipaddress.ip_network(cidr) for cidr in tenancy.PRIVATE_RANGES]
    for rule in egress:
        for peer in rule["to"]:
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            assert any(network.subnet_of(block) for block in private), peer


def test_only_the_listed_components_reach_the_internet_on_443(each_blueprint):
    """Every NetworkPolicy rule outside the team namespaces that reaches 0.0.0.0/0 (or anywhere) on 443 belongs
    to a namespace tenancy.INTERNET_HTTPS names with its reason; Argo Rollouts, Envoy Gateway, KServe, zot and
    the GPU stack without a driver install reach none of it."""
    from shipway.render import gitops, tenancy

    assert tenancy.INTERNET_HTTPS["argocd-repo-server"][0] == gitops.NAMESPACE
    blueprint = each_blueprint.blueprint
    team_namespaces = {ns for envs in blueprint.namespaces.values() for ns in envs.values()}
    reaching = set()
    for policy in each_blueprint.kind("NetworkPolicy"):
        ns = policy["metadata"]["namespace"]
        if ns in team_namespaces:
            continue
        for rule in policy["spec"].get("egress", []):
            if _opens_anywhere(rule) and (not rule.get("ports") or 443 in _ports(rule)):
                reaching.add(ns)
    assert reaching <= tenancy.INTERNET_NAMESPACES, reaching - tenancy.INTERNET_NAMESPACES
    assert not reaching & {"argo-rollouts", gateway.NAMESPACE, "kserve", "zot"}
    assert "gpu-operator" not in reaching or blueprint.gpu_stack.install_driver


def test_the_api_server_networks_are_the_blueprints_to_set(tmp_path):
    """kind/existing: cluster.apiServerCidrs narrows the rule further and never opens the internet; GKE: the
    control-plane /28 is one setting feeding both the cluster and the rule."""
    import pytest

    from shipway.render import common, tenancy
    from shipway.spec.blueprint import Blueprint

    base = {"metadata": {"name": "x"}, "gitops": {"enabled": False}, "teams": [{"name": "t"}]}
    kind = Blueprint.model_validate({**base, "cluster": {"kind": "kind", "apiServerCidrs": ["172.18.0.0/16"]}})
    assert common.kube_api_egress(kind)["to"] == [{"ipBlock": {"cidr": "172.18.0.0/16"}}]
    existing = {**base, "cluster": {"kind": "existing", "context": "c", "apiServerCidrs": ["0.0.0.0/0"]}}
    with pytest.raises(ValueError, match="whole internet"):
        Blueprint.model_validate(existing)
    gke = Blueprint.model_validate({**base, "cluster": {
        "kind": "gke", "project": "my-project", "region": "europe-west4", "zones": ["europe-west4-a"],
        "masterCidr": "172.16.8.0/28"}, "nodePools": [{"name": "system", "instanceType": "e2-standard-4"}]})
    rules = [rule for p in tenancy.platform_network_policies(gke) if p["metadata"]["name"] == "allow-platform-egress"
             for rule in p["spec"]["egress"] if 6443 in _ports(rule)]
    assert rules and all(rule["to"] == [{"ipBlock": {"cidr": "172.16.8.0/28"}}] for rule in rules)
    with pytest.raises(ValueError, match="private /28"):
        Blueprint.model_validate({**base, "cluster": {**gke.cluster.model_dump(by_alias=True), "masterCidr": "8.8.8.0/28"},
                                  "nodePools": [{"name": "system", "instanceType": "e2-standard-4"}]})


# Namespaces Shipway puts something into without default-deny, each with why. kube-system is the cluster's
# own (CoreDNS, the CNI, kube-proxy and the cloud's agents live there): Shipway neither creates it nor owns
# its traffic, and a default-deny there would cut every pod's DNS. Shipway's releases there (Karpenter or
# the Cluster Autoscaler, metrics-server) are the cluster's own plumbing.
DEFAULT_DENY_EXCEPTIONS = {"kube-system": "the cluster's own namespace: default-deny there cuts DNS"}


def _denies_all(policy: dict, direction: str) -> bool:
    """Whether a NetworkPolicy selects every pod of its namespace for `direction` and admits nothing by itself."""
    spec = policy["spec"]
    rules = spec.get(direction.lower(), [])
    return spec.get("podSelector") == {} and direction in spec.get("policyTypes", []) and rules == []


def test_every_namespace_shipway_renders_or_uses_is_default_deny_both_ways(each_blueprint):
    """Issue #16 finding 6: shipway-system had no NetworkPolicy. A namespace Shipway creates or puts a release
    or object into is default-deny for ingress and egress, unless DEFAULT_DENY_EXCEPTIONS says why not."""
    rendered = {n["metadata"]["name"] for n in each_blueprint.kind("Namespace")}
    used = ({release["namespace"] for release in each_blueprint.releases.values()}
            | {o["metadata"]["namespace"] for o in each_blueprint.objects if o["metadata"].get("namespace")})
    assert rendered
    policies = each_blueprint.kind("NetworkPolicy")
    missing = {}
    for ns in sorted((rendered | used) - set(DEFAULT_DENY_EXCEPTIONS)):
        own = [p for p in policies if p["metadata"]["namespace"] == ns]
        lacking = [d for d in ("Ingress", "Egress") if not any(_denies_all(p, d) for p in own)]
        if lacking:
            missing[ns] = lacking
    assert missing == {}, f"namespaces without default-deny: {missing}"
    # An exception is never one Shipway creates: those it owns it isolates.
    assert not set(DEFAULT_DENY_EXCEPTIONS) & rendered


def test_shipway_system_holds_no_pod_and_admits_no_flow(each_blueprint):
    """shipway-system holds only the node-pool inventory ConfigMap: its one policy denies both ways."""
    from shipway.platform.layers import SYSTEM_NAMESPACE

    kinds = sorted(o["kind"] for o in each_blueprint.objects if o["metadata"].get("namespace") == SYSTEM_NAMESPACE)
    if SYSTEM_NAMESPACE not in {n["metadata"]["name"] for n in each_blueprint.kind("Namespace")}:
        assert each_blueprint.blueprint.cluster.kind == "kind" and kinds == []  # kind keeps no inventory
        return
    assert kinds == ["ConfigMap", "NetworkPolicy"]
    assert _policies(each_blueprint, SYSTEM_NAMESPACE) == {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
