"""The node pools layer's in-cluster parts: node autoscaling, metrics-server, default storage, cluster admins."""

from __future__ import annotations

from shipway import catalog
from shipway.render.cluster import pool_labels
from shipway.render.common import MANAGED_BY, Obj, metadata
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import POOL_LABEL, Blueprint, EksCluster, GkeCluster, NodePool

# Node autoscalers and metrics-server run where the control plane's own add-ons do.
SYSTEM_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# Subnets and the cluster security group carry this tag, and EC2NodeClasses select by it.
DISCOVERY_TAG = "karpenter.sh/discovery"
DEFAULT_STORAGE_CLASS = "gp3"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# Nodes Karpenter launches are replaced after this long, so they pick up patched AMIs.
NODE_EXPIRY = "720h"
CONSOLIDATE_AFTER = "5m"
# Karpenter picks the AL2023 variant an instance type needs (NVIDIA for GPU types), newest release.
AMI_ALIAS = "al2023@latest"


def karpenter_node_role(blueprint: Blueprint) -> str:
    """The IAM role Karpenter's nodes run as; EC2NodeClasses name it, so it has a fixed name."""
    return f"{blueprint.metadata.name}-karpenter-node"


def karpenter_queue(blueprint: Blueprint) -> str:
    """The SQS queue carrying spot interruption and instance health events to Karpenter."""
    return f"{blueprint.metadata.name}-karpenter"


def system_pool(blueprint: Blueprint) -> NodePool:
    """The pool platform controllers are pinned to: the first system pool, else the first CPU pool."""
    pools = [pool for pool in blueprint.node_pools if pool.effective_role == "system"]
    pools = pools or [pool for pool in blueprint.node_pools if not pool.is_gpu]
    return pools[0]


def _system_placement(blueprint: Blueprint) -> Obj:
    return {"nodeSelector": {POOL_LABEL: system_pool(blueprint).name}} if blueprint.is_cloud else {}


def default_storage_class() -> Obj:
    """The cluster's default StorageClass on EKS: encrypted gp3 through the EBS CSI driver."""
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": metadata(DEFAULT_STORAGE_CLASS, annotations={DEFAULT_CLASS_ANNOTATION: "true"}),
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
        # Bind where the pod lands: an EBS volume lives in one zone.
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
    }


def metrics_server_values(blueprint: Blueprint) -> Obj:
    """Values for metrics-server, which model HorizontalPodAutoscalers read."""
    values: Obj = {
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "500Mi"}},
        **_system_placement(blueprint),
    }
    if blueprint.cluster.kind == "kind":
        # kind's kubelets serve self-signed certificates that no cluster CA signed.
        values["args"] = ["--kubelet-insecure-tls"]
    if blueprint.is_cloud:
        values["replicas"] = 2
        values["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
    return values


def installs_metrics_server(blueprint: Blueprint) -> bool:
    """GKE runs its own metrics-server; every other target gets the chart."""
    return blueprint.cluster.kind != "gke"


def karpenter_values(blueprint: Blueprint) -> Obj:
    """Values for the Karpenter controller; its AWS role reaches it through EKS Pod Identity."""
    return {
        "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
        "settings": {"clusterName": blueprint.metadata.name, "interruptionQueue": karpenter_queue(blueprint)},
        "controller": {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}},
        **_system_placement(blueprint),
    }


def _capacity_types(pool: NodePool) -> list[str]:
    types = ["spot"] if pool.spot else ["on-demand"]
    return (["reserved"] + types) if pool.capacity_reservations else types


def karpenter_node_pool(blueprint: Blueprint, pool: NodePool) -> Obj:
    """A Karpenter NodePool: the pool's instance type, labels, taints, capacity type, size limit, consolidation."""
    limits: dict[str, int] = {"nodes": pool.max_size}
    if pool.gpu is not None:
        limits["nvidia.com/gpu"] = pool.gpu.count * pool.max_size
    template: Obj = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
        "requirements": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [pool.instance_type]},
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": _capacity_types(pool)},
        ],
        "expireAfter": NODE_EXPIRY,
    }
    if pool.effective_taints:
        template["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.effective_taints]
    return {
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": metadata(pool.name),
        "spec": {
            "template": {"metadata": {"labels": dict(sorted(pool_labels(blueprint, pool).items()))}, "spec": template},
            "limits": limits,
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": CONSOLIDATE_AFTER,
                           "budgets": [{"nodes": "10%"}]},
        },
    }


def karpenter_node_class(blueprint: Blueprint, pool: NodePool) -> Obj:
    """An EC2NodeClass: AMI, node role, subnets and security group by discovery tag, encrypted root disk."""
    name = blueprint.metadata.name
    spec: Obj = {
        "role": karpenter_node_role(blueprint),
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: name}}],
        "securityGroupSelectorTerms": [{"tags": {DISCOVERY_TAG: name}}],
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
            "volumeSize": f"{pool.disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
            "deleteOnTermination": True}}],
        # IMDSv2 only, one hop: pods get AWS credentials from Pod Identity, never the node's role.
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "tags": {"shipway.dev/platform": name, POOL_LABEL: pool.name},
    }
    if pool.capacity_reservations:
        spec["capacityReservationSelectorTerms"] = [{"id": reservation} for reservation in pool.capacity_reservations]
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": metadata(pool.name),
            "spec": spec}


def cluster_autoscaler_values(blueprint: Blueprint) -> Obj:
    """Values for the Cluster Autoscaler over the EKS managed node groups (found by their ASG tags)."""
    cluster = blueprint.cluster
    assert isinstance(cluster, EksCluster)
    return {
        "cloudProvider": "aws",
        "awsRegion": cluster.region,
        "autoDiscovery": {"clusterName": blueprint.metadata.name},
        "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
        "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-system-pods": False,
                      "expander": "least-waste"},
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                     "capabilities": {"drop": ["ALL"]}},
        **_system_placement(blueprint),
    }


def gke_admin_binding(blueprint: Blueprint) -> Obj | None:
    """cluster-admin for the blueprint's admin Google groups (Google Groups for RBAC passes them through)."""
    cluster = blueprint.cluster
    if not isinstance(cluster, GkeCluster) or not cluster.access.admins:
        return None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "shipway-cluster-admins", "labels": dict(MANAGED_BY)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                     for group in cluster.access.admins],
    }


def render(blueprint: Blueprint) -> LayerRender:
    """Node autoscaling, metrics-server, the default StorageClass and admin bindings for the blueprint's target."""
    layer = LayerRender()
    if isinstance(blueprint.cluster, EksCluster):
        layer.objects.append(default_storage_class())
        if blueprint.uses_karpenter:
            layer.releases.append(Release("karpenter-crd", catalog.KARPENTER_CRD, SYSTEM_NAMESPACE, {}))
            # The CRDs come from karpenter-crd, which Helm upgrades; the chart's crds/ copy would never be.
            layer.releases.append(Release("karpenter", catalog.KARPENTER, SYSTEM_NAMESPACE,
                                          karpenter_values(blueprint), skip_crds=True))
            for pool in blueprint.karpenter_pools():
                layer.objects.append(karpenter_node_class(blueprint, pool))
                layer.objects.append(karpenter_node_pool(blueprint, pool))
        else:
            layer.releases.append(Release("cluster-autoscaler", catalog.CLUSTER_AUTOSCALER, SYSTEM_NAMESPACE,
                                          cluster_autoscaler_values(blueprint)))
    if installs_metrics_server(blueprint):
        layer.releases.append(Release("metrics-server", catalog.METRICS_SERVER, SYSTEM_NAMESPACE,
                                      metrics_server_values(blueprint)))
    admins = gke_admin_binding(blueprint)
    if admins is not None:
        layer.objects.append(admins)
    return layer
