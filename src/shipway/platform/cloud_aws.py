"""EKS: a VPC, a pulumi-eks cluster with access entries and managed add-ons, node groups, and the AWS side of
Karpenter or the Cluster Autoscaler (imported only for EKS)."""

from __future__ import annotations

import ipaddress
import json

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from shipway import catalog
from shipway.render import cluster as render_cluster
from shipway.render import eks as render_eks
from shipway.render import nodepools
from shipway.spec.blueprint import Blueprint, EksCluster, NodePool


def _subnets(cidr: str, count: int) -> tuple[list[str], list[str]]:
    blocks = [str(net) for net in ipaddress.ip_network(cidr).subnets(new_prefix=ipaddress.ip_network(cidr).prefixlen + 4)]
    return blocks[:count], blocks[8:8 + count]


def _zones(spec: EksCluster) -> list[pulumi.Output[str]]:
    """The first N available zones of the region, as AWS lists them (not every letter exists everywhere)."""
    configured = pulumi.Config("aws").get("region")
    if configured != spec.region:
        # Resources go where the AWS provider points; a blueprint saying otherwise would be silently wrong.
        raise pulumi.RunError(
            f"the blueprint's cluster.region is {spec.region} but the stack's aws:region is {configured or 'unset'}; "
            f"run `pulumi config set aws:region {spec.region}`")
    count = spec.network.availability_zones
    names = aws.get_availability_zones_output(
        state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}]).names

    def pick(available: list[str], index: int) -> str:
        if len(available) < count:
            raise pulumi.RunError(f"{spec.region} offers {len(available)} availability zones; "
                                  f"network.availabilityZones asks for {count}")
        return sorted(available)[index]

    return [names.apply(lambda available, index=index: pick(available, index)) for index in range(count)]


def _role(name: str, trust: dict, tags: dict[str, str], opts: pulumi.ResourceOptions,
          role_name: str | None = None) -> aws.iam.Role:
    return aws.iam.Role(name, name=role_name, assume_role_policy=json.dumps(trust), tags=tags, opts=opts)


def _node_role(name: str, tags: dict[str, str], opts: pulumi.ResourceOptions, role_name: str | None = None
               ) -> aws.iam.Role:
    role = _role(name, render_eks.ec2_trust(), tags, opts, role_name)
    for policy in render_eks.NODE_POLICIES:
        aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name,
                                     policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=opts)
    return role


def _access_entries(blueprint: Blueprint, karpenter_role: aws.iam.Role | None) -> dict[str, eks.AccessEntryArgs]:
    entries = {}
    for key, entry in render_eks.access_entries(blueprint, karpenter_role.arn if karpenter_role else None).items():
        policies = {name: eks.AccessPolicyAssociationArgs(
            policy_arn=policy["policy_arn"],
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(**policy["access_scope"]))
            for name, policy in entry.get("access_policies", {}).items()}
        entries[key] = eks.AccessEntryArgs(principal_arn=entry["principal_arn"], type=entry["type"],
                                           kubernetes_groups=entry.get("kubernetes_groups"),
                                           access_policies=policies or None)
    return entries


def eks_cluster(name: str, blueprint: Blueprint, parent: pulumi.Resource) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """Build the EKS cluster under parent; return its kubeconfig and name."""
    spec = blueprint.cluster
    assert isinstance(spec, EksCluster)
    child = pulumi.ResourceOptions(parent=parent)
    cluster_name = blueprint.metadata.name
    tags = {"shipway.dev/platform": cluster_name}
    discovery = {nodepools.DISCOVERY_TAG: cluster_name} if blueprint.uses_karpenter else {}
    vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=spec.network.vpc_cidr, enable_dns_hostnames=True,
                      enable_dns_support=True, tags={**tags, "Name": f"{cluster_name}"}, opts=child)
    zones = _zones(spec)
    public_blocks, private_blocks = _subnets(spec.network.vpc_cidr, len(zones))
    gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child)
    public_routes = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=tags,
                                       routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}], opts=child)
    public, private = [], []
    for index, (zone, public_cidr, private_cidr) in enumerate(zip(zones, public_blocks, private_blocks, strict=True)):
        subnet = aws.ec2.Subnet(f"{name}-public-{index}", vpc_id=vpc.id, cidr_block=public_cidr,
                                availability_zone=zone, map_public_ip_on_launch=False,
                                tags={**tags, "kubernetes.io/role/elb": "1"}, opts=child)
        aws.ec2.RouteTableAssociation(f"{name}-public-{index}", subnet_id=subnet.id,
                                      route_table_id=public_routes.id, opts=child)
        public.append(subnet)
        private.append(aws.ec2.Subnet(f"{name}-private-{index}", vpc_id=vpc.id, cidr_block=private_cidr,
                                      availability_zone=zone,
                                      tags={**tags, "kubernetes.io/role/internal-elb": "1", **discovery},
                                      opts=child))
    nat_ip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=child)
    nat = aws.ec2.NatGateway(f"{name}-nat", subnet_id=public[0].id, allocation_id=nat_ip.id, tags=tags, opts=child)
    private_routes = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, tags=tags,
                                        routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], opts=child)
    for index, subnet in enumerate(private):
        aws.ec2.RouteTableAssociation(f"{name}-private-{index}", subnet_id=subnet.id,
                                      route_table_id=private_routes.id, opts=child)
    node_role = _node_role(f"{name}-node-role", tags, child)
    karpenter_node_role = (_node_role(f"{name}-karpenter-node", tags, child, nodepools.karpenter_node_role(blueprint))
                           if blueprint.uses_karpenter else None)
    cluster = eks.Cluster(
        f"{name}-eks",
        name=cluster_name,
        version=catalog.KUBERNETES_VERSION,
        vpc_id=vpc.id,
        public_subnet_ids=[subnet.id for subnet in public],
        private_subnet_ids=[subnet.id for subnet in private],
        node_associate_public_ip_address=False,
        endpoint_private_access=True,
        endpoint_public_access=spec.network.public_endpoint,
        public_access_cidrs=spec.network.public_access_cidrs,
        # Named, not left to EKS, so the `kubernetes` Service's ClusterIP that NetworkPolicies allow is known.
        kubernetes_service_ip_address_range=spec.network.service_ipv4_cidr,
        create_oidc_provider=True,
        skip_default_node_group=True,
        # Nodes use the security group EKS makes for the cluster, as managed node groups do by default.
        skip_default_security_groups=True,
        # API mode: access entries, not the aws-auth ConfigMap, so no instance roles or role mappings here.
        authentication_mode=eks.AuthenticationMode.API,
        access_entries=_access_entries(blueprint, karpenter_node_role),
        # vpc-cni and kube-proxy are pulumi-eks's managed add-ons; network policy turns on the VPC CNI's agent.
        vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
        kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=True),
        # coredns needs nodes to turn ACTIVE, so Shipway adds it after the system node group.
        coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
        deletion_protection=True,
        tags=tags,
        opts=child,
    )
    if blueprint.uses_karpenter:
        aws.ec2.Tag(f"{name}-cluster-sg-discovery", resource_id=cluster.cluster_security_group_id,
                    key=nodepools.DISCOVERY_TAG, value=cluster_name, opts=child)
    groups = [_node_group(name, blueprint, pool, cluster, node_role, private, parent)
              for pool in blueprint.node_group_pools()]
    after_cluster = pulumi.ResourceOptions(parent=parent, depends_on=[cluster])
    after_nodes = pulumi.ResourceOptions(parent=parent, depends_on=[cluster, *groups])
    agent = aws.eks.Addon(f"{name}-{render_eks.POD_IDENTITY_AGENT}", cluster_name=cluster_name,
                          addon_name=render_eks.POD_IDENTITY_AGENT, resolve_conflicts_on_create="OVERWRITE",
                          tags=tags, opts=after_cluster)
    aws.eks.Addon(f"{name}-{render_eks.COREDNS}", cluster_name=cluster_name, addon_name=render_eks.COREDNS,
                  resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", tags=tags,
                  opts=after_nodes)
    ebs_role = _role(f"{name}-ebs-csi", render_eks.pod_identity_trust(), tags, child)
    aws.iam.RolePolicyAttachment(f"{name}-ebs-csi", role=ebs_role.name, policy_arn=render_eks.EBS_CSI_POLICY,
                                 opts=child)
    aws.eks.Addon(f"{name}-{render_eks.EBS_CSI_DRIVER}", cluster_name=cluster_name,
                  addon_name=render_eks.EBS_CSI_DRIVER, resolve_conflicts_on_create="OVERWRITE",
                  pod_identity_associations=render_eks.ebs_csi_pod_identity(ebs_role.arn), tags=tags,
                  opts=pulumi.ResourceOptions(parent=parent, depends_on=[cluster, agent, *groups]))
    if blueprint.uses_karpenter:
        assert karpenter_node_role is not None
        _karpenter(name, blueprint, karpenter_node_role, tags, parent, [cluster, agent])
    else:
        _controller_role(name, "cluster-autoscaler", render_eks.cluster_autoscaler_policy(blueprint),
                         nodepools.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT, blueprint, tags, parent, [cluster, agent])
    for identity in render_eks.dns_identities(blueprint):
        _controller_role(name, identity.controller, identity.policy, identity.service_account, blueprint, tags,
                         parent, [cluster, agent], namespace=identity.namespace)
    return pulumi.Output.secret(cluster.kubeconfig_json), pulumi.Output.from_input(cluster_name)


def _controller_role(name: str, controller: str, policy: pulumi.Input[dict], service_account: str,
                     blueprint: Blueprint, tags: dict[str, str], parent: pulumi.Resource,
                     after: list[pulumi.Resource], namespace: str = nodepools.SYSTEM_NAMESPACE) -> aws.iam.Role:
    """An IAM role for an in-cluster controller, handed to its service account by EKS Pod Identity."""
    child = pulumi.ResourceOptions(parent=parent)
    role = _role(f"{name}-{controller}", render_eks.pod_identity_trust(), tags, child)
    aws.iam.RolePolicy(f"{name}-{controller}", role=role.id, policy=pulumi.Output.json_dumps(policy), opts=child)
    aws.eks.PodIdentityAssociation(f"{name}-{controller}", cluster_name=blueprint.metadata.name,
                                   namespace=namespace, service_account=service_account,
                                   role_arn=role.arn, tags=tags,
                                   opts=pulumi.ResourceOptions(parent=parent, depends_on=after))
    return role


def _karpenter(name: str, blueprint: Blueprint, node_role: aws.iam.Role, tags: dict[str, str],
               parent: pulumi.Resource, after: list[pulumi.Resource]) -> None:
    """Karpenter's AWS side: its interruption queue and the events feeding it, and its controller role."""
    child = pulumi.ResourceOptions(parent=parent)
    queue = aws.sqs.Queue(f"{name}-karpenter", name=nodepools.karpenter_queue(blueprint),
                          message_retention_seconds=300, sqs_managed_sse_enabled=True, tags=tags, opts=child)
    aws.sqs.QueuePolicy(f"{name}-karpenter", queue_url=queue.url,
                        policy=pulumi.Output.json_dumps(render_eks.interruption_queue_policy(queue.arn)), opts=child)
    for event, pattern in render_eks.INTERRUPTION_EVENTS.items():
        rule = aws.cloudwatch.EventRule(f"{name}-karpenter-{event}", event_pattern=json.dumps(pattern), tags=tags,
                                        opts=child)
        aws.cloudwatch.EventTarget(f"{name}-karpenter-{event}", rule=rule.name, arn=queue.arn, opts=child)
    policy = render_eks.karpenter_controller_policy(blueprint, node_role.arn, queue.arn)
    _controller_role(name, "karpenter", policy, nodepools.KARPENTER_SERVICE_ACCOUNT, blueprint, tags, parent, after)


def _node_group(name: str, blueprint: Blueprint, pool: NodePool, cluster: eks.Cluster, role: aws.iam.Role,
                subnets: list[aws.ec2.Subnet], parent: pulumi.Resource) -> eks.ManagedNodeGroup:
    settings = render_cluster.eks_node_group(blueprint, pool)
    return eks.ManagedNodeGroup(
        f"{name}-pool-{pool.name}",
        cluster=cluster,
        node_role=role,
        subnet_ids=[subnet.id for subnet in subnets],
        node_group_name=settings["node_group_name"],
        instance_types=settings["instance_types"],
        ami_type=settings["ami_type"],
        capacity_type=settings["capacity_type"],
        disk_size=settings["disk_size"],
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(**settings["scaling_config"]),
        labels=settings["labels"],
        taints=[aws.eks.NodeGroupTaintArgs(**taint) for taint in settings["taints"]],
        opts=pulumi.ResourceOptions(parent=parent),
    )
