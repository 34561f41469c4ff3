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
