"""The cluster layer: a Kubernetes provider for kind or an existing cluster, or an EKS or GKE cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from shipway.render import cluster as render_cluster
from shipway.spec.blueprint import Blueprint, EksCluster, GkeCluster


@dataclass(frozen=True)
class ClusterArgs:
    """What the cluster layer needs: the blueprint and, for kind or existing clusters, a kubeconfig."""

    blueprint: Blueprint
    kubeconfig: pulumi.Input[str] | None = None


class Cluster(pulumi.ComponentResource):
    """The cluster the platform runs on, and the Kubernetes provider every other layer uses."""

    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shipway:cluster:Cluster", name, None, opts)
        blueprint = args.blueprint
        child = pulumi.ResourceOptions(parent=self)
        spec = blueprint.cluster
        if isinstance(spec, EksCluster):
            from shipway.platform.cloud_aws import eks_cluster

            kubeconfig, cluster_name = eks_cluster(name, blueprint, self)
        elif isinstance(spec, GkeCluster):
            from shipway.platform.cloud_gcp import gke_cluster

            kubeconfig, cluster_name = gke_cluster(name, blueprint, self)
        else:
            kubeconfig = pulumi.Output.secret(args.kubeconfig) if args.kubeconfig is not None else None
            cluster_name = pulumi.Output.from_input(render_cluster.kind_cluster_name(blueprint))
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=kubeconfig,
            context=render_cluster.kube_context(blueprint),
            enable_server_side_apply=True,
            opts=child,
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig) if kubeconfig is not None else pulumi.Output.secret("")
        self.name = pulumi.Output.from_input(cluster_name)
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig})
