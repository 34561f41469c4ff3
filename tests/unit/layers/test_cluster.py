"""Cloud clusters under mocks: EKS access entries, add-ons and node groups; GKE NAT, Google Groups, accelerators."""

from __future__ import annotations

import json

from layer_support import REPO, synthesised

from shipway import catalog
from shipway.render.cluster import GKE_NO_DEFAULT_DEVICE_PLUGIN
from shipway.render.tenancy import TEAM_ROLE


def test_eks_network_and_cluster(eks_prod):
    [vpc] = eks_prod.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert len(eks_prod.of_type("aws:ec2/subnet:Subnet")) == 6
    [cluster] = eks_prod.of_type("eks:index:Cluster")
    assert eks_prod.parent_type(cluster) == "shipway:cluster:Cluster"
    assert cluster.inputs["createOidcProvider"] is True and cluster.inputs["version"] == catalog.KUBERNETES_VERSION
    assert cluster.inputs["skipDefaultNodeGroup"] is True


def test_eks_node_groups(eks_prod):
    # With Karpenter only the system pool is a managed node group; the GPU pools are NodePools.
    groups = {g.inputs["nodeGroupName"]: g.inputs for g in eks_prod.of_type("eks:index:ManagedNodeGroup")}
    assert set(groups) == {"shipway-prod-system"}
    assert groups["shipway-prod-system"]["amiType"] == "AL2023_x86_64_STANDARD"
    assert groups["shipway-prod-system"]["scalingConfig"] == {"minSize": 3, "maxSize": 6, "desiredSize": 3}


def test_eks_node_groups_under_the_cluster_autoscaler():
    from shipway.render.cluster import eks_node_group

    blueprint = synthesised("eks-prod").blueprint
    blueprint = blueprint.model_copy(update={"cluster": blueprint.cluster.model_copy(
        update={"autoscaling": "cluster-autoscaler"})})
    groups = {pool.name: eks_node_group(blueprint, pool) for pool in blueprint.node_group_pools()}
    assert set(groups) == {"system", "a10g", "h100"}
    assert groups["h100"]["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert groups["a10g"]["capacity_type"] == "SPOT"
    assert groups["h100"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert groups["h100"]["labels"]["nvidia.com/mig.config"] == "all-1g.10gb"
    # Finding 3: an idle GPU pool starts at minSize (0), not one p5.48xlarge running for good.
    assert groups["h100"]["scaling_config"] == {"min_size": 0, "max_size": 2, "desired_size": 0}


def test_gke_cluster_and_pools(gke_prod):
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": "acme-ml-prod.svc.id.goog"}
    assert cluster.inputs["releaseChannel"] == {"channel": "REGULAR"}
    pools = {p.inputs["name"]: p.inputs for p in gke_prod.of_type("gcp:container/nodePool:NodePool")}
    l4 = pools["l4"]["nodeConfig"]
    [accelerator] = l4["guestAccelerators"]
    assert accelerator["type"] == "nvidia-l4" and accelerator["count"] == 1
    # Without the operator GKE installs the driver and runs its own plugin, which does the time-sharing.
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "DEFAULT"}
    assert GKE_NO_DEFAULT_DEVICE_PLUGIN not in l4["labels"]
    assert accelerator["gpuSharingConfig"] == {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 4}
    assert pools["a100"]["nodeConfig"]["spot"] is True
    # Sizes are totals across the pool's zones; GKE's own min/max would be per zone.
    assert pools["l4"]["autoscaling"] == {"totalMinNodeCount": 1, "totalMaxNodeCount": 8, "locationPolicy": "BALANCED"}
    assert pools["l4"]["nodeLocations"] == ["europe-west4-a", "europe-west4-b", "europe-west4-c"]
    assert pools["a100"]["nodeLocations"] == ["europe-west4-a", "europe-west4-b"]
    assert pools["a100"]["autoscaling"]["locationPolicy"] == "ANY"  # spot capacity goes wherever it is
    assert pools["system"]["initialNodeCount"] == 1  # desired 2 over 3 zones: one each
    assert cluster.inputs["nodeLocations"] == ["europe-west4-a", "europe-west4-b", "europe-west4-c"]
    assert GKE_NO_DEFAULT_DEVICE_PLUGIN not in pools["system"]["nodeConfig"]["labels"]


def test_gke_with_the_operator_switches_gke_plugin_off() -> None:
    from shipway.render.cluster import gke_node_pool
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "gke-op"}, "cluster": {"kind": "gke", "project": "acme-ml-prod", "region": "europe-west4",
                    "zones": ["europe-west4-a"]},
        "nodePools": [{"name": "sys", "role": "system", "instanceType": "e2-standard-8"},
                      {"name": "a100", "instanceType": "a2-highgpu-1g", "gpu": {"model": "a100-40gb"}}],
        "gpuStack": {"mode": "operator", "sharing": {"strategy": "time-slicing", "replicas": 2}},
        "gitops": {"enabled": False},
    })
    settings = gke_node_pool(blueprint, blueprint.node_pools[1])
    assert settings["node_config"]["labels"][GKE_NO_DEFAULT_DEVICE_PLUGIN] == "true"
    [accelerator] = settings["node_config"]["guest_accelerators"]
    assert "gpu_sharing_config" not in accelerator  # the operator's plugin time-slices instead


def test_eks_subnets_take_zones_from_aws_not_from_letters(eks_prod):
    # Zones come from aws.get_availability_zones; synth marks the cloud's answer as unknown.
    subnets = eks_prod.of_type("aws:ec2/subnet:Subnet")
    zones = [subnet.inputs["availabilityZone"] for subnet in subnets]
    assert all(zone.startswith("<unknown: computed at deploy>") for zone in zones)
    assert len(set(zones)) == 3  # three zones, each with a public and a private subnet


def test_eks_refuses_a_stack_region_other_than_the_blueprints(monkeypatch):
    import pytest

    import shipway.platform.synth as synth_module

    real = synth_module._placeholder_config

    def other_region(path, blueprint):
        return {**real(path, blueprint), "aws:region": "us-east-1"}

    monkeypatch.setattr(synth_module, "_placeholder_config", other_region)
    from layer_support import REPO

    with pytest.raises(synth_module.SynthError, match="run `pulumi config set aws:region eu-west-1`"):
        synth_module.run_program(REPO / "blueprints" / "eks-prod.yaml")


def test_eks_authenticates_by_access_entries_only(eks_prod):
    [cluster] = eks_prod.of_type("eks:index:Cluster")
    inputs = cluster.inputs
    assert inputs["authenticationMode"] == "API"
    # pulumi-eks refuses instanceRoles, roleMappings and userMappings in API mode (authenticationMode.ts).
    assert not inputs.get("instanceRoles") and not inputs.get("roleMappings") and not inputs.get("userMappings")
    entries = inputs["accessEntries"]
    assert entries["admin-0"]["accessPolicies"]["cluster-admin"] == {
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        "accessScope": {"type": "cluster"}}
    # Team principals land in the groups the team's RoleBindings bind (finding 10).
    bindings = {b["metadata"]["namespace"]: b for b in eks_prod.kind("RoleBinding")
                if b["roleRef"]["name"] == TEAM_ROLE}
    assert entries["team-fraud-0"]["kubernetesGroups"] == ["fraud-ml-engineers"]
    assert {s["name"] for s in bindings["fraud-prod"]["subjects"]} == {"fraud-ml-engineers"}
    assert entries["karpenter-nodes"]["type"] == "EC2_LINUX"


def test_eks_managed_add_ons(eks_prod):
    [cluster] = eks_prod.of_type("eks:index:Cluster")
    # pulumi-eks makes vpc-cni and kube-proxy managed add-ons; the CNI's agent enforces NetworkPolicies.
    assert cluster.inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
    assert cluster.inputs["kubeProxyAddonOptions"]["enabled"] is True
    addons = {a.inputs["addonName"]: a for a in eks_prod.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver"}
    [association] = addons["aws-ebs-csi-driver"].inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    [role] = [r for r in eks_prod.of_type("aws:iam/role:Role") if r.name == "shipway-prod-cluster-ebs-csi"]
    [attachment] = [a for a in eks_prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                    if a.name == "shipway-prod-cluster-ebs-csi"]
    assert attachment.inputs["policyArn"].endswith("service-role/AmazonEBSCSIDriverPolicy")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "pods.eks.amazonaws.com"}
    [system] = eks_prod.of_type("eks:index:ManagedNodeGroup")
    assert system.urn in addons["coredns"].dependencies and system.urn in addons["aws-ebs-csi-driver"].dependencies
    assert addons["eks-pod-identity-agent"].urn in addons["aws-ebs-csi-driver"].dependencies


def test_eks_endpoint_is_reachable_by_default(eks_prod):
    from shipway.spec.blueprint import EksNetwork

    # `pulumi up` installs the platform through this endpoint right after creating the cluster.
    assert EksNetwork().public_endpoint is True
    [cluster] = eks_prod.of_type("eks:index:Cluster")
    assert cluster.inputs["endpointPublicAccess"] is True and cluster.inputs["endpointPrivateAccess"] is True
    assert cluster.inputs["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_gke_private_nodes_reach_out_through_cloud_nat(gke_prod):
    [router] = gke_prod.of_type("gcp:compute/router:Router")
    [nat] = gke_prod.of_type("gcp:compute/routerNat:RouterNat")
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert router.inputs["network"] == cluster.inputs["network"] == "default"
    assert router.inputs["region"] == nat.inputs["region"] == "europe-west4"
    assert nat.inputs["router"] == router.inputs["name"]
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat.urn in cluster.dependencies  # nodes pull images as soon as they boot


def test_gke_maps_google_groups_to_rbac(gke_prod):
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["authenticatorGroupsConfig"] == {"securityGroup": "gke-security-groups@acme.com"}
    [admins] = [b for b in gke_prod.kind("ClusterRoleBinding") if b["metadata"]["name"] == "shipway-cluster-admins"]
    assert admins["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                   "name": "ml-platform-admins@acme.com"}]


def test_one_kubernetes_version_feeds_every_target(eks_prod, gke_prod):
    import kubernetes_validate

    from shipway.render.cluster import kind_config
    from shipway.spec import load_blueprint

    minor = catalog.KUBERNETES_VERSION
    assert tuple(int(part) for part in minor.split(".")) >= (1, 33)
    [eks] = eks_prod.of_type("eks:index:Cluster")
    [gke] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert eks.inputs["version"] == gke.inputs["minMasterVersion"] == minor
    config = kind_config(load_blueprint(REPO / "blueprints" / "kind-dev.yaml"))
    images = {node["image"] for node in config["nodes"]}
    assert images == {catalog.KIND_NODE_IMAGE}
    assert catalog.KIND_NODE_IMAGE.startswith(f"kindest/node:v{minor}.") and "@sha256:" in catalog.KIND_NODE_IMAGE
    # Validation runs against that version, so kubernetes-validate must know it.
    assert f"{minor}.0" in kubernetes_validate.utils.all_versions()
