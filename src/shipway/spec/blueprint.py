"""The blueprint: one typed description of a whole AI delivery platform."""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from shipway.spec.base import (
    MAX_CACHE_SHARE,
    CacheSize,
    DnsLabel,
    Duration,
    Located,
    Quantity,
    Spec,
    disk_share,
    quantity_value,
    raise_all,
)
from shipway.spec.gpus import GPU_MODELS, mig_slices

API_VERSION = "shipway.dev/v1alpha1"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
POOL_LABEL = "shipway.dev/pool"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
# The longest EKS platform name: IAM role names (64 characters) carry it with a suffix ("-karpenter-node").
EKS_NAME_MAX = 49
# The longest GKE platform name: the Cloud Router and NAT are named <name>-nat, RFC 1035 labels of 63 at most.
GKE_NAME_MAX = 59

Values = dict[str, Any]


# --- metadata ---------------------------------------------------------------------------


class Metadata(Spec):
    """Who this platform is and which environments models are promoted through."""

    name: DnsLabel = Field(description="Platform name; prefixes cloud resources and the kind cluster.")
    description: str = Field("", description="Free text shown in reports.")
    environments: list[DnsLabel] = Field(
        default_factory=lambda: ["staging", "prod"],
        min_length=1,
        description="Promotion order of environments, first to last (e.g. staging, prod).",
    )

    @field_validator("environments")
    @classmethod
    def _unique_environments(cls, value: list[str]) -> list[str]:
        duplicates = sorted({env for env in value if value.count(env) > 1})
        if duplicates:
            raise ValueError(f"Got environments {value}; {duplicates} appear more than once. List each once.")
        return value


# --- cluster ----------------------------------------------------------------------------


# Where an API server whose address Shipway cannot know (kind, an existing cluster) is assumed to live: the
# RFC 1918 ranges, so platform pods reach it without reaching the internet.
PRIVATE_API_SERVER_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# The blocks an EKS Service range must lie in (the same RFC 1918 ranges).
EKS_SERVICE_BLOCKS = tuple(ipaddress.IPv4Network(block) for block in PRIVATE_API_SERVER_CIDRS)
Cidr = Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")]


def _ipv4_network(value: str, example: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as error:
        raise ValueError(f'Got "{value}", which is not an IPv4 network ({error}). '
                         f'Write the network address, e.g. "{example}"') from None


def _api_server_cidrs(value: list[str]) -> list[str]:
    for cidr in value:
        if _ipv4_network(cidr, "172.18.0.0/16").prefixlen == 0:
            raise ValueError(f'Got "{cidr}", which would let platform pods reach the whole internet on the API '
                             "server's ports. List the networks the API server's addresses are in, e.g. "
                             '"172.18.0.0/16" (kind\'s Docker network)')
    return value


def _api_server_cidrs_field() -> Any:
    return Field(default_factory=lambda: list(PRIVATE_API_SERVER_CIDRS), min_length=1, description=(
        "Networks the Kubernetes API server's addresses are in (the `kubernetes` Service's endpoints and "
        "ClusterIP); platform pods may reach only these on 443 and 6443. Defaults to the RFC 1918 ranges."))


class KindCluster(Spec):
    """A local kind cluster for development; Shipway writes its config (`shipway kind-config`)."""

    kind: Literal["kind"] = Field(description="Cluster variant.")
    name: DnsLabel | None = Field(None, description="kind cluster name; defaults to metadata.name.")
    context: str | None = Field(None, description="kubeconfig context; defaults to kind-<name>.")
    http_port: int = Field(8080, ge=1, le=65535, description="Port on 127.0.0.1 that reaches the Gateway's HTTP listener.")
    https_port: int = Field(8443, ge=1, le=65535, description="Port on 127.0.0.1 that reaches the Gateway's HTTPS listeners.")
    api_server_cidrs: list[Cidr] = _api_server_cidrs_field()

    _check_api_server_cidrs = field_validator("api_server_cidrs")(_api_server_cidrs)


class ExistingCluster(Spec):
    """A cluster that already exists, reached through a kubeconfig context."""

    kind: Literal["existing"] = Field(description="Cluster variant.")
    context: str = Field(min_length=1, description="kubeconfig context to deploy into.")
    api_server_cidrs: list[Cidr] = _api_server_cidrs_field()

    _check_api_server_cidrs = field_validator("api_server_cidrs")(_api_server_cidrs)


class EksNetwork(Spec):
    """The VPC an EKS cluster gets."""

    vpc_cidr: str = Field("10.0.0.0/16", pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$",
                          description="VPC CIDR block, /16 to /24 (split into /prefix+4 subnets).")
    availability_zones: int = Field(3, ge=2, le=6, description="How many availability zones to spread subnets over.")
    public_endpoint: bool = Field(
        True, description="Whether the Kubernetes API is reachable from outside the VPC (IAM still authenticates). "
                          "`pulumi up` installs the platform through it, so keep it on unless the machine running "
                          "`pulumi up` is inside the VPC or connected to it (say how in privateAccess).")
    public_access_cidrs: list[Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")]] | None = Field(
        None, description="CIDR blocks that may reach the public endpoint, e.g. your CI runners' egress; "
                          "EKS allows any address when absent. Only with publicEndpoint: true.")
    private_access: str = Field(
        "", description="With publicEndpoint: false, how `pulumi up` reaches the private endpoint "
                        "(VPN, Direct Connect, a runner inside the VPC). Shipway warns when it is empty.")
    service_cidr: Cidr | None = Field(
        None, description="The range Kubernetes Service ClusterIPs come from (pulumi-eks "
                          "kubernetesServiceIpAddressRange), fixed when the cluster is created: inside 10.0.0.0/8, "
                          "172.16.0.0/12 or 192.168.0.0/16, /12 to /24, outside the VPC CIDR. Defaults to the range "
                          "EKS picks itself: 172.20.0.0/16 for a VPC in 10.0.0.0/8, else 10.100.0.0/16. Platform "
                          "pods reach the API server at its first address, the `kubernetes` Service.")

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        network = _ipv4_network(value, "10.0.0.0/16")
        # AWS takes VPCs of /16 to /28; each subnet is 4 bits longer and AWS subnets stop at /28.
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f'Got "{value}". A VPC CIDR must be /16 to /24, so its /prefix+4 subnets fit AWS')
        return value

    @field_validator("service_cidr")
    @classmethod
    def _service_cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        network = _ipv4_network(value, "172.20.0.0/16")
        # terraform-provider-aws internal/service/eks/cluster.go (service_ipv4_cidr): IsCIDRNetwork(12, 24) and
        # within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, as the EKS API asks.
        if not 12 <= network.prefixlen <= 24 or not any(network.subnet_of(block) for block in EKS_SERVICE_BLOCKS):
            raise ValueError(f'Got "{value}". EKS takes a Service range of /12 to /24 inside 10.0.0.0/8, '
                             '172.16.0.0/12 or 192.168.0.0/16, e.g. "172.20.0.0/16"')
        return value

    @model_validator(mode="after")
    def _service_cidr_outside_vpc(self) -> EksNetwork:
        if ipaddress.IPv4Network(self.service_ipv4_cidr).overlaps(ipaddress.IPv4Network(self.vpc_cidr)):
            raise Located(("serviceCidr",), f'serviceCidr "{self.service_ipv4_cidr}" overlaps vpcCidr '
                                            f'"{self.vpc_cidr}", which EKS refuses',
                          "choose a Service range outside the VPC, e.g. 172.20.0.0/16 for a VPC in 10.0.0.0/8")
        return self

    @property
    def service_ipv4_cidr(self) -> str:
        """The Service range the cluster gets: serviceCidr, else the one EKS would pick for this VPC."""
        if self.service_cidr is not None:
            return self.service_cidr
        # EKS picks 172.20.0.0/16 when the VPC has a 10.x block, else 10.100.0.0/16 (awslabs/amazon-eks-ami
        # files/bootstrap.sh derives the cluster DNS address the same way); naming it keeps a cluster EKS already
        # made from being replaced, as the range is fixed at creation.
        in_ten = ipaddress.IPv4Network(self.vpc_cidr).subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
        return "172.20.0.0/16" if in_ten else "10.100.0.0/16"

    @property
    def kubernetes_service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the Service range."""
        return str(next(ipaddress.IPv4Network(self.service_ipv4_cidr).hosts()))


IamArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")]


class EksAccess(Spec):
    """Who may use the EKS cluster: IAM principals mapped by EKS access entries."""

    admins: list[IamArn] = Field(
        default_factory=list,
        description="IAM roles or users given cluster-admin (AmazonEKSClusterAdminPolicy). The identity that runs "
                    "`pulumi up` is admin already, as the cluster's creator.")
    teams: dict[DnsLabel, list[IamArn]] = Field(
        default_factory=dict,
        description="Per team, the IAM roles or users of its members; each is mapped to the team's `groups`, "
                    "which the team's RoleBindings bind.")


class EksCluster(Spec):
    """An Amazon EKS cluster built with pulumi-eks."""

    kind: Literal["eks"] = Field(description="Cluster variant.")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region, e.g. eu-west-1.")
    network: EksNetwork = Field(default_factory=EksNetwork, description="VPC settings.")
    access: EksAccess = Field(default_factory=EksAccess, description="Cluster admins and team principals.")
    autoscaling: Literal["karpenter", "cluster-autoscaler"] = Field(
        "karpenter",
        description="karpenter: the system pool is a managed node group and every other pool a Karpenter NodePool "
                    "(scale from zero, consolidation). cluster-autoscaler: every pool is a managed node group "
                    "scaled by the Cluster Autoscaler.")


class GkeAccess(Spec):
    """Who may use the GKE cluster: Google Groups for RBAC."""

    security_group: str | None = Field(
        None, pattern=r"^gke-security-groups@[a-z0-9.-]+\.[a-z]+$",
        description="The gke-security-groups@<your domain> group whose member groups GKE passes to RBAC. "
                    "Teams' `groups` (Google group emails) must be members of it.")
    admins: list[Annotated[str, Field(pattern=r"^[^@\s]+@[a-z0-9.-]+\.[a-z]+$")]] = Field(
        default_factory=list, description="Google groups bound to cluster-admin (members of securityGroup).")


class GkeCluster(Spec):
    """A Google GKE cluster built with pulumi-gcp."""

    kind: Literal["gke"] = Field(description="Cluster variant.")
    project: str = Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", description="GCP project id.")
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d$", description="GCP region, e.g. europe-west4.")
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field("REGULAR", description="GKE release channel.")
    network: str = Field("default", description="VPC network name.")
    zones: list[Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+\d-[a-z]$")]] = Field(
        min_length=1,
        description="Zones of the region node pools run in (a pool may name a subset). GPU types are zonal, "
                    "and GKE sizes regional pools per zone, so Shipway needs to know them.",
    )
    access: GkeAccess = Field(default_factory=GkeAccess, description="Google Groups for RBAC and cluster admins.")
    master_cidr: Cidr = Field(
        "172.16.0.32/28", description="The private cluster's control-plane range (master_ipv4_cidr_block), a /28 "
                                      "outside the network's subnets; platform pods reach the API server only here.")

    @field_validator("master_cidr")
    @classmethod
    def _master_cidr(cls, value: str) -> str:
        network = _ipv4_network(value, "172.16.0.32/28")
        if network.prefixlen != 28 or not network.is_private:
            raise ValueError(f'Got "{value}". GKE takes a private /28 for the control plane, e.g. "172.16.0.32/28"')
        return value


Cluster = Annotated[KindCluster | ExistingCluster | EksCluster | GkeCluster, Field(discriminator="kind")]


# --- node pools -------------------------------------------------------------------------


class Taint(Spec):
    """A node taint."""

    key: str = Field(min_length=1, description="Taint key.")
    value: str = Field("", description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field("NoSchedule", description="Taint effect.")


class Toleration(Spec):
    """A pod toleration."""

    key: str = Field(min_length=1, description="Taint key tolerated.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Exists tolerates any value.")
    value: str = Field("", description="Value to match when operator is Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = Field(
        "", description='Effect tolerated; "" tolerates every effect.'
    )

    def tolerates(self, taint: Taint) -> bool:
        """Whether this toleration admits pods onto nodes with the taint."""
        if self.key != taint.key or self.effect not in ("", taint.effect):
            return False
        return self.operator == "Exists" or self.value == taint.value


class PoolGpu(Spec):
    """The GPUs on each node of a pool."""

    model: str = Field(description=f"GPU model, one of: {', '.join(GPU_MODELS)}.")
    count: int = Field(1, ge=1, le=16, description="GPUs per node.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in GPU_MODELS:
            raise ValueError(f'Got "{value}". Known GPU models: {", ".join(GPU_MODELS)}')
        return value


DEFAULT_GPU_TAINT = Taint(key=GPU_RESOURCE, value="present", effect="NoSchedule")


class NodePool(Spec):
    """A group of identical nodes: the system pool, CPU pools and GPU pools."""

    name: DnsLabel = Field(description="Pool name; nodes carry the label shipway.dev/pool=<name>.")
    role: Literal["system", "cpu", "gpu"] | None = Field(
        None, description="system (platform components), cpu or gpu; defaults to gpu when `gpu` is set, else cpu."
    )
    instance_type: str | None = Field(
        None, description="EKS instance type or GKE machine type (e.g. g5.2xlarge, g2-standard-8). Required on clouds."
    )
    gpu: PoolGpu | None = Field(None, description="GPUs per node; absent for CPU pools.")
    min_size: int = Field(0, ge=0, le=1000, description="Autoscaling lower bound.")
    max_size: int = Field(1, ge=0, le=1000, description="Autoscaling upper bound.")
    desired_size: int | None = Field(None, ge=0, le=1000, description="Initial size; defaults to minSize.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    taints: list[Taint] | None = Field(
        None, description="Node taints; GPU pools default to nvidia.com/gpu=present:NoSchedule. [] means none."
    )
    spot: bool = Field(False, description="Use spot / preemptible capacity.")
    capacity_reservations: list[Annotated[str, Field(pattern=r"^cr-[0-9a-z]+$")]] = Field(
        default_factory=list,
        description="EKS with Karpenter: EC2 capacity reservation ids (cr-...) the pool launches into first.")
    zones: list[Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+\d-[a-z]$")]] | None = Field(
        None, description="GKE only: the zones this pool runs in, e.g. where its GPU type is offered; "
                          "defaults to the cluster's zones.")
    disk_size_gib: int = Field(100, ge=20, le=16384, alias="diskSizeGiB", description="Root disk size per node in GiB.")

    @property
    def effective_role(self) -> str:
        """The pool's role, derived when not given."""
        return self.role or ("gpu" if self.gpu else "cpu")

    @property
    def is_gpu(self) -> bool:
        """Whether the pool's nodes have GPUs."""
        return self.gpu is not None

    @property
    def effective_desired_size(self) -> int:
        """Initial size of the pool: minSize unless given, so an idle GPU pool costs nothing."""
        return self.desired_size if self.desired_size is not None else self.min_size

    @property
    def effective_taints(self) -> list[Taint]:
        """Taints applied to the pool's nodes, defaults included."""
        if self.taints is not None:
            return self.taints
        return [DEFAULT_GPU_TAINT] if self.is_gpu else []

    @property
    def node_labels(self) -> dict[str, str]:
        """Every label the pool's nodes carry."""
        labels = {POOL_LABEL: self.name}
        if self.is_gpu:
            assert self.gpu is not None
            labels[GPU_PRESENT_LABEL] = "true"
            labels["shipway.dev/gpu-model"] = self.gpu.model
        return {**labels, **self.labels}

    @model_validator(mode="after")
    def _sizes(self) -> NodePool:
        problems = []
        if self.min_size > self.max_size:
            problems.append(Located(
                ("minSize",), f"minSize {self.min_size} is greater than maxSize {self.max_size}",
                "raise maxSize or lower minSize"))
        if self.desired_size is not None and not self.min_size <= self.desired_size <= self.max_size:
            problems.append(Located(
                ("desiredSize",),
                f"desiredSize {self.desired_size} is outside [{self.min_size}, {self.max_size}]",
                "set desiredSize between minSize and maxSize"))
        if self.role == "gpu" and self.gpu is None:
            problems.append(Located(("role",), "role is gpu but the pool has no `gpu` section",
                                    "add `gpu: {model: ..., count: ...}` or set role: cpu"))
        if self.gpu is not None and self.role in ("system", "cpu"):
            problems.append(Located(("role",), f"role is {self.role} but the pool has GPUs",
                                    "set role: gpu, or remove the `gpu` section"))
        raise_all(problems)
        return self


# --- GPU stack --------------------------------------------------------------------------


class NoSharing(Spec):
    """Each pod gets whole GPUs."""

    strategy: Literal["none"] = Field(description="Sharing variant.")


class TimeSlicing(Spec):
    """Oversubscribe each GPU by time-slicing it between pods."""

    strategy: Literal["time-slicing"] = Field(description="Sharing variant.")
    replicas: int = Field(4, ge=2, le=64, description="How many pods share one GPU.")
    rename_by_default: bool = Field(
        False, description="Advertise shared GPUs as nvidia.com/gpu.shared instead of nvidia.com/gpu."
    )


class MigSharing(Spec):
    """Partition MIG-capable GPUs (A100, H100, H200) into isolated slices."""

    strategy: Literal["mig"] = Field(description="Sharing variant.")
    mig_strategy: Literal["single", "mixed"] = Field(
        "mixed", description="single exposes slices as nvidia.com/gpu; mixed as nvidia.com/mig-<profile>."
    )
    profile: str = Field("all-1g.10gb", description="mig-parted configuration applied to the pools, e.g. all-1g.10gb.")
    pools: list[DnsLabel] | None = Field(
        None, description="GPU pools to partition; defaults to every MIG-capable GPU pool."
    )


Sharing = Annotated[NoSharing | TimeSlicing | MigSharing, Field(discriminator="strategy")]


class GpuStack(Spec):
    """How GPUs are exposed to pods: the NVIDIA GPU Operator or the device plugin alone."""

    mode: Literal["operator", "device-plugin"] = Field(
        "operator", description="operator (driver, toolkit, MIG manager, DCGM) or the device plugin alone."
    )
    install_driver: bool = Field(
        False, description="Let the operator install the NVIDIA driver (off where the node image ships one)."
    )
    install_toolkit: bool | None = Field(
        None, description="Let the operator install the NVIDIA container toolkit; defaults off on EKS, whose "
                          "AL2023 NVIDIA AMIs ship one, and on elsewhere.")
    sharing: Sharing = Field(default_factory=lambda: NoSharing(strategy="none"), description="GPU sharing.")
    dcgm_exporter: bool = Field(True, description="Export GPU metrics with DCGM for Prometheus.")
    simulate: bool | None = Field(
        None, description="Simulate GPUs with fake-gpu-operator (kind and existing clusters); defaults on for kind."
    )
    tolerations: list[Toleration] | None = Field(
        None, description="Tolerations for GPU stack pods; default tolerates every GPU pool taint."
    )
    values: Values = Field(default_factory=dict, description=(
        "Helm values merged last over Shipway's, into the GPU Operator, the device plugin or fake-gpu-operator "
        "release (whichever this stack installs); the standalone DCGM exporter takes Shipway's values only."))


# --- registry ---------------------------------------------------------------------------


class NodeCache(Spec):
    """The per-node model cache: a CSI driver whose node plugin owns a host folder and mounts models into pods."""

    enabled: bool = Field(True, description=(
        "Run the node cache: a model pod whose artifact (by digest, on the platform's registry) is already on its "
        "node mounts it read-only without a download, and pods on one node download it once. Off: every pod "
        "pulls its artifact from the registry."))
    max_size: CacheSize = Field("40%", description=(
        "What the cache may hold on each node: a share of the filesystem its folder is on (\"40%\", at most "
        "50%), or bytes (\"200Gi\"). Beyond it the least recently used models no pod mounts are evicted. The "
        "cache is a host folder, so evicting pods frees none of it: leave the disk room for images and pods, "
        "whose use past the kubelet's eviction threshold (about 85-90%) stops the node taking pods."))
    path: str = Field("/var/lib/shipway/model-cache", pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$", description=(
        "The host folder on each node; only the node cache's own plugin pods mount it."))
    kubelet_dir: str = Field("/var/lib/kubelet", pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$", description=(
        "The kubelet's root folder on the nodes (its --root-dir), where it keeps pods' volumes and CSI "
        "plugins' sockets: /var/lib/kubelet on kind, EKS and GKE; e.g. /var/lib/k0s/kubelet on k0s, "
        "/var/snap/microk8s/common/var/lib/kubelet on MicroK8s."))


class _RegistryBase(Spec):
    node_cache: NodeCache = Field(default_factory=NodeCache, description="The per-node model cache.")


class ZotRegistry(_RegistryBase):
    """The in-cluster zot registry for images and model artifacts."""

    type: Literal["zot"] = Field(description="Registry variant.")
    storage_size: Quantity = Field("200Gi", description="Persistent volume size; model artifacts run to gigabytes.")
    storage_class: str | None = Field(None, description="StorageClass; the cluster default when absent.")
    max_blob_size: Quantity = Field("32Gi", description=(
        "Largest single blob (model file) CI pushes through the gateway; its upload timeouts are sized "
        "to carry it at 8 MiB/s."))
    dedupe: bool = Field(True, description="Store identical blobs once across repositories.")
    values: Values = Field(default_factory=dict, description="Helm values merged last over Shipway's.")


class ExternalRegistry(_RegistryBase):
    """A registry outside the cluster (ECR, Artifact Registry, Harbor)."""

    type: Literal["external"] = Field(description="Registry variant.")
    url: str = Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._/-]+)?$", description="Registry host[/path].")
    username: str = Field("", description="Pull user; the password is the Pulumi secret shipway:registryPassword.")


Registry = Annotated[ZotRegistry | ExternalRegistry, Field(discriminator="type")]


# --- gateway ----------------------------------------------------------------------------

HOST_PLACEHOLDERS = ("model", "team", "env", "domain")
# A Gateway takes at most 64 listeners (Gateway API v1 Gateway.spec.listeners maxItems).
MAX_LISTENERS = 64


class SelfSignedIssuer(Spec):
    """A private CA made by cert-manager in the cluster: for kind and test platforms."""

    type: Literal["self-signed"] = Field(description="Issuer variant.")


class AcmeIssuer(Spec):
    """An ACME CA (Let's Encrypt by default), solving DNS-01 or HTTP-01 challenges."""

    type: Literal["acme"] = Field(description="Issuer variant.")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Account e-mail the CA writes to.")
    server: str = Field("https://acme-v02.api.letsencrypt.org/directory", pattern=r"^https://[^\s]+$",
                        description="ACME directory URL (Let's Encrypt staging for trials).")
    solver: Literal["dns01", "http01"] = Field(
        "dns01", description="dns01 proves control through DNS records and can issue the wildcard certificates "
                             "a {model} host needs; http01 answers on port 80 through the Gateway, one name each.")
    dns01: Values = Field(default_factory=dict, description=(
        "cert-manager's DNS-01 provider block for dns01, e.g. {route53: {region: eu-west-1}} or "
        "{cloudDNS: {project: my-project}}."))


Issuer = Annotated[SelfSignedIssuer | AcmeIssuer, Field(discriminator="type")]


class ExternalDns(Spec):
    """external-dns publishing the Gateway's route hostnames in a DNS zone."""

    provider: str = Field(min_length=1, description="external-dns provider, e.g. aws or google.")
    values: Values = Field(default_factory=dict, description="Helm values merged last over Shipway's.")


class Gateway(Spec):
    """One shared Gateway (Envoy Gateway, TLS from cert-manager) through which models and the registry are reached."""

    enabled: bool = Field(True, description="Install the Gateway API CRDs, Envoy Gateway, cert-manager and the "
                                            "shared Gateway; models then get an HTTPRoute per environment.")
    domain: str | None = Field(
        None, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="DNS domain of every route; defaults to <metadata.name>.localhost on kind and "
                    "<metadata.name>.internal elsewhere. An ACME issuer needs one set.")
    host: str = Field("{model}.{team}.{env}.{domain}", description=(
        "Host of each model's route. Placeholders: {model}, {team}, {env}, {domain}; {team} and {env} must "
        "appear, and {model} here or in `path`. A {model} host is a wildcard per team and environment."))
    path: str = Field("/", pattern=r"^/[^\s]*$", description=(
        "Path prefix of each model's route, e.g. /{model}; the prefix is stripped before the model sees it."))
    registry_host: str = Field("registry.{domain}", description="Host CI pushes to the in-cluster zot through.")
    issuer: Issuer = Field(default_factory=lambda: SelfSignedIssuer(type="self-signed"),
                           description="Where the listeners' certificates come from.")
    external_dns: ExternalDns | None = Field(None, description="Publish route hostnames with external-dns.")
    hosted_zone_ids: list[Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,32}$")]] = Field(
        default_factory=list, description=(
            "Route53 hosted zone ids (e.g. Z0123456789ABCDEFGHIJ) that hold `domain`. On EKS, cert-manager's "
            "DNS-01 and external-dns on AWS get IAM roles (EKS Pod Identity) that change records only in these."))
    values: Values = Field(default_factory=dict, description="Helm values merged last over Shipway's, "
                                                             "into the Envoy Gateway release.")


# --- GitOps -----------------------------------------------------------------------------


class SyncPolicy(Spec):
    """How Argo CD applies the GitOps repo."""

    automated: bool = Field(True, description="Sync on every change to the repo.")
    self_heal: bool = Field(True, description="Revert drift made in the cluster.")
    prune: bool = Field(True, description="Delete objects removed from the repo.")


class GitOps(Spec):
    """Argo CD and the repo it syncs models from."""

    enabled: bool = Field(True, description="Install Argo CD and the model ApplicationSet.")
    repo_url: str | None = Field(
        None, pattern=r"^(https://|ssh://|git@|http://)[^\s]+$", description="GitOps repo URL (https or ssh)."
    )
    revision: str = Field("main", min_length=1, description="Branch, tag or commit to sync.")
    path: str = Field("apps", pattern=r"^[a-zA-Z0-9._-]+(/[a-zA-Z0-9._-]+)*$", description="Root folder of apps/<env>/<team>/<model>.")
    credentials_secret: str | None = Field(
        "gitopsRepoToken",
        description="Pulumi config key holding the repo token as a secret (pulumi config set --secret ...).",
    )
    sync_policy: SyncPolicy = Field(default_factory=SyncPolicy, description="Argo CD sync policy.")
    high_availability: bool | None = Field(None, description="Run Argo CD HA; defaults on for cloud clusters.")
    values: Values = Field(default_factory=dict, description="Helm values merged last over Shipway's.")


# --- observability ----------------------------------------------------------------------


class Receiver(Spec):
    """An Alertmanager receiver; its URL is a Pulumi secret."""

    name: DnsLabel = Field(description="Receiver name.")
    type: Literal["slack", "pagerduty", "webhook"] = Field(description="Receiver kind.")
    secret: str = Field(description="Pulumi config key holding the webhook URL or routing key as a secret.")
    channel: str = Field("", description="Slack channel, for slack receivers.")


class ModelSlo(Spec):
    """Default model SLOs; a model may override them in its model.yaml."""

    latency_p99_ms: float = Field(500, gt=0, le=600_000, description="p99 request latency ceiling, milliseconds.")
    error_rate: float = Field(0.01, gt=0, lt=1, description="Ceiling on the fraction of failed requests.")
    drift_psi: float = Field(0.2, gt=0, le=10, description="Ceiling on any feature's population stability index.")
    accuracy_floor: float = Field(0.8, gt=0, le=1, description="Floor on rolling online accuracy.")


class Retraining(Spec):
    """The service Alertmanager sends drift and accuracy alerts to; it starts the model repo's retraining."""

    enabled: bool = Field(True, description="Run the retraining trigger service and route the alerts to it.")
    github_token_secret: str | None = Field(
        None, description="Pulumi config key holding, as a secret, a GitHub token allowed to send repository_dispatch.")
    gitlab_token_secret: str | None = Field(
        None, description="Pulumi config key holding, as a secret, a GitLab pipeline trigger token.")
    github_api_url: str = Field("https://api.github.com", pattern=r"^https?://",
                                description="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).")
    gitlab_url: str = Field("https://gitlab.com", pattern=r"^https?://", description="GitLab base URL.")
    attempts: int = Field(4, ge=1, le=10, description="Tries per trigger, with exponential backoff, before alerting.")

    @model_validator(mode="after")
    def _credentials(self) -> Retraining:
        if self.enabled and not (self.github_token_secret or self.gitlab_token_secret):
            raise Located(("githubTokenSecret",), "retraining is enabled with no trigger credentials",
                          "name the Pulumi secret config key of a GitHub token (githubTokenSecret) or a GitLab "
                          "trigger token (gitlabTokenSecret)")
        return self


class Observability(Spec):
    """Prometheus, Alertmanager and Grafana, and the model SLOs they enforce."""

    enabled: bool = Field(True, description="Install kube-prometheus-stack and the model rules.")
    retention: Duration = Field("15d", description="Prometheus retention time.")
    storage_size: Quantity = Field("50Gi", description="Prometheus volume size.")
    grafana: bool = Field(True, description="Install Grafana with the GPU fleet and model delivery dashboards.")
    receivers: list[Receiver] = Field(default_factory=list, description="Alertmanager receivers.")
    slo: ModelSlo = Field(default_factory=ModelSlo, description="Default model SLOs.")
    retraining: Retraining | None = Field(
        None, description="Start retraining pipelines from drift and accuracy alerts; off when absent.")
    values: Values = Field(default_factory=dict, description="Helm values merged last over Shipway's.")


# --- serving ----------------------------------------------------------------------------


class Runtime(Spec):
    """A model server image models may name as their runtime."""

    image: str = Field(min_length=1, description="Container image with tag.")
    model_format: str = Field(min_length=1, description="Model format served (sklearn, xgboost, onnx, pytorch, llm).")
    protocol: Literal["v2", "openai"] = Field("v2", description="Inference protocol spoken on the serving port.")
    port: int = Field(8080, ge=1, le=65535, description="Serving port inside the container.")
    gpu: bool = Field(False, description="Whether the runtime needs a GPU.")


DEFAULT_RUNTIMES: dict[str, Runtime] = {
    "sklearn": Runtime(image="docker.io/seldonio/mlserver:1.7.1-sklearn", model_format="sklearn"),
    "xgboost": Runtime(image="docker.io/seldonio/mlserver:1.7.1-xgboost", model_format="xgboost"),
    "triton": Runtime(image="nvcr.io/nvidia/tritonserver:25.10-py3", model_format="pytorch", port=8000, gpu=True),
    "vllm": Runtime(image="docker.io/vllm/vllm-openai:v0.11.0", model_format="llm", protocol="openai",
                    port=8000, gpu=True),
}


class CanaryStep(Spec):
    """One canary step: shift traffic, then wait while analysis runs."""

    weight: int = Field(ge=1, le=100, description="Percent of traffic on the canary.")
    pause: Duration = Field("2m", description="How long to hold this weight.")


class Serving(Spec):
    """The serving runtime: Argo Rollouts, the runtime catalog, optional KServe."""

    runtimes: dict[DnsLabel, Runtime] = Field(
        default_factory=dict, description="Extra or overriding runtimes, merged over sklearn, xgboost, triton, vllm."
    )
    rollouts: bool = Field(True, description="Install Argo Rollouts and the circuit-breaker analysis templates.")
    kserve: bool = Field(False, description="Install KServe (with cert-manager) and ClusterServingRuntimes.")
    default_strategy: Literal["canary", "blue-green", "none"] = Field(
        "canary", description="Rollout strategy for models that do not name one."
    )
    canary_steps: list[CanaryStep] = Field(
        default_factory=lambda: [CanaryStep(weight=10, pause="2m"), CanaryStep(weight=50, pause="5m")],
        min_length=1,
        description="Default canary steps.",
    )

    @property
    def runtime_catalog(self) -> dict[str, Runtime]:
        """Built-in runtimes with the blueprint's merged over them."""
        return {**DEFAULT_RUNTIMES, **self.runtimes}


# --- tenancy ----------------------------------------------------------------------------


class Quota(Spec):
    """A team's resource quota in each of its namespaces."""

    gpus: int = Field(
        0, ge=0, le=100_000,
        description="GPU devices per namespace: caps requests.nvidia.com/gpu and, on the team's MIG pools under "
                    "the mixed strategy, each requests.nvidia.com/mig-<slice> on its own, counted in slices "
                    "(under renamed time-slicing also requests.nvidia.com/gpu.shared).",
    )
    cpu: Quantity = Field("16", description="requests.cpu and limits.cpu.")
    memory: Quantity = Field("64Gi", description="requests.memory and limits.memory.")


# A CODEOWNERS owner: @user, @org/team, or an e-mail address.
CodeOwner = Annotated[str, Field(pattern=r"^(@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:/[A-Za-z0-9._-]+)?|[^@\s]+@[^@\s]+)$")]


class RetrainRepositories(Spec):
    """The repositories the platform's retraining trigger may start for one team, with the platform's token.

    The model's `<model>-retrain` ConfigMap names the repository, and the team writes that ConfigMap; a repository
    not listed here is refused, so a team cannot spend the platform's token on another team's repositories.
    """

    github: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/(?:[A-Za-z0-9_.-]+|\*)$")]] = Field(
        default_factory=list,
        description="GitHub repositories as owner/name, or owner/* for every repository of that owner or "
                    "organization (compared without case, as GitHub does).")
    gitlab: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/(?:[A-Za-z0-9_.-]+|\*)$")]] = (
        Field(default_factory=list,
              description="GitLab project paths (group/name, subgroups allowed), or group/* for every project in "
                          "that group and its subgroups (compared without case)."))


class Team(Spec):
    """A model team: a namespace per environment, quotas, and who may deploy."""

    name: DnsLabel = Field(description="Team name; namespaces are <team>-<environment>.")
    environments: list[DnsLabel] | None = Field(None, description="Environments the team uses; defaults to all.")
    quota: Quota = Field(default_factory=Quota, description="Quota per namespace.")
    gpu_pools: list[DnsLabel] | None = Field(None, description="GPU pools the team may use; defaults to all.")
    groups: list[str] = Field(default_factory=list, description="Identity-provider groups bound to the team's role.")
    code_owners: list[CodeOwner] = Field(
        default_factory=list,
        description="GitHub users or teams (@user, @org/team) whose approval a change to this team's GitOps "
                    "folders needs: `shipway init-gitops` writes them to CODEOWNERS. Turn on 'Require review "
                    "from Code Owners' for the deployed branch.")
    run_jobs: bool = Field(
        False,
        description="Let the team's groups create and delete Jobs in its namespaces. A Job's pod can mount any "
                    "Secret of its namespace, the registry pull secret included, so this is off unless granted.")

    retrain_repositories: RetrainRepositories = Field(
        default_factory=RetrainRepositories,
        description="Repositories whose retraining the platform's trigger may start for this team's models "
                    "(observability.retraining); none when empty, so every model.yaml `retrain:` of the team is "
                    "refused until its repository is listed.")

    def namespace(self, environment: str) -> str:
        """The team's namespace in an environment."""
        return f"{self.name}-{environment}"


# --- platform-wide settings ---------------------------------------------------------------

# A container image reference: [host[:port]/]path[:tag][@sha256:<64 hex>], with a tag or a digest.
IMAGE_REFERENCE = (r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                   r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                   r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")


class Images(Spec):
    """Images the platform runs that a site may need to take from elsewhere (a mirror, an air gap)."""

    shipway: str | None = Field(
        None, pattern=IMAGE_REFERENCE,
        description="The Shipway image model pods (artifact pull, sidecar) and platform services run; defaults to "
                    "the release this Shipway was built for, pinned by digest in released packages. Name a mirror's "
                    "copy here, e.g. registry.internal/shipway:0.2.0@sha256:<digest>.",
    )


class PlatformSettings(Spec):
    """Settings of the platform as a whole."""

    images: Images = Field(default_factory=Images, description="Where the platform's own images come from.")


# --- the blueprint ----------------------------------------------------------------------


# redis-ha's Redis servers (and HAProxy pods) for Argo CD HA, one per node.
REDIS_HA_NODES = 3


class Blueprint(Spec):
    """A whole AI delivery platform."""

    api_version: Literal["shipway.dev/v1alpha1"] = Field(API_VERSION, description="Schema version.")
    kind: Literal["Blueprint"] = Field("Blueprint", description="Document kind.")
    metadata: Metadata = Field(description="Name and environments.")
    cluster: Cluster = Field(description="Where the platform runs.")
    node_pools: list[NodePool] = Field(default_factory=list, description="Node pools, GPU pools included.")
    gpu_stack: GpuStack = Field(default_factory=GpuStack, description="How GPUs reach pods.")
    registry: Registry = Field(default_factory=lambda: ZotRegistry(type="zot"), description="OCI registry.")
    gateway: Gateway = Field(default_factory=Gateway, description="The shared Gateway models are reached through.")
    gitops: GitOps = Field(default_factory=GitOps, description="Argo CD and the GitOps repo.")
    observability: Observability = Field(default_factory=Observability, description="Metrics, alerts, dashboards.")
    serving: Serving = Field(default_factory=Serving, description="Serving runtime and rollouts.")
    teams: list[Team] = Field(default_factory=list, description="Model teams.")
    platform: PlatformSettings = Field(default_factory=PlatformSettings, description="Platform-wide settings.")

    @property
    def is_cloud(self) -> bool:
        """Whether the cluster is built in a cloud (EKS, GKE)."""
        return self.cluster.kind in ("eks", "gke")

    @property
    def gpu_pools(self) -> list[NodePool]:
        """The pools whose nodes have GPUs."""
        return [pool for pool in self.node_pools if pool.is_gpu]

    @property
    def simulate_gpus(self) -> bool:
        """Whether GPUs are simulated by fake-gpu-operator."""
        if self.gpu_stack.simulate is not None:
            return self.gpu_stack.simulate
        return self.cluster.kind == "kind"

    @property
    def gitops_high_availability(self) -> bool:
        """Whether Argo CD runs highly available."""
        if self.gitops.high_availability is not None:
            return self.gitops.high_availability
        return self.is_cloud

    @property
    def gpu_tolerations(self) -> list[Toleration]:
        """Tolerations for pods that must reach every GPU pool."""
        if self.gpu_stack.tolerations is not None:
            return self.gpu_stack.tolerations
        seen: dict[tuple[str, str, str], Toleration] = {}
        for pool in self.gpu_pools:
            for taint in pool.effective_taints:
                seen.setdefault((taint.key, taint.value, taint.effect),
                                Toleration(key=taint.key, operator="Exists", effect=taint.effect))
        return list(seen.values())

    @property
    def installs_toolkit(self) -> bool:
        """Whether the GPU Operator installs the container toolkit (EKS's NVIDIA AMIs ship their own)."""
        if self.gpu_stack.install_toolkit is not None:
            return self.gpu_stack.install_toolkit
        return self.cluster.kind != "eks"

    @property
    def route53_users(self) -> list[str]:
        """Which of cert-manager (DNS-01 through Route53) and external-dns (provider aws) change Route53 records."""
        gateway = self.gateway
        if not gateway.enabled:
            return []
        users = []
        if isinstance(gateway.issuer, AcmeIssuer) and gateway.issuer.solver == "dns01" and "route53" in gateway.issuer.dns01:
            users.append("cert-manager")
        if gateway.external_dns is not None and gateway.external_dns.provider == "aws":
            users.append("external-dns")
        return users

    @property
    def uses_karpenter(self) -> bool:
        """Whether Karpenter provisions the non-system pools (EKS with autoscaling: karpenter)."""
        return isinstance(self.cluster, EksCluster) and self.cluster.autoscaling == "karpenter"

    def karpenter_pools(self) -> list[NodePool]:
        """The pools Karpenter provisions: on EKS with Karpenter, every pool but the system ones."""
        if not self.uses_karpenter:
            return []
        return [pool for pool in self.node_pools if pool.effective_role != "system"]

    def node_group_pools(self) -> list[NodePool]:
        """The pools built as EKS managed node groups."""
        karpenter = {pool.name for pool in self.karpenter_pools()}
        return [pool for pool in self.node_pools if pool.name not in karpenter]

    def mig_pools(self) -> list[NodePool]:
        """The GPU pools MIG partitions."""
        sharing = self.gpu_stack.sharing
        if not isinstance(sharing, MigSharing):
            return []
        if sharing.pools is not None:
            return [pool for pool in self.gpu_pools if pool.name in sharing.pools]
        return [pool for pool in self.gpu_pools if pool.gpu and GPU_MODELS[pool.gpu.model].mig_capable]

    def schedulable_gpus(self, pool: NodePool) -> int:
        """GPU devices (or shares, or slices) the pool offers at its maximum size."""
        if pool.gpu is None:
            return 0
        per_node = pool.gpu.count
        sharing = self.gpu_stack.sharing
        if isinstance(sharing, TimeSlicing):
            per_node *= sharing.replicas
        elif isinstance(sharing, MigSharing) and pool in self.mig_pools():
            per_node *= mig_slices(sharing.profile)
        return per_node * pool.max_size

    def team_environments(self, team: Team) -> list[str]:
        """The environments a team has namespaces in."""
        return team.environments if team.environments is not None else list(self.metadata.environments)

    def team_gpu_pools(self, team: Team) -> list[NodePool]:
        """The GPU pools a team may schedule onto."""
        if team.gpu_pools is None:
            return self.gpu_pools
        return [pool for pool in self.gpu_pools if pool.name in team.gpu_pools]

    @cached_property
    def namespaces(self) -> dict[str, dict[str, str]]:
        """Team namespaces by team, then environment."""
        return {team.name: {env: team.namespace(env) for env in self.team_environments(team)} for team in self.teams}

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Blueprint:
        problems: list[Located] = []
        problems += _unique_names(self.node_pools, "nodePools", "pool")
        problems += _unique_names(self.teams, "teams", "team")
        problems += self._cluster_rules()
        problems += self._access_rules()
        problems += self._gpu_rules()
        problems += self._tenancy_rules()
        problems += self._gateway_rules()
        if self.gitops.enabled and not self.gitops.repo_url:
            problems.append(Located(("gitops", "repoUrl"), "gitops is enabled but has no repoUrl",
                                    "set gitops.repoUrl to the GitOps repo, or gitops.enabled: false"))
        problems += self._gitops_ha_rules()
        problems += self._node_cache_rules()
        raise_all(problems)
        return self

    def _node_cache_rules(self) -> list[Located]:
        # The cache is a host folder on every node that runs models: pods evicted for disk pressure free none of
        # it. A share ("40%") fits each node's own disk; bytes must fit the smallest disk Shipway sizes.
        cache = self.registry.node_cache
        if not (cache.enabled and self.is_cloud) or disk_share(cache.max_size) is not None:
            return []
        model_pools = [(index, pool) for index, pool in enumerate(self.node_pools) if pool.effective_role != "system"]
        if not model_pools:
            return []
        index, smallest = min(model_pools, key=lambda item: item[1].disk_size_gib)
        cap = smallest.disk_size_gib * 2**30 * MAX_CACHE_SHARE // 100
        size = int(quantity_value(cache.max_size))
        if size <= cap:
            return []
        return [Located(("registry", "nodeCache", "maxSize"),
                        f'the node cache may hold {cache.max_size} on each node, more than {MAX_CACHE_SHARE}% of pool '
                        f'"{smallest.name}"\'s {smallest.disk_size_gib} GiB disk, which also holds images and pods',
                        f"give a share of each node's disk (maxSize: 40%), at most {cap // 2**30}Gi, or raise "
                        f"nodePools[{index}].diskSizeGiB to at least {-(-size * 100 // (MAX_CACHE_SHARE * 2**30))}")]

    def _gitops_ha_rules(self) -> list[Located]:
        # Argo CD HA runs redis-ha: 3 Redis servers and 3 HAProxy pods, each with required anti-affinity
        # (argo-cd 10.1.1 charts/redis-ha values.yaml hardAntiAffinity: true), on nodes without taints.
        if not (self.gitops.enabled and self.gitops_high_availability) or self.cluster.kind not in ("eks", "gke"):
            return []
        untainted = [(index, pool) for index, pool in enumerate(self.node_pools) if not pool.effective_taints]
        floor = sum(pool.min_size for _, pool in untainted)
        if floor >= REDIS_HA_NODES:
            return []
        where = ("nodePools", untainted[0][0], "minSize") if untainted else ("nodePools",)
        return [Located(where, f"Argo CD runs highly available, whose redis-ha needs {REDIS_HA_NODES} nodes without "
                               f"taints, and the pools without taints start with {floor}",
                        f"raise the system pool's minSize to {REDIS_HA_NODES}, or set gitops.highAvailability: false")]

    def _cluster_rules(self) -> list[Located]:
        problems = []
        if self.is_cloud:
            for index, pool in enumerate(self.node_pools):
                if not pool.instance_type:
                    problems.append(Located(
                        ("nodePools", index, "instanceType"),
                        f'pool "{pool.name}" has no instanceType, which a {self.cluster.kind} cluster needs',
                        "set instanceType, e.g. g5.2xlarge on EKS or g2-standard-8 on GKE"))
            if not any(not pool.is_gpu for pool in self.node_pools):
                problems.append(Located(
                    ("nodePools",), f"a {self.cluster.kind} cluster needs a pool without GPUs for platform components",
                    "add a pool with role: system"))
        problems += self._zone_rules()
        if self.gpu_stack.simulate and self.is_cloud:
            problems.append(Located(
                ("gpuStack", "simulate"), f"simulate is for kind and existing clusters, not {self.cluster.kind}",
                "remove gpuStack.simulate"))
        return problems

    def _access_rules(self) -> list[Located]:
        problems = []
        cluster = self.cluster
        teams = {team.name: team for team in self.teams}
        if isinstance(cluster, EksCluster):
            if len(self.metadata.name) > EKS_NAME_MAX:
                # IAM role names stop at 64 characters; Karpenter's node role is named after the cluster.
                problems.append(Located(
                    ("metadata", "name"), f'"{self.metadata.name}" is {len(self.metadata.name)} characters; on EKS '
                    f"the name prefixes IAM role names, which stop at 64", f"use at most {EKS_NAME_MAX} characters"))
            network = cluster.network
            if network.public_access_cidrs is not None and not network.public_endpoint:
                problems.append(Located(
                    ("cluster", "network", "publicAccessCidrs"),
                    "publicAccessCidrs is set but publicEndpoint is false, which EKS and pulumi-eks refuse",
                    "remove publicAccessCidrs, or set publicEndpoint: true"))
            for name, principals in cluster.access.teams.items():
                team = teams.get(name)
                if team is None:
                    problems.append(Located(("cluster", "access", "teams", name), f'no team named "{name}"',
                                            f"use one of: {', '.join(teams) or '(no teams)'}"))
                elif principals and not team.groups:
                    problems.append(Located(
                        ("cluster", "access", "teams", name),
                        f'team "{name}" has principals but no groups, so nothing binds them to the team\'s role',
                        f"add groups to team {name}, e.g. groups: [{name}-engineers]"))
        for index, pool in enumerate(self.node_pools):
            if pool.capacity_reservations and not self.uses_karpenter:
                problems.append(Located(
                    ("nodePools", index, "capacityReservations"),
                    "capacityReservations are for EKS pools that Karpenter provisions",
                    "remove capacityReservations, or use an EKS cluster with autoscaling: karpenter"))
        if isinstance(cluster, EksCluster):
            for index, pool in enumerate(self.node_group_pools()):
                if pool.max_size < 1:
                    problems.append(Located(
                        ("nodePools", self.node_pools.index(pool), "maxSize"),
                        f'pool "{pool.name}" is an EKS managed node group, whose maxSize must be at least 1',
                        "set maxSize: 1 or more, or remove the pool"))
        if isinstance(cluster, GkeCluster):
            if len(self.metadata.name) > GKE_NAME_MAX:
                # Cloud Router and Cloud NAT names are RFC 1035 labels of at most 63 characters.
                problems.append(Located(
                    ("metadata", "name"), f'"{self.metadata.name}" is {len(self.metadata.name)} characters; on GKE '
                    "it names the Cloud NAT (<name>-nat), which stops at 63", f"use at most {GKE_NAME_MAX} characters"))
            for index, team in enumerate(self.teams):
                for group_index, group in enumerate(team.groups):
                    if "@" not in group:
                        problems.append(Located(
                            ("teams", index, "groups", group_index),
                            f'"{group}" is not a Google group email, which GKE\'s Google Groups for RBAC matches',
                            f"write the group's email, e.g. {group}@example.com"))
                if team.groups and cluster.access.security_group is None:
                    problems.append(Located(
                        ("cluster", "access", "securityGroup"),
                        f'team "{team.name}" binds groups, but GKE passes none to RBAC without Google Groups '
                        "for RBAC", "set cluster.access.securityGroup: gke-security-groups@<your domain>"))
                    break
            if cluster.access.admins and cluster.access.security_group is None:
                problems.append(Located(("cluster", "access", "securityGroup"),
                                        "access.admins are Google groups, which GKE passes to RBAC only with "
                                        "Google Groups for RBAC",
                                        "set cluster.access.securityGroup: gke-security-groups@<your domain>"))
        return problems

    def _zone_rules(self) -> list[Located]:
        problems = []
        cluster = self.cluster
        for index, pool in enumerate(self.node_pools):
            if pool.zones is None:
                continue
            if not isinstance(cluster, GkeCluster):
                problems.append(Located(("nodePools", index, "zones"),
                                        f"zones are for GKE pools; this is a {cluster.kind} cluster",
                                        "remove zones (EKS spreads node groups over the VPC's zones)"))
                continue
            for zone_index, zone in enumerate(pool.zones):
                if zone not in cluster.zones:
                    problems.append(Located(
                        ("nodePools", index, "zones", zone_index),
                        f'zone "{zone}" is not one of the cluster\'s zones', f"use one of: {', '.join(cluster.zones)}"))
        if isinstance(cluster, GkeCluster):
            for index, pool in enumerate(self.node_pools):
                zones = len(self.pool_zones(pool))
                starting = -(-pool.effective_desired_size // zones) * zones
                if starting > pool.max_size:
                    problems.append(Located(
                        ("nodePools", index, "maxSize"),
                        f'pool "{pool.name}" would start with {starting} nodes (GKE starts the same count in each '
                        f"of its {zones} zones), above maxSize {pool.max_size}",
                        "give the pool fewer zones (nodePools[].zones) or raise maxSize"))
            for zone_index, zone in enumerate(cluster.zones):
                if not zone.startswith(f"{cluster.region}-"):
                    problems.append(Located(("cluster", "zones", zone_index),
                                            f'zone "{zone}" is not in region {cluster.region}',
                                            f"use zones like {cluster.region}-a"))
        return problems

    @property
    def gateway_domain(self) -> str:
        """The domain routes live under: the blueprint's, else <name>.localhost on kind and <name>.internal
        elsewhere (both reserved for private use, so resolved by /etc/hosts or private DNS)."""
        if self.gateway.domain is not None:
            return self.gateway.domain
        return f"{self.metadata.name}.{'localhost' if self.cluster.kind == 'kind' else 'internal'}"

    def route_host(self, team: str, env: str, model: str = "{model}") -> str:
        """The host of a model's route; left as {model} it is the listener's, with {model} as *."""
        return self.gateway.host.format(model=model, team=team, env=env, domain=self.gateway_domain)

    def route_path(self, model: str = "{model}") -> str:
        """The path prefix of a model's route."""
        return self.gateway.path.format(model=model)

    @property
    def registry_host(self) -> str:
        """The host CI pushes to zot through."""
        return self.gateway.registry_host.format(domain=self.gateway_domain)

    def _gateway_rules(self) -> list[Located]:
        gateway = self.gateway
        if not gateway.enabled:
            return []
        problems: list[Located] = []
        if isinstance(gateway.issuer, AcmeIssuer) and gateway.domain is None:
            problems.append(Located(("gateway", "domain"), f'an ACME issuer cannot certify the default domain '
                                    f'"{self.gateway_domain}", which is not in public DNS',
                                    "set gateway.domain to a domain you control"))
        for field, template, allowed in (("host", gateway.host, HOST_PLACEHOLDERS),
                                         ("path", gateway.path, ("model",)),
                                         ("registryHost", gateway.registry_host, ("domain",))):
            unknown = sorted(set(re.findall(r"{([^{}]*)}", template)) - set(allowed))
            if unknown:
                problems.append(Located(("gateway", field), f'"{template}" names {", ".join(unknown)}',
                                        f"use only {', '.join('{' + name + '}' for name in allowed)}"))
        if problems:
            return problems
        for placeholder in ("{team}", "{env}"):
            if placeholder not in gateway.host:
                problems.append(Located(("gateway", "host"), f'"{gateway.host}" has no {placeholder}, so teams or '
                                        "environments would share one listener and see each other's routes",
                                        'write it like "{model}.{team}.{env}.{domain}"'))
        in_host, in_path = gateway.host.count("{model}"), gateway.path.count("{model}")
        if in_host + in_path != 1:
            problems.append(Located(("gateway", "host"), f'{{model}} appears {in_host + in_path} times in host '
                                    f'"{gateway.host}" and path "{gateway.path}"', "name {model} exactly once"))
        elif in_host and not gateway.host.startswith("{model}."):
            problems.append(Located(("gateway", "host"), f'"{gateway.host}" has {{model}} inside a name, which a '
                                    "listener's wildcard cannot match", 'start the host with "{model}."'))
        elif in_host and isinstance(gateway.issuer, AcmeIssuer) and gateway.issuer.solver == "http01":
            problems.append(Located(("gateway", "issuer", "solver"), "a {model} host needs wildcard certificates, "
                                    "which ACME issues only through DNS-01",
                                    'use solver: dns01, or put {model} in the path, e.g. path: "/{model}"'))
        if isinstance(self.cluster, EksCluster) and self.route53_users and not gateway.hosted_zone_ids:
            problems.append(Located(
                ("gateway", "hostedZoneIds"),
                f"{' and '.join(self.route53_users)} change Route53 records, but Shipway cannot give them an IAM "
                "role without knowing which hosted zone holds the domain",
                f"set gateway.hostedZoneIds to the zone of {gateway.domain or 'gateway.domain'}, e.g. "
                "[Z0123456789ABCDEFGHIJ] (aws route53 list-hosted-zones-by-name)"))
        if isinstance(gateway.issuer, AcmeIssuer) and gateway.issuer.solver == "dns01" and not gateway.issuer.dns01:
            problems.append(Located(("gateway", "issuer", "dns01"), "solver dns01 has no DNS provider",
                                    "set dns01, e.g. {route53: {region: eu-west-1}} or {cloudDNS: {project: p}}"))
        hosts = [self.registry_host] + [self.route_host(team.name, env, "x") for team in self.teams
                                        for env in self.team_environments(team)]
        for host in hosts:
            labels = host.split(".")
            if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
                problems.append(Located(("gateway", "host"), f'"{host}" is not a valid DNS name',
                                        "use lowercase letters, digits, '-' and '.', at most 253 characters"))
        listeners = 2 + sum(len(self.team_environments(team)) for team in self.teams)
        if listeners > MAX_LISTENERS:
            problems.append(Located(("teams",), f"the shared Gateway would need {listeners} listeners (one per team "
                                    f"and environment, plus HTTP and the registry); a Gateway takes {MAX_LISTENERS}",
                                    "use fewer teams or environments"))
        return problems

    def pool_zones(self, pool: NodePool) -> list[str]:
        """The GKE zones a pool's nodes run in."""
        if pool.zones is not None:
            return pool.zones
        return self.cluster.zones if isinstance(self.cluster, GkeCluster) else []

    def _gpu_rules(self) -> list[Located]:
        problems = []
        sharing = self.gpu_stack.sharing
        if isinstance(sharing, MigSharing):
            if self.gpu_stack.mode != "operator":
                problems.append(Located(
                    ("gpuStack", "mode"), f'MIG sharing needs the GPU Operator, got mode "{self.gpu_stack.mode}"',
                    "set gpuStack.mode: operator, or choose sharing strategy none or time-slicing"))
            pool_names = {pool.name: pool for pool in self.gpu_pools}
            for index, name in enumerate(sharing.pools or []):
                pool = pool_names.get(name)
                if pool is None:
                    problems.append(Located(
                        ("gpuStack", "sharing", "pools", index), f'no GPU pool named "{name}"',
                        f"use one of: {', '.join(pool_names) or '(no GPU pools)'}"))
                elif pool.gpu and not GPU_MODELS[pool.gpu.model].mig_capable:
                    problems.append(Located(
                        ("gpuStack", "sharing", "pools", index),
                        f'pool "{name}" has {pool.gpu.model} GPUs, which do not support MIG',
                        "MIG needs A100, H100 or H200 GPUs; use time-slicing for others"))
            if not self.mig_pools():
                problems.append(Located(
                    ("gpuStack", "sharing"), "MIG sharing is set but no GPU pool has MIG-capable GPUs",
                    "add an A100/H100/H200 pool, or use time-slicing"))
            if sharing.mig_strategy == "single" and sharing.profile == "all-balanced":
                problems.append(Located(
                    ("gpuStack", "sharing", "profile"),
                    'MIG profile "all-balanced" mixes slice sizes, which the single strategy cannot advertise',
                    "set migStrategy: mixed, or a uniform profile such as all-1g.10gb"))
            for pool in self.mig_pools():
                assert pool.gpu is not None
                known = GPU_MODELS[pool.gpu.model].mig_profiles
                if known and sharing.profile not in known:
                    problems.append(Located(
                        ("gpuStack", "sharing", "profile"),
                        f'MIG profile "{sharing.profile}" does not exist on {pool.gpu.model} (pool "{pool.name}")',
                        f"use one of: {', '.join(known)}"))
        if self.gpu_stack.tolerations is not None:
            for index, pool in enumerate(self.node_pools):
                if not pool.is_gpu:
                    continue
                for taint in pool.effective_taints:
                    if not any(t.tolerates(taint) for t in self.gpu_stack.tolerations):
                        problems.append(Located(
                            ("gpuStack", "tolerations"),
                            f'no toleration matches taint {taint.key}={taint.value}:{taint.effect} '
                            f'of GPU pool "{pool.name}" (nodePools[{index}]), so GPU stack pods cannot run there',
                            f"add {{key: {taint.key}, operator: Exists, effect: {taint.effect}}}, "
                            "or drop gpuStack.tolerations to derive them from the pools"))
        return problems

    def _tenancy_rules(self) -> list[Located]:
        problems = []
        known_envs = self.metadata.environments
        gpu_pool_names = [pool.name for pool in self.gpu_pools]
        for index, team in enumerate(self.teams):
            for env_index, env in enumerate(team.environments or []):
                if env not in known_envs:
                    problems.append(Located(
                        ("teams", index, "environments", env_index),
                        f'team "{team.name}" names environment "{env}", which metadata.environments does not list',
                        f"use one of: {', '.join(known_envs)}, or add it to metadata.environments"))
                if len(team.namespace(env)) > 63:
                    problems.append(Located(
                        ("teams", index, "name"),
                        f'namespace "{team.namespace(env)}" is longer than 63 characters', "shorten the team name"))
            for pool_index, name in enumerate(team.gpu_pools or []):
                if name not in gpu_pool_names:
                    problems.append(Located(
                        ("teams", index, "gpuPools", pool_index), f'no GPU pool named "{name}"',
                        f"use one of: {', '.join(gpu_pool_names) or '(no GPU pools)'}"))
            capacity = sum(self.schedulable_gpus(pool) for pool in self.team_gpu_pools(team))
            if team.quota.gpus > capacity:
                problems.append(Located(
                    ("teams", index, "quota", "gpus"),
                    f'team "{team.name}" has a GPU quota of {team.quota.gpus}, but its pools hold at most {capacity}',
                    "lower quota.gpus, or raise the GPU pools' maxSize"))
        return problems


_HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _unique_names(items: list[Any], field: str, noun: str) -> list[Located]:
    seen: set[str] = set()
    problems = []
    for index, item in enumerate(items):
        if item.name in seen:
            problems.append(Located((field, index, "name"), f'{noun} name "{item.name}" is used twice',
                                    f"give each {noun} a unique name"))
        seen.add(item.name)
    return problems

