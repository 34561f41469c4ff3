"""EKS: a VPC, a pulumi-eks cluster with OIDC, and managed node groups (imported only for EKS)."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from shipway.render import cluster as render_cluster
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


def eks_cluster(name: str, blueprint: Blueprint, parent: pulumi.Resource) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """Build the EKS cluster under parent; return its kubeconfig and name."""
    spec = blueprint.cluster
    assert isinstance(spec, EksCluster)
    child = pulumi.ResourceOptions(parent=parent)
    tags = {"shipway.dev/platform": blueprint.metadata.name}
    vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=spec.network.vpc_cidr, enable_dns_hostnames=True,
                      enable_dns_support=True, tags={**tags, "Name": f"{blueprint.metadata.name}"}, opts=child)
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
                                      availability_zone=zone, tags={**tags, "kubernetes.io/role/internal-elb": "1"},
                                      opts=child))
    nat_ip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=child)
    nat = aws.ec2.NatGateway(f"{name}-nat", subnet_id=public[0].id, allocation_id=nat_ip.id, tags=tags, opts=child)
    private_routes = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, tags=tags,
                                        routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], opts=child)
    for index, subnet in enumerate(private):
        aws.ec2.RouteTableAssociation(f"{name}-private-{index}", subnet_id=subnet.id,
                                      route_table_id=private_routes.id, opts=child)
    role = aws.iam.Role(f"{name}-node-role", assume_role_policy=pulumi.Output.json_dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }), tags=tags, opts=child)
    for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                   "AmazonSSMManagedInstanceCore"):
        aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=role.name,
                                     policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=child)
    cluster = eks.Cluster(
        f"{name}-eks",
        name=blueprint.metadata.name,
        version=spec.kubernetes_version,
        vpc_id=vpc.id,
        public_subnet_ids=[subnet.id for subnet in public],
        private_subnet_ids=[subnet.id for subnet in private],
        node_associate_public_ip_address=False,
        endpoint_private_access=True,
        endpoint_public_access=spec.network.public_endpoint,
        create_oidc_provider=True,
        skip_default_node_group=True,
        instance_roles=[role],
        authentication_mode=eks.AuthenticationMode.API,
        tags=tags,
        opts=child,
    )
    for pool in blueprint.node_pools:
        _node_group(name, blueprint, pool, cluster, role, private, parent)
    return pulumi.Output.secret(cluster.kubeconfig_json), pulumi.Output.from_input(blueprint.metadata.name)


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
