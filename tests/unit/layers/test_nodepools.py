"""Node autoscaling and the cluster basics under mocks: Karpenter or the Cluster Autoscaler, metrics-server, gp3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from layer_support import REPO

from shipway import catalog
from shipway.platform.synth import run_program
from shipway.render import nodepools

CHARTS = REPO.parent / "shared" / "charts"


def _autoscaled(tmp_path: Path) -> Path:
    text = (REPO / "blueprints" / "eks-prod.yaml").read_text().replace(
        "autoscaling: karpenter", "autoscaling: cluster-autoscaler").replace(
        "    capacityReservations: [cr-0123456789abcdef0]   # on-demand p5 capacity comes reserved\n", "")
    path = tmp_path / "eks-ca.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def eks_cluster_autoscaler(tmp_path_factory: pytest.TempPathFactory):
    return run_program(_autoscaled(tmp_path_factory.mktemp("ca")))


def test_karpenter_is_installed_from_its_charts_with_a_pod_identity_role(eks_prod):
    crd, controller = eks_prod.releases["karpenter-crd"], eks_prod.releases["karpenter"]
    assert (crd["chart"], controller["chart"]) == (catalog.KARPENTER_CRD.ref, catalog.KARPENTER.ref)
    assert crd["namespace"] == controller["namespace"] == nodepools.SYSTEM_NAMESPACE
    [release] = [r for r in eks_prod.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "karpenter"]
    assert release.inputs["skipCrds"] is True  # karpenter-crd owns the CRDs
    values = controller["values"]
    assert values["settings"] == {"clusterName": "shipway-prod", "interruptionQueue": "shipway-prod-karpenter"}
    assert values["nodeSelector"] == {"shipway.dev/pool": "system"}
    assert "annotations" not in values["serviceAccount"]  # no IRSA: Pod Identity hands the role over
    [association] = [a for a in eks_prod.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                     if a.inputs["serviceAccount"] == values["serviceAccount"]["name"]]
    assert association.inputs["namespace"] == nodepools.SYSTEM_NAMESPACE
    [role] = [r for r in eks_prod.of_type("aws:iam/role:Role") if r.name == "shipway-prod-cluster-karpenter"]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Statement"][0]["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    # Spot interruptions reach Karpenter through EventBridge and its queue.
    [queue] = eks_prod.of_type("aws:sqs/queue:Queue")
    assert queue.inputs["name"] == "shipway-prod-karpenter"
    patterns = [json.loads(rule.inputs["eventPattern"]) for rule in eks_prod.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]} in patterns


def test_each_gpu_pool_is_a_karpenter_node_pool(eks_prod):
    pools = {obj["metadata"]["name"]: obj["spec"] for obj in eks_prod.kind("NodePool")}
    classes = {obj["metadata"]["name"]: obj["spec"] for obj in eks_prod.kind("EC2NodeClass")}
    assert set(pools) == set(classes) == {"a10g", "h100"}  # the system pool stays a managed node group
    a10g, h100 = pools["a10g"], pools["h100"]
    requirements = {r["key"]: r["values"] for r in a10g["template"]["spec"]["requirements"]}
    assert requirements == {"node.kubernetes.io/instance-type": ["g5.2xlarge"], "karpenter.sh/capacity-type": ["spot"]}
    assert {r["key"]: r["values"] for r in h100["template"]["spec"]["requirements"]}["karpenter.sh/capacity-type"] \
        == ["reserved", "on-demand"]
    assert a10g["limits"] == {"nodes": 10, "nvidia.com/gpu": 10}
    assert h100["limits"] == {"nodes": 2, "nvidia.com/gpu": 16}  # 8 GPUs x maxSize 2
    assert h100["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present",
                                                   "effect": "NoSchedule"}]
    labels = h100["template"]["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true" and labels["nvidia.com/mig.config"] == "all-1g.10gb"
    assert a10g["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert a10g["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                       "name": "a10g"}
    assert classes["h100"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert classes["h100"]["role"] == "shipway-prod-karpenter-node"
    assert classes["h100"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "1000Gi"
    assert classes["a10g"]["metadataOptions"]["httpTokens"] == "required"


def test_karpenter_finds_subnets_and_security_group_by_tag(eks_prod):
    tag = {nodepools.DISCOVERY_TAG: "shipway-prod"}
    [term] = eks_prod.kind("EC2NodeClass")[0]["spec"]["subnetSelectorTerms"]
    assert term == {"tags": tag}
    private = [s for s in eks_prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    assert private and all(s.inputs["tags"][nodepools.DISCOVERY_TAG] == "shipway-prod" for s in private)
    [sg_tag] = eks_prod.of_type("aws:ec2/tag:Tag")
    assert (sg_tag.inputs["key"], sg_tag.inputs["value"]) == (nodepools.DISCOVERY_TAG, "shipway-prod")


def test_karpenter_objects_wait_for_its_crds(eks_prod):
    [crd] = [r for r in eks_prod.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "karpenter-crd"]
    for type_ in ("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        for resource in eks_prod.of_type(type_):
            assert crd.urn in resource.dependencies, resource.name


def test_cluster_autoscaler_is_the_alternative(eks_cluster_autoscaler):
    resources = eks_cluster_autoscaler.resources
    releases = {r.inputs["name"]: r.inputs for r in resources if r.type == "kubernetes:helm.sh/v3:Release"}
    assert "karpenter" not in releases and "karpenter-crd" not in releases
    values = releases["cluster-autoscaler"]["values"]
    assert values["autoDiscovery"] == {"clusterName": "shipway-prod"} and values["awsRegion"] == "eu-west-1"
    groups = {r.inputs["nodeGroupName"] for r in resources if r.type == "eks:index:ManagedNodeGroup"}
    assert groups == {"shipway-prod-system", "shipway-prod-a10g", "shipway-prod-h100"}
    [association] = [r for r in resources if r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
                     and r.inputs["namespace"] == nodepools.SYSTEM_NAMESPACE]
    assert association.inputs["serviceAccount"] == values["rbac"]["serviceAccount"]["name"]
    assert not [r for r in resources if r.type.startswith("kubernetes:karpenter")]


def test_cluster_autoscaler_image_matches_the_kubernetes_minor():
    # The autoscaler supports the Kubernetes minor it is built for; the chart's default image is its appVersion.
    chart = yaml.safe_load((CHARTS / f"cluster-autoscaler-{catalog.CLUSTER_AUTOSCALER.version}" / "Chart.yaml")
                           .read_text())
    assert chart["appVersion"].rsplit(".", 1)[0] == catalog.KUBERNETES_VERSION


def test_metrics_server_runs_on_every_target(kind_dev, eks_prod, gke_prod):
    kind_values = kind_dev.releases["metrics-server"]["values"]
    assert kind_values["args"] == ["--kubelet-insecure-tls"]  # kind's kubelets have self-signed certificates
    eks_values = eks_prod.releases["metrics-server"]["values"]
    assert "args" not in eks_values and eks_values["replicas"] == 2
    for synthesised in (kind_dev, eks_prod):
        assert synthesised.releases["metrics-server"]["namespace"] == "kube-system"
    # GKE runs a metrics-server of its own; a second one would fight it over the metrics APIService.
    assert "metrics-server" not in gke_prod.releases


def test_eks_has_one_default_storage_class_on_ebs_gp3(eks_prod, kind_dev, gke_prod):
    [storage] = eks_prod.kind("StorageClass")
    assert storage["metadata"]["annotations"] == {nodepools.DEFAULT_CLASS_ANNOTATION: "true"}
    assert storage["provisioner"] == "ebs.csi.aws.com" and storage["parameters"]["type"] == "gp3"
    assert storage["volumeBindingMode"] == "WaitForFirstConsumer"
    # kind (local-path) and GKE (standard-rwo) bring a default class of their own.
    assert not kind_dev.kind("StorageClass") and not gke_prod.kind("StorageClass")
