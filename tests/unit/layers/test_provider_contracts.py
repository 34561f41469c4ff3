"""Deploy-time constraints the cloud providers enforce and Pulumi's mock engine does not.

The mocks accept any input, so each rule the providers check at `pulumi up` is stated here against what the
example blueprints (and the Cluster Autoscaler variant of eks-prod) register. Each test's docstring names the
provider source that enforces it: pulumi/pulumi-eks (nodejs/eks/...), hashicorp/terraform-provider-aws (which
pulumi-aws wraps) and hashicorp/terraform-provider-google (which pulumi-gcp wraps).
"""

from __future__ import annotations

import ipaddress
import json
import re

import pytest
from layer_support import REPO, Synthesised

from shipway.platform.synth import UNKNOWN, Registered, run_program
from shipway.spec.blueprint import Blueprint

EKS_ADDON = "aws:eks/addon:Addon"


@pytest.fixture(scope="module")
def eks_cluster_autoscaler(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    text = (REPO / "blueprints" / "eks-prod.yaml").read_text().replace(
        "autoscaling: karpenter", "autoscaling: cluster-autoscaler").replace(
        "    capacityReservations: [cr-0123456789abcdef0]   # on-demand p5 capacity comes reserved\n", "")
    path = tmp_path_factory.mktemp("contracts") / "eks-ca.yaml"
    path.write_text(text)
    return Synthesised(run_program(path))


@pytest.fixture(scope="module", params=["karpenter", "cluster-autoscaler"])
def each_eks(request: pytest.FixtureRequest, eks_prod: Synthesised, eks_cluster_autoscaler: Synthesised
             ) -> Synthesised:
    return eks_prod if request.param == "karpenter" else eks_cluster_autoscaler


def _cluster(eks: Synthesised) -> Registered:
    [cluster] = eks.of_type("eks:index:Cluster")
    return cluster


# --- pulumi-eks ---------------------------------------------------------------------------------------


def test_pulumi_eks_api_mode_takes_no_aws_auth_mappings(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/authenticationMode.ts (validateAuthenticationMode): with authenticationMode
    API, non-empty instanceRoles, roleMappings or userMappings throw; accessEntries need API or API_AND_CONFIG_MAP."""
    inputs = _cluster(each_eks).inputs
    assert inputs["authenticationMode"] in ("API", "API_AND_CONFIG_MAP")
    if inputs["authenticationMode"] == "API":
        for prop in ("instanceRoles", "roleMappings", "userMappings"):
            assert not inputs.get(prop), f"{prop} is refused in API mode"


def test_pulumi_eks_node_access_entries_carry_no_groups_or_policies(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/cluster.ts (AccessEntry.type): EC2_LINUX and EC2_WINDOWS entries disallow
    kubernetesGroups and access policies; STANDARD entries map principals to groups or policies."""
    for key, entry in _cluster(each_eks).inputs.get("accessEntries", {}).items():
        assert entry["type"] in ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2"), key
        if entry["type"].startswith("EC2"):
            assert not entry.get("kubernetesGroups") and not entry.get("accessPolicies"), key
        else:
            assert entry.get("kubernetesGroups") or entry.get("accessPolicies"), f"{key} grants nothing"


def test_pulumi_eks_public_access_cidrs_need_the_public_endpoint(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/cluster.ts (createCore, vpcConfig): "`publicAccessCidrs` can only be set
    when `endpointPublicAccess` is true"; EKS also refuses an endpoint neither public nor private."""
    inputs = _cluster(each_eks).inputs
    if inputs.get("publicAccessCidrs"):
        assert inputs.get("endpointPublicAccess", True) is True
    assert inputs.get("endpointPublicAccess", True) or inputs.get("endpointPrivateAccess")


def test_blueprint_refuses_public_cidrs_on_a_private_endpoint() -> None:
    """The same pulumi-eks rule, caught when the blueprint loads rather than at `pulumi up`."""
    with pytest.raises(ValueError, match="publicAccessCidrs is set but publicEndpoint is false"):
        Blueprint.model_validate({
            "metadata": {"name": "p"}, "cluster": {"kind": "eks", "region": "eu-west-1", "network": {
                "publicEndpoint": False, "publicAccessCidrs": ["10.0.0.0/8"]}},
            "nodePools": [{"name": "sys", "role": "system", "instanceType": "m6i.xlarge", "maxSize": 1}],
            "gitops": {"enabled": False}})


def test_pulumi_eks_owns_vpc_cni_and_kube_proxy_and_leaves_coredns_to_us(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/cluster.ts: it creates the vpc-cni (VpcCniAddon) and kube-proxy add-ons
    unless told not to, and creates coredns only with a default node group or when explicitly enabled. EKS keeps
    one add-on per name, so Shipway creates coredns exactly once and never a second vpc-cni or kube-proxy."""
    inputs = _cluster(each_eks).inputs
    ours = [addon.inputs["addonName"] for addon in each_eks.of_type(EKS_ADDON)]
    assert len(ours) == len(set(ours))
    assert inputs.get("useDefaultVpcCni") is not True and "vpc-cni" not in ours
    assert inputs["kubeProxyAddonOptions"]["enabled"] is True and "kube-proxy" not in ours
    assert inputs["skipDefaultNodeGroup"] is True and inputs["corednsAddonOptions"]["enabled"] is False
    assert ours.count("coredns") == 1


def test_pulumi_eks_skips_its_security_groups_only_without_a_default_node_group(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/cluster.ts (createCore): the default node group needs the security groups
    that skipDefaultSecurityGroups leaves out ("clusterSecurityGroup is required when creating the default node
    group")."""
    inputs = _cluster(each_eks).inputs
    if inputs.get("skipDefaultSecurityGroups"):
        assert inputs["skipDefaultNodeGroup"] is True


# --- EKS: the VPC CNI's network policy agent ---------------------------------------------------------


def _kube_api_rules(synthesised: Synthesised) -> list[dict]:
    """Every NetworkPolicy egress rule that lets pods reach the Kubernetes API (port 443 towards an ipBlock)."""
    from shipway.render import common

    rule = common.kube_api_egress(synthesised.blueprint)
    rules = [egress for policy in synthesised.kind("NetworkPolicy") for egress in policy["spec"].get("egress", [])
             if egress == rule]
    assert rules, "no NetworkPolicy lets pods reach the Kubernetes API"
    return rules


def test_vpc_cni_agent_judges_the_cluster_ip_so_the_api_rule_names_it(each_eks: Synthesised) -> None:
    """aws/aws-network-policy-agent v1.4.1 pkg/ebpf/bpf_client.go:724-726 and 848: the egress program is attached
    with TCIngressAttach to the pod's host-side veth ("eni..."), so it runs on the packet as the pod sent it, before
    the host's netfilter where kube-proxy DNATs a ClusterIP; pkg/ebpf/c/tc.v4egress.bpf.c:398-411 looks the
    egress LPM map up by that packet's ip->daddr. aws/amazon-network-policy-controller-k8s v1.1.7
    pkg/resolvers/endpoints.go:219-225 copies an ipBlock peer into the PolicyEndpoint as it is, and adds ClusterIPs
    (:256-259, :451-455 "unable to see the pod IP after the DNAT happens for the clusterIPs") only for Services
    behind podSelector peers. So a pod's connection to the `kubernetes` Service (the in-cluster config's
    KUBERNETES_SERVICE_HOST) is judged against the ClusterIP, which the VPC CIDR never contains: the rule must
    name it. kubernetes/kubernetes pkg/controlplane/apiserver/options/options.go (ServiceIPRange): the
    ClusterIP is GetIndexedIP(&serviceClusterIPRange, 1), the range's first address; Shipway pins the range."""
    network = each_eks.blueprint.cluster.network
    service_range = ipaddress.ip_network(_cluster(each_eks).inputs["kubernetesServiceIpAddressRange"])
    assert str(service_range) == network.service_ipv4_cidr
    cluster_ip = ipaddress.ip_address(network.kubernetes_service_ip)
    assert cluster_ip == service_range.network_address + 1
    assert cluster_ip not in ipaddress.ip_network(network.vpc_cidr)
    for rule in _kube_api_rules(each_eks):
        blocks = [ipaddress.ip_network(peer["ipBlock"]["cidr"]) for peer in rule["to"]]
        # The ClusterIP alone, not the Service range: the pod may reach no other Service through this rule.
        assert ipaddress.ip_network(f"{cluster_ip}/32") in blocks
        assert not any(block.overlaps(service_range) and block.prefixlen < 32 for block in blocks)
        assert {"protocol": "TCP", "port": 443} in rule["ports"]  # the `kubernetes` Service's port


def test_pulumi_eks_sends_the_service_range_to_eks(each_eks: Synthesised) -> None:
    """pulumi-eks nodejs/eks/cluster/cluster.ts@7bf0c1b1:612-616: kubernetesServiceIpAddressRange becomes
    kubernetesNetworkConfig.serviceIpv4Cidr only when ipFamily is ipv4 (its default); :1872-1882: EKS picks
    10.100.0.0/16 or 172.20.0.0/16 when it is absent, and it is fixed when the cluster is created.
    awslabs/amazon-eks-ami files/bootstrap.sh (TEN_RANGE, DNS_CLUSTER_IP): EKS's pick is 172.20.0.0/16 for a VPC
    with a 10.x block, else 10.100.0.0/16. Shipway's default is that pick, so naming the range replaces no
    cluster EKS already made."""
    inputs = _cluster(each_eks).inputs
    assert inputs.get("ipFamily", "ipv4") == "ipv4"
    vpc = ipaddress.ip_network(each_eks.blueprint.cluster.network.vpc_cidr)
    expected = "172.20.0.0/16" if vpc.subnet_of(ipaddress.ip_network("10.0.0.0/8")) else "10.100.0.0/16"
    assert inputs["kubernetesServiceIpAddressRange"] == expected


@pytest.mark.parametrize(("vpc", "service", "fault"), [
    ("10.40.0.0/16", "10.32.0.0/12", "overlaps vpcCidr"),
    ("10.40.0.0/16", "8.8.0.0/16", "/12 to /24 inside 10.0.0.0/8"),
    ("10.40.0.0/16", "172.20.0.0/25", "/12 to /24 inside 10.0.0.0/8"),
    ("10.40.0.0/16", "172.0.0.0/11", "/12 to /24 inside 10.0.0.0/8"),
    ("10.40.0.0/16", "172.20.0.1/16", "not an IPv4 network"),
])
def test_blueprint_refuses_a_service_range_eks_refuses(tmp_path, vpc: str, service: str, fault: str) -> None:
    """terraform-provider-aws internal/service/eks/cluster.go (kubernetes_network_config.service_ipv4_cidr):
    validation.IsCIDRNetwork(12, 24) and "must be within 10.0.0.0/8, 172.16.0.0/12, or 192.168.0.0/16";
    pulumi-eks cluster.ts@7bf0c1b1:1879 (from the EKS API): it must not overlap the VPC's CIDR. Caught when the
    blueprint loads, at the serviceCidr line."""
    from shipway.errors import SpecError
    from shipway.spec.loader import load_spec

    text = (REPO / "blueprints" / "eks-prod.yaml").read_text()
    assert "    vpcCidr: 10.40.0.0/16\n" in text
    path = tmp_path / "eks.yaml"
    path.write_text(text.replace("    vpcCidr: 10.40.0.0/16\n",
                                 f"    vpcCidr: {vpc}\n    serviceCidr: {service}\n"))
    line = path.read_text().splitlines().index(f"    serviceCidr: {service}") + 1
    with pytest.raises(SpecError) as caught:
        load_spec(path, Blueprint, "blueprint")
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (line, "cluster.network.serviceCidr") and fault in problem.message


def test_a_chosen_service_range_feeds_the_cluster_and_the_rule() -> None:
    """serviceCidr (e.g. to keep clear of a peered network's 172.20.0.0/16) is one setting for both."""
    from shipway.render import common

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "p"}, "cluster": {"kind": "eks", "region": "eu-west-1", "network": {
            "vpcCidr": "10.40.0.0/16", "serviceCidr": "192.168.64.0/18"}},
        "nodePools": [{"name": "sys", "role": "system", "instanceType": "m6i.xlarge", "maxSize": 1}],
        "gitops": {"enabled": False}})
    assert blueprint.cluster.network.service_ipv4_cidr == "192.168.64.0/18"
    assert common.api_server_cidrs(blueprint) == ["10.40.0.0/16", "192.168.64.1/32"]


# --- pulumi-aws: EKS ---------------------------------------------------------------------------------


def test_addons_that_run_pods_wait_for_nodes(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/eks/addon.go (waitAddonCreated): creation waits with CREATING and
    DEGRADED pending and ACTIVE the only target, for 20 minutes. An add-on whose pods have no node stays DEGRADED
    and fails the create, so coredns and the EBS CSI driver must depend on a managed node group."""
    groups = {group.urn for group in each_eks.of_type("eks:index:ManagedNodeGroup")}
    addons = {addon.inputs["addonName"]: addon for addon in each_eks.of_type(EKS_ADDON)}
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert groups & set(addons[name].dependencies), f"{name} does not wait for a node group"


def test_pod_identity_needs_its_agent_and_a_trusting_role(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/eks/pod_identity_association.go and addon.go
    (pod_identity_association): EKS hands the role to pods only through the eks-pod-identity-agent add-on, and
    only a role whose trust policy lets pods.eks.amazonaws.com call sts:AssumeRole and sts:TagSession."""
    addons = {addon.inputs["addonName"]: addon for addon in each_eks.of_type(EKS_ADDON)}
    agent = addons["eks-pod-identity-agent"]
    roles = {role.urn: role for role in each_eks.of_type("aws:iam/role:Role")}
    users = [addon for addon in addons.values() if addon.inputs.get("podIdentityAssociations")]
    users += each_eks.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    # The EBS CSI driver, Karpenter or the Cluster Autoscaler, and cert-manager and external-dns (Route53).
    assert len(users) == 4
    for user in users:
        assert agent.urn in user.dependencies, user.name
        [role] = [roles[urn] for urn in user.dependencies if urn in roles]  # the role whose ARN it hands out
        [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}


def test_pod_identity_associations_name_a_cluster_namespace_and_service_account(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/eks/pod_identity_association.go (Schema): cluster_name, namespace,
    service_account and role_arn are required, and changing cluster_name, namespace or service_account replaces
    the association. So each association names this cluster and a namespace the platform installs a release
    into; no two claim the same service account; its role is one of the stack's roles (role.go)."""
    cluster = _cluster(each_eks)
    roles = {role.urn for role in each_eks.of_type("aws:iam/role:Role")}
    namespaces = {release["namespace"] for release in each_eks.releases.values()} | {"kube-system"}
    pairs = []
    for association in each_eks.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        inputs = association.inputs
        assert inputs["clusterName"] == cluster.inputs["name"]
        assert inputs["namespace"] in namespaces and inputs["serviceAccount"]
        assert roles & set(association.dependencies), association.name
        pairs.append((inputs["namespace"], inputs["serviceAccount"]))
    assert len(pairs) == len(set(pairs))
    assert {("cert-manager", "cert-manager"), ("external-dns", "external-dns")} <= set(pairs)


def test_managed_node_group_roles_get_no_access_entry_of_ours(each_eks: Synthesised) -> None:
    """EKS creates the EC2_LINUX access entry of a managed node group's role itself (access-entries.html in the
    EKS user guide); a second entry for that principal fails with ResourceInUseException
    (terraform-provider-aws internal/service/eks/access_entry.go surfaces it). Only Karpenter's own node role,
    which no node group uses, gets an entry from Shipway."""
    entries = _cluster(each_eks).inputs.get("accessEntries", {})
    node_entries = [key for key, entry in entries.items() if entry["type"] == "EC2_LINUX"]
    assert node_entries == (["karpenter-nodes"] if each_eks.blueprint.uses_karpenter else [])
    # Karpenter's nodes run as a role of their own, so its entry never names a node group's role.
    names = {role.inputs.get("name") for role in each_eks.of_type("aws:iam/role:Role")}
    assert ("shipway-prod-karpenter-node" in names) == each_eks.blueprint.uses_karpenter


def test_managed_node_group_sizes(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/eks/node_group.go (scaling_config): max_size at least 1,
    min_size and desired_size at least 0; EKS also wants min <= desired <= max."""
    for group in each_eks.of_type("eks:index:ManagedNodeGroup"):
        scaling = group.inputs["scalingConfig"]
        assert scaling["maxSize"] >= 1 and 0 <= scaling["minSize"] <= scaling["desiredSize"] <= scaling["maxSize"]


def test_blueprint_refuses_a_node_group_that_cannot_have_a_node() -> None:
    """node_group.go's max_size >= 1, caught when the blueprint loads."""
    with pytest.raises(ValueError, match="maxSize must be at least 1"):
        Blueprint.model_validate({
            "metadata": {"name": "p"}, "cluster": {"kind": "eks", "region": "eu-west-1",
                                                   "autoscaling": "cluster-autoscaler"},
            "nodePools": [{"name": "sys", "role": "system", "instanceType": "m6i.xlarge", "maxSize": 0}],
            "gitops": {"enabled": False}})


def test_access_policy_scopes(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/eks/access_policy_association.go (access_scope): type is cluster
    or namespace, and namespaces are given only with type namespace."""
    for key, entry in _cluster(each_eks).inputs.get("accessEntries", {}).items():
        for association in entry.get("accessPolicies", {}).values():
            scope = association["accessScope"]
            assert scope["type"] in ("cluster", "namespace"), key
            assert bool(scope.get("namespaces")) == (scope["type"] == "namespace"), key
            assert association["policyArn"].startswith("arn:aws:eks::aws:cluster-access-policy/")


# --- pulumi-aws: IAM ---------------------------------------------------------------------------------


def test_iam_role_names_fit(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/iam/role.go: roleNameMaxLen = 64."""
    for role in each_eks.of_type("aws:iam/role:Role"):
        name = role.inputs.get("name")
        assert name is None or (len(name) <= 64 and re.fullmatch(r"[\w+=,.@-]+", name)), name


def test_blueprint_refuses_an_eks_name_too_long_for_its_roles() -> None:
    """role.go's 64 characters, caught when the blueprint loads: Karpenter's node role is <name>-karpenter-node."""
    with pytest.raises(ValueError, match="IAM role names, which stop at 64"):
        Blueprint.model_validate({
            "metadata": {"name": "p" * 50}, "cluster": {"kind": "eks", "region": "eu-west-1"},
            "nodePools": [{"name": "sys", "role": "system", "instanceType": "m6i.xlarge", "maxSize": 1}],
            "gitops": {"enabled": False}})


def test_iam_policies_are_valid_documents(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/iam/role_policy.go (policy: verify.ValidIAMPolicyJSON): a JSON
    object with Version and Statement, each statement with Effect and Action, and Resource or Principal."""
    for policy in each_eks.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.inputs["policy"] == UNKNOWN:
            continue
        document = json.loads(policy.inputs["policy"])
        assert document["Version"] == "2012-10-17"
        for statement in document["Statement"]:
            assert statement["Effect"] in ("Allow", "Deny") and statement["Action"] and "Resource" in statement


# --- pulumi-aws: EC2 ---------------------------------------------------------------------------------


def test_subnets_are_disjoint_networks_inside_the_vpc(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/ec2/vpc_subnet.go (cidr_block: verify.ValidIPv4CIDRNetworkAddress);
    EC2 also refuses a subnet outside its VPC's block, overlapping another, or smaller than /28."""
    [vpc] = each_eks.of_type("aws:ec2/vpc:Vpc")
    block = ipaddress.ip_network(vpc.inputs["cidrBlock"])
    subnets = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in each_eks.of_type("aws:ec2/subnet:Subnet")]
    for index, subnet in enumerate(subnets):
        assert subnet.subnet_of(block) and subnet.prefixlen <= 28
        assert not any(subnet.overlaps(other) for other in subnets[index + 1:])


def test_nat_gateway_sits_in_a_public_subnet_and_private_routes_use_it(each_eks: Synthesised) -> None:
    """terraform-provider-aws internal/service/ec2/vpc_nat_gateway.go: a public NAT gateway needs an Elastic IP
    allocation (allocation_id) and a subnet routed to an internet gateway."""
    [nat] = each_eks.of_type("aws:ec2/natGateway:NatGateway")
    assert nat.inputs.get("allocationId") and nat.inputs.get("connectivityType", "public") == "public"
    [public] = [t for t in each_eks.of_type("aws:ec2/routeTable:RouteTable") if t.name.endswith("-public")]
    assert any("gatewayId" in route for route in public.inputs["routes"])


def test_interruption_events_may_reach_the_queue(eks_prod: Synthesised) -> None:
    """terraform-provider-aws internal/service/sqs/queue_policy.go and EventBridge's SQS target: EventBridge
    delivers to a queue only if the queue policy lets events.amazonaws.com call sqs:SendMessage."""
    [queue_policy] = eks_prod.of_type("aws:sqs/queuePolicy:QueuePolicy")
    if queue_policy.inputs["policy"] == UNKNOWN:
        from shipway.render.eks import interruption_queue_policy

        document = interruption_queue_policy("arn:aws:sqs:eu-west-1:123456789012:q")
    else:
        document = json.loads(queue_policy.inputs["policy"])
    [allow] = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    assert "events.amazonaws.com" in allow["Principal"]["Service"] and allow["Action"] == "sqs:SendMessage"
    assert len(eks_prod.of_type("aws:cloudwatch/eventTarget:EventTarget")) == 4


# --- pulumi-gcp: compute -----------------------------------------------------------------------------


def test_cloud_nat(gke_prod: Synthesised) -> None:
    """terraform-provider-google google/services/compute/resource_compute_router_nat.go: name an RFC 1035 label
    of 2 to 63 characters; router required; nat_ip_allocate_option AUTO_ONLY or MANUAL_ONLY (MANUAL_ONLY needs
    nat_ips); source_subnetwork_ip_ranges_to_nat one of the three ranges settings, and with ALL_SUBNETWORKS_*
    no other NAT may cover the network in that region."""
    [router] = gke_prod.of_type("gcp:compute/router:Router")
    [nat] = gke_prod.of_type("gcp:compute/routerNat:RouterNat")
    for name in (router.inputs["name"], nat.inputs["name"]):
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name) and len(name) >= 2
    assert nat.inputs["router"] == router.inputs["name"] and nat.inputs["region"] == router.inputs["region"]
    assert nat.inputs["natIpAllocateOption"] in ("AUTO_ONLY", "MANUAL_ONLY")
    if nat.inputs["natIpAllocateOption"] == "MANUAL_ONLY":
        assert nat.inputs.get("natIps")
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] in (
        "ALL_SUBNETWORKS_ALL_IP_RANGES", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES", "LIST_OF_SUBNETWORKS")


def test_blueprint_refuses_a_gke_name_too_long_for_its_nat() -> None:
    """resource_compute_router_nat.go's 63 characters, caught when the blueprint loads."""
    with pytest.raises(ValueError, match="Cloud NAT"):
        Blueprint.model_validate({
            "metadata": {"name": "g" * 62}, "cluster": {"kind": "gke", "project": "acme-ml-prod",
                                                       "region": "europe-west4", "zones": ["europe-west4-a"]},
            "nodePools": [{"name": "sys", "role": "system", "instanceType": "e2-standard-4", "maxSize": 1}],
            "gitops": {"enabled": False}})


# --- pulumi-gcp: container ---------------------------------------------------------------------------


def test_gke_cluster(gke_prod: Synthesised) -> None:
    """terraform-provider-google google/services/container/resource_container_cluster.go: the
    authenticator_groups_config security group must be gke-security-groups@<domain>; the private cluster's
    master_ipv4_cidr_block is a /28; with remove_default_node_pool the default pool still needs
    initial_node_count >= 1 to be created and then removed."""
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    inputs = cluster.inputs
    assert re.fullmatch(r"gke-security-groups@[a-z0-9.-]+", inputs["authenticatorGroupsConfig"]["securityGroup"])
    assert ipaddress.ip_network(inputs["privateClusterConfig"]["masterIpv4CidrBlock"]).prefixlen == 28
    assert inputs["removeDefaultNodePool"] is True and inputs["initialNodeCount"] >= 1


def test_gke_node_pools(gke_prod: Synthesised) -> None:
    """terraform-provider-google google/services/container/resource_container_node_pool.go (autoscaling):
    per-zone min/max_node_count "cannot be used with total limits"; location_policy BALANCED or ANY; totals
    >= 0 with min <= max. version and auto_upgrade "will fight each other", and a release-channel cluster
    upgrades its pools itself, so pools set no version and keep auto_upgrade on."""
    for pool in gke_prod.of_type("gcp:container/nodePool:NodePool"):
        autoscaling = pool.inputs["autoscaling"]
        totals = {"totalMinNodeCount", "totalMaxNodeCount"} & set(autoscaling)
        assert not (totals and {"minNodeCount", "maxNodeCount"} & set(autoscaling)), pool.name
        assert autoscaling["locationPolicy"] in ("BALANCED", "ANY")
        assert 0 <= autoscaling["totalMinNodeCount"] <= autoscaling["totalMaxNodeCount"]
        assert "version" not in pool.inputs and pool.inputs["management"]["autoUpgrade"] is True


def test_gke_dataplane_v2_enforces_network_policy_itself(gke_prod: Synthesised) -> None:
    """terraform-provider-google google/services/container/resource_container_cluster.go (datapath_provider,
    network_policy): with ADVANCED_DATAPATH the Calico network_policy add-on must stay disabled; Dataplane V2
    enforces NetworkPolicies itself."""
    inputs = gke_prod.of_type("gcp:container/cluster:Cluster")[0].inputs
    assert inputs["datapathProvider"] == "ADVANCED_DATAPATH" and inputs["networkPolicy"]["enabled"] is False


def test_gke_dataplane_v2_judges_the_api_server_after_service_translation(gke_prod: Synthesised) -> None:
    """Why the GKE rule names the control-plane /28 and not the `kubernetes` ClusterIP. cilium/cilium
    bpf/bpf_lxc.c@00025c98 (handle_ipv4_from_lxc / handle_ipv6_from_lxc): egress from a pod is handled "after
    service translation has been done either at the socket level or by the caller", and the policy identity is
    looked up for the translated destination; Documentation/security/policy/language.rst@30a4939a: "Layer 4
    policies apply to ports after service port mapping has been applied", and CIDR rules apply to "a network
    endpoint outside the cluster", needing policy-cidr-match-mode=nodes only where the apiserver runs on the
    cluster's own nodes, which GKE's control plane does not; cilium/cilium#25241 made ToCIDR rules match
    kube-apiserver IPs external to the cluster reliably despite their kube-apiserver identity.
    terraform-provider-google google/services/container/resource_container_cluster.go (master_ipv4_cidr_block):
    the /28 "will be used for assigning private IP addresses to the cluster master(s)", so a pod's API traffic,
    translated to the private endpoint, falls in it; the ClusterIP itself is never judged and is left out."""
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    master = cluster.inputs["privateClusterConfig"]["masterIpv4CidrBlock"]
    for rule in _kube_api_rules(gke_prod):
        assert rule["to"] == [{"ipBlock": {"cidr": master}}]
        assert {"protocol": "TCP", "port": 443} in rule["ports"]
