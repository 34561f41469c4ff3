"""EKS's pure parts: access entries, managed add-ons, and the IAM policies of the controllers Shipway runs.

ARNs that only AWS knows are passed in (Pulumi outputs fit: json_dumps resolves them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipway.render import gateway
from shipway.render.common import Obj
from shipway.render.nodepools import EBS_CSI_SERVICE_ACCOUNT
from shipway.spec.blueprint import Blueprint, EksCluster

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                 "AmazonSSMManagedInstanceCore")
# EKS managed add-ons Shipway creates itself. pulumi-eks creates vpc-cni and kube-proxy (configured through its
# options), and creates no coredns when the cluster has no default node group.
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
EBS_CSI_DRIVER = "aws-ebs-csi-driver"
COREDNS = "coredns"
# Events Karpenter acts on before EC2 takes a node away.
INTERRUPTION_EVENTS: dict[str, Obj] = {
    "health": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
}


def pod_identity_trust() -> Obj:
    """The trust policy of a role that EKS Pod Identity hands to a service account."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def ec2_trust() -> Obj:
    """The trust policy of a node role."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def access_entries(blueprint: Blueprint, karpenter_node_role_arn: Any | None) -> dict[str, Obj]:
    """pulumi-eks access entries: admins with the cluster admin policy, team principals in their team's groups,
    and Karpenter's node role as EC2 Linux nodes (managed node groups get theirs from EKS itself)."""
    cluster = blueprint.cluster
    assert isinstance(cluster, EksCluster)
    entries: dict[str, Obj] = {}
    for index, arn in enumerate(cluster.access.admins):
        entries[f"admin-{index}"] = {"principal_arn": arn, "type": "STANDARD", "access_policies": {
            "cluster-admin": {"policy_arn": CLUSTER_ADMIN_POLICY, "access_scope": {"type": "cluster"}}}}
    teams = {team.name: team for team in blueprint.teams}
    for team_name, principals in sorted(cluster.access.teams.items()):
        for index, arn in enumerate(principals):
            entries[f"team-{team_name}-{index}"] = {"principal_arn": arn, "type": "STANDARD",
                                                    "kubernetes_groups": list(teams[team_name].groups)}
    if karpenter_node_role_arn is not None:
        entries["karpenter-nodes"] = {"principal_arn": karpenter_node_role_arn, "type": "EC2_LINUX"}
    return entries


def ebs_csi_pod_identity(role_arn: Any) -> list[Obj]:
    """The EBS CSI add-on's Pod Identity association: its controller's service account gets the role."""
    return [{"role_arn": role_arn, "service_account": EBS_CSI_SERVICE_ACCOUNT}]


def partition(region: str) -> str:
    """The AWS partition a region belongs to, as ARNs spell it."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def karpenter_controller_policy(blueprint: Blueprint, node_role_arn: Any, queue_arn: Any) -> Obj:
    """What Karpenter's controller may do: launch and end its own instances, pass its node role, read prices,
    manage its instance profiles, describe the cluster and drain its interruption queue.

    "Its own" is what it tagged when creating them: creation calls must carry this cluster's `owned` tag and a
    NodePool tag, tags may be written only as part of those calls (ec2:CreateAction) or, on its own instances,
    only the NodeClaim and Name tags, so no existing instance can be made to look like Karpenter's and then
    terminated.
    """
    cluster = blueprint.cluster
    assert isinstance(cluster, EksCluster)
    name, region = blueprint.metadata.name, cluster.region
    ec2 = f"arn:{partition(region)}:ec2:{region}"
    cluster_tag = f"kubernetes.io/cluster/{name}"

    def tagged(kind: str) -> Obj:  # kind: RequestTag (tags the call sets) or ResourceTag (tags it already has)
        return {"StringEquals": {f"aws:{kind}/{cluster_tag}": "owned"},
                "StringLike": {f"aws:{kind}/karpenter.sh/nodepool": "*"}}

    created = [f"{ec2}:*:{kind}/*" for kind in ("fleet", "instance", "volume", "network-interface",
                                                 "launch-template")]
    launch_tagged = tagged("RequestTag")
    tag_on_create = tagged("RequestTag")
    tag_on_create["StringEquals"]["ec2:CreateAction"] = ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]
    tag_own_instances = tagged("ResourceTag")
    tag_own_instances["ForAllValues:StringEquals"] = {"aws:TagKeys": ["karpenter.sh/nodeclaim", "Name"]}
    owned = {"StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "LaunchFromSharedResources", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:spot-instances-request/*",
                      f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*", f"{ec2}:*:launch-template/*"]},
        {"Sid": "LaunchTagged", "Effect": "Allow",
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], "Resource": created,
         "Condition": launch_tagged},
        {"Sid": "TagOnCreate", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": created,
         "Condition": tag_on_create},
        {"Sid": "TagOwnInstances", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": f"{ec2}:*:instance/*",
         "Condition": tag_own_instances},
        {"Sid": "EndOwnInstances", "Effect": "Allow", "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"], "Condition": tagged("ResourceTag")},
        {"Sid": "Discover", "Effect": "Allow",
         "Action": ["ec2:DescribeAvailabilityZones", "ec2:DescribeCapacityReservations", "ec2:DescribeImages",
                    "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates", "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "ReadPrices", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
        {"Sid": "ReadAmiParameters", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": f"arn:{partition(region)}:ssm:{region}::parameter/aws/service/*"},
        {"Sid": "PassNodeRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": node_role_arn,
         "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}}},
        {"Sid": "ReadInstanceProfiles", "Effect": "Allow",
         "Action": ["iam:GetInstanceProfile", "iam:ListInstanceProfiles"], "Resource": "*"},
        {"Sid": "CreateOwnInstanceProfiles", "Effect": "Allow", "Action": "iam:CreateInstanceProfile",
         "Resource": "*", "Condition": {"StringEquals": {f"aws:RequestTag/{cluster_tag}": "owned"}}},
        # Tagging needs the profile to be this cluster's already, so no other profile can be claimed.
        {"Sid": "TagOwnInstanceProfiles", "Effect": "Allow", "Action": "iam:TagInstanceProfile", "Resource": "*",
         "Condition": {"StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned",
                                        f"aws:RequestTag/{cluster_tag}": "owned"}}},
        {"Sid": "ManageOwnInstanceProfiles", "Effect": "Allow",
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "Resource": "*", "Condition": owned},
        {"Sid": "DescribeCluster", "Effect": "Allow", "Action": "eks:DescribeCluster",
         "Resource": f"arn:{partition(region)}:eks:{region}:*:cluster/{name}"},
        {"Sid": "Interruptions", "Effect": "Allow",
         "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
         "Resource": queue_arn},
    ]}


def interruption_queue_policy(queue_arn: Any) -> Obj:
    """Lets EventBridge deliver interruption events into Karpenter's queue, over TLS only."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "EventBridge", "Effect": "Allow",
         "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


def cluster_autoscaler_policy(blueprint: Blueprint) -> Obj:
    """What the Cluster Autoscaler may do: read groups and node groups, resize only this cluster's groups."""
    name = blueprint.metadata.name
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Discover", "Effect": "Allow",
         "Action": ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup"],
         "Resource": "*"},
        {"Sid": "ResizeOwnGroups", "Effect": "Allow",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Resource": "*",
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{name}": "owned"}}},
    ]}


@dataclass(frozen=True)
class DnsIdentity:
    """A DNS controller's IAM role: the service account EKS Pod Identity hands it to, and what it may do."""

    controller: str
    namespace: str
    service_account: str
    policy: Obj


# The service accounts cert-manager v1.19 and external-dns 1.21 render for releases named after their charts
# (each chart's fullname; proven against the charts in tests/unit/charts/test_dns_identity_charts.py).
CERT_MANAGER_SERVICE_ACCOUNT = "cert-manager"
EXTERNAL_DNS_SERVICE_ACCOUNT = "external-dns"


def _zones(blueprint: Blueprint) -> list[str]:
    region = blueprint.cluster.region if isinstance(blueprint.cluster, EksCluster) else ""
    return [f"arn:{partition(region)}:route53:::hostedzone/{zone}" for zone in blueprint.gateway.hosted_zone_ids]


def cert_manager_route53_policy(blueprint: Blueprint) -> Obj:
    """DNS-01 through Route53: write only _acme-challenge TXT records, only in the blueprint's zones."""
    zones = _zones(blueprint)
    region = blueprint.cluster.region if isinstance(blueprint.cluster, EksCluster) else ""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ChallengeRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": zones,
         "Condition": {"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
                       "ForAllValues:StringLike": {
                           "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]}}},
        {"Sid": "ReadZones", "Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": zones},
        {"Sid": "WaitForChanges", "Effect": "Allow", "Action": "route53:GetChange",
         "Resource": f"arn:{partition(region)}:route53:::change/*"},
        {"Sid": "FindZones", "Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
    ]}


def external_dns_route53_policy(blueprint: Blueprint) -> Obj:
    """external-dns on AWS: change records under the gateway's domain, only in the blueprint's zones."""
    zones = _zones(blueprint)
    domain = blueprint.gateway_domain
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "RouteRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": zones,
         "Condition": {"ForAllValues:StringLike": {
             "route53:ChangeResourceRecordSetsNormalizedRecordNames": [domain, f"*.{domain}"]}}},
        {"Sid": "ReadZones", "Effect": "Allow",
         "Action": ["route53:ListResourceRecordSets", "route53:ListTagsForResource", "route53:ListTagsForResources"],
         "Resource": zones},
        {"Sid": "FindZones", "Effect": "Allow", "Action": "route53:ListHostedZones", "Resource": "*"},
    ]}


def dns_identities(blueprint: Blueprint) -> list[DnsIdentity]:
    """The Route53 roles the blueprint's DNS controllers need on EKS (none when neither uses Route53)."""
    if not isinstance(blueprint.cluster, EksCluster):
        return []
    users = blueprint.route53_users
    found = []
    if "cert-manager" in users:
        found.append(DnsIdentity("cert-manager", gateway.CERT_MANAGER_NAMESPACE, CERT_MANAGER_SERVICE_ACCOUNT,
                                 cert_manager_route53_policy(blueprint)))
    if "external-dns" in users:
        found.append(DnsIdentity("external-dns", gateway.EXTERNAL_DNS_NAMESPACE, EXTERNAL_DNS_SERVICE_ACCOUNT,
                                 external_dns_route53_policy(blueprint)))
    return found
