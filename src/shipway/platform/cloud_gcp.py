"""GKE: Cloud NAT for private nodes, a cluster with workload identity, Google Groups for RBAC and a release
channel, and node pools (imported only for GKE)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from shipway import catalog
from shipway.render import cluster as render_cluster
from shipway.spec.blueprint import Blueprint, GkeCluster


def _kubeconfig(cluster_name: str, endpoint: str, ca: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {cluster_name}
  cluster:
    certificate-authority-data: {ca}
    server: https://{endpoint}
contexts:
- name: {cluster_name}
  context: {{cluster: {cluster_name}, user: {cluster_name}}}
current-context: {cluster_name}
users:
- name: {cluster_name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      provideClusterInfo: true
"""


def gke_cluster(name: str, blueprint: Blueprint, parent: pulumi.Resource) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """Build the GKE cluster and its node pools under parent; return its kubeconfig and name."""
    spec = blueprint.cluster
    assert isinstance(spec, GkeCluster)
    child = pulumi.ResourceOptions(parent=parent)
    # Private nodes have no external addresses: Cloud NAT is their way to registries and Git hosts.
    router = gcp.compute.Router(f"{name}-router", name=f"{blueprint.metadata.name}-nat", project=spec.project,
                                region=spec.region, network=spec.network, opts=child)
    nat = gcp.compute.RouterNat(f"{name}-nat", name=f"{blueprint.metadata.name}-nat", project=spec.project,
                                region=spec.region, router=router.name,
                                **render_cluster.gke_nat_settings(), opts=child)
    cluster = gcp.container.Cluster(
        f"{name}-gke",
        name=blueprint.metadata.name,
        project=spec.project,
        location=spec.region,
        node_locations=spec.zones,
        network=spec.network,
        remove_default_node_pool=True,
        initial_node_count=1,
        deletion_protection=True,
        release_channel={"channel": spec.release_channel},
        min_master_version=catalog.KUBERNETES_VERSION,
        workload_identity_config={"workload_pool": f"{spec.project}.svc.id.goog"},
        ip_allocation_policy={},
        private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False,
                                "master_ipv4_cidr_block": spec.master_cidr},
        network_policy={"enabled": False},
        datapath_provider="ADVANCED_DATAPATH",
        resource_labels={"shipway-platform": blueprint.metadata.name},
        **({"authenticator_groups_config": {"security_group": spec.access.security_group}}
           if spec.access.security_group else {}),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[nat]),
    )
    for pool in blueprint.node_pools:
        settings = render_cluster.gke_node_pool(blueprint, pool)
        gcp.container.NodePool(
            f"{name}-pool-{pool.name}",
            cluster=cluster.id,
            location=spec.region,
            project=spec.project,
            **settings,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[cluster]),
        )
    kubeconfig = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
        lambda parts: _kubeconfig(*[str(part) for part in parts]))
    return pulumi.Output.secret(kubeconfig), cluster.name
