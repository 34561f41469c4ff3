"""Cloud clusters under mocks: EKS with OIDC and NVIDIA node groups, GKE with workload identity and accelerators."""

from __future__ import annotations

from shipway.render.cluster import GKE_NO_DEFAULT_DEVICE_PLUGIN


def test_eks_network_and_cluster(eks_prod):
    [vpc] = eks_prod.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert len(eks_prod.of_type("aws:ec2/subnet:Subnet")) == 6
    [cluster] = eks_prod.of_type("eks:index:Cluster")
    assert eks_prod.parent_type(cluster) == "shipway:cluster:Cluster"
    assert cluster.inputs["createOidcProvider"] is True and cluster.inputs["version"] == "1.31"
    assert cluster.inputs["endpointPublicAccess"] is False and cluster.inputs["skipDefaultNodeGroup"] is True


def test_eks_node_groups(eks_prod):
    groups = {g.inputs["nodeGroupName"]: g.inputs for g in eks_prod.of_type("eks:index:ManagedNodeGroup")}
    assert groups["shipway-prod-h100"]["amiType"] == "AL2023_x86_64_NVIDIA"
    assert groups["shipway-prod-system"]["amiType"] == "AL2023_x86_64_STANDARD"
    assert groups["shipway-prod-a10g"]["capacityType"] == "SPOT"
    assert groups["shipway-prod-h100"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present",
                                                      "effect": "NO_SCHEDULE"}]
    assert groups["shipway-prod-h100"]["labels"]["nvidia.com/mig.config"] == "all-1g.10gb"
    assert groups["shipway-prod-a10g"]["scalingConfig"] == {"minSize": 0, "maxSize": 10, "desiredSize": 2}


def test_gke_cluster_and_pools(gke_prod):
    [cluster] = gke_prod.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": "acme-ml-prod.svc.id.goog"}
    assert cluster.inputs["releaseChannel"] == {"channel": "REGULAR"}
    pools = {p.inputs["name"]: p.inputs for p in gke_prod.of_type("gcp:container/nodePool:NodePool")}
    l4 = pools["l4"]["nodeConfig"]
    [accelerator] = l4["guestAccelerators"]
    assert accelerator["type"] == "nvidia-l4" and accelerator["count"] == 1
    # The device plugin chart brings the driver-independent plugin; GKE installs the driver, not its plugin.
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "DEFAULT"}
    assert l4["labels"][GKE_NO_DEFAULT_DEVICE_PLUGIN] == "true"
    assert "gpuSharingConfig" not in accelerator
    assert pools["a100"]["nodeConfig"]["spot"] is True
    assert pools["l4"]["autoscaling"] == {"minNodeCount": 1, "maxNodeCount": 8}
    assert GKE_NO_DEFAULT_DEVICE_PLUGIN not in pools["system"]["nodeConfig"]["labels"]
