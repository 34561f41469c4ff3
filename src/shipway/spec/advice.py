"""Warnings on blueprints that are legal but likely wrong; `shipway validate` prints them and still passes."""

from __future__ import annotations

import ipaddress

from shipway.spec.base import Located
from shipway.spec.blueprint import Blueprint, EksCluster
from shipway.spec.gpus import RESERVED_EC2_FAMILIES, ec2_family, gpu_of_instance


def warnings(blueprint: Blueprint) -> list[Located]:
    """Every warning for a blueprint that has already passed validation."""
    return [*_endpoint(blueprint), *_capacity(blueprint), *_gpu_models(blueprint), *_autoscaling(blueprint),
            *_team_access(blueprint), *_gpu_stack(blueprint), *_retraining(blueprint)]


def _retraining(blueprint: Blueprint) -> list[Located]:
    """The trigger refuses every repository no team lists, so retraining on with empty lists starts nothing."""
    retraining = blueprint.observability.retraining
    if retraining is None or not retraining.enabled:
        return []
    if any(team.retrain_repositories.github or team.retrain_repositories.gitlab for team in blueprint.teams):
        return []
    return [Located(("observability", "retraining"),
                    "retraining is on but no team lists a repository, so the trigger refuses every model's retrain:",
                    "list each team's model repositories under teams[].retrainRepositories (github: [owner/name "
                    "or owner/*], gitlab: [group/project or group/*])")]


def _endpoint(blueprint: Blueprint) -> list[Located]:
    cluster = blueprint.cluster
    if not isinstance(cluster, EksCluster):
        return []
    network = cluster.network
    if network.public_endpoint:
        return _open_endpoint(network.public_access_cidrs)
    if network.private_access:
        return []
    return [Located(
        ("cluster", "network", "publicEndpoint"),
        "the Kubernetes API is private-only, so `pulumi up` can create the cluster but cannot install anything "
        "on it unless it runs inside the VPC or is connected to it",
        "set publicEndpoint: true (with publicAccessCidrs), or say how `pulumi up` reaches the VPC in "
        "cluster.network.privateAccess")]


def _open_endpoint(cidrs: list[str] | None) -> list[Located]:
    """A public EKS endpoint that any address may reach: IAM still authenticates, but every API server bug,
    leaked credential and brute-force attempt is then one hop from the internet."""
    hint = ("set cluster.network.publicAccessCidrs to where `pulumi up`, CI and admins connect from "
            "(e.g. [203.0.113.0/24]), or publicEndpoint: false with privateAccess")
    if cidrs is None:
        return [Located(("cluster", "network", "publicEndpoint"),
                        "the Kubernetes API endpoint is public and publicAccessCidrs is unset, so EKS lets any "
                        "address on the internet reach it", hint)]
    return [Located(("cluster", "network", "publicAccessCidrs", index),
                    f"{cidr} lets any address on the internet reach the public Kubernetes API endpoint", hint)
            for index, cidr in enumerate(cidrs) if ipaddress.ip_network(cidr, strict=False).prefixlen == 0]


def _capacity(blueprint: Blueprint) -> list[Located]:
    if not isinstance(blueprint.cluster, EksCluster):
        return []
    found = []
    for index, pool in enumerate(blueprint.node_pools):
        family = ec2_family(pool.instance_type or "")
        if family in RESERVED_EC2_FAMILIES and not pool.spot and not pool.capacity_reservations:
            found.append(Located(
                ("nodePools", index, "capacityReservations"),
                f'pool "{pool.name}" asks for on-demand {pool.instance_type} without a capacity reservation; '
                f"{family} capacity is rarely there on demand, so its pods may pend for hours",
                "add capacityReservations (an EC2 capacity reservation or Capacity Block id), or spot: true"))
    return found


def _gpu_models(blueprint: Blueprint) -> list[Located]:
    if not blueprint.is_cloud:
        return []
    found = []
    for index, pool in enumerate(blueprint.node_pools):
        if pool.gpu is None or not pool.instance_type:
            continue
        carried = gpu_of_instance(blueprint.cluster.kind, pool.instance_type)
        if carried is None or carried.name != pool.gpu.model:
            what = f"carries {carried.name}" if carried else "is not one Shipway knows to carry a GPU"
            found.append(Located(
                ("nodePools", index, "gpu", "model"),
                f'pool "{pool.name}" claims {pool.gpu.model} GPUs, but {pool.instance_type} {what}; quotas, MIG '
                "profiles and dashboards would count the wrong GPU",
                f"set gpu.model to what {pool.instance_type} carries, or pick an instance type with "
                f"{pool.gpu.model} GPUs"))
    return found


def _autoscaling(blueprint: Blueprint) -> list[Located]:
    found = []
    for pool in blueprint.karpenter_pools():
        index = blueprint.node_pools.index(pool)
        if pool.min_size or pool.desired_size:
            found.append(Located(
                ("nodePools", index, "minSize"),
                f'Karpenter provisions pool "{pool.name}" for pending pods only; minSize and desiredSize do not '
                "keep nodes running", "drop minSize/desiredSize, or use autoscaling: cluster-autoscaler"))
    return found


def _team_access(blueprint: Blueprint) -> list[Located]:
    cluster = blueprint.cluster
    if not isinstance(cluster, EksCluster):
        return []
    return [Located(("teams", index, "groups"),
                    f'team "{team.name}" binds groups, but no IAM principal is mapped to them, so nobody gets the '
                    "team's role", f"list the team's IAM roles under cluster.access.teams.{team.name}")
            for index, team in enumerate(blueprint.teams) if team.groups and not cluster.access.teams.get(team.name)]


def _gpu_stack(blueprint: Blueprint) -> list[Located]:
    stack = blueprint.gpu_stack
    if blueprint.cluster.kind != "eks" or stack.mode != "operator" or not blueprint.gpu_pools:
        return []
    found = []
    if stack.install_toolkit:
        found.append(Located(("gpuStack", "installToolkit"),
                             "EKS's AL2023 NVIDIA AMIs ship the NVIDIA container toolkit; a second one from the "
                             "operator rewrites containerd's config under it", "remove installToolkit"))
    if stack.install_driver:
        found.append(Located(("gpuStack", "installDriver"),
                             "EKS's AL2023 NVIDIA AMIs ship the NVIDIA driver; the operator's driver container "
                             "fails to load a second one", "remove installDriver"))
    return found
