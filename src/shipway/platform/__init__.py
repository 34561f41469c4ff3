"""The Platform component: one child component per layer, created in dependency order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from shipway.platform.cluster import Cluster, ClusterArgs
from shipway.platform.layers import (
    REGISTRY_DOCKER_CONFIG,
    Gateway,
    GitOps,
    GpuStack,
    LayerArgs,
    NodePools,
    Observability,
    Registry,
    Serving,
    Tenancy,
)
from shipway.render import registry as registry_render
from shipway.render.profile import platform_profile
from shipway.spec.blueprint import Blueprint, ExternalRegistry

# Creation order. Observability comes before the GPU stack, registry and GitOps because their
# charts create ServiceMonitors, which need the Prometheus operator's CRDs. The gateway comes after the
# registry (it routes to zot) and before serving (KServe needs its cert-manager).
LAYERS = ("cluster", "nodepools", "observability", "gpu", "registry", "gateway", "gitops", "serving", "tenancy")


@dataclass(frozen=True)
class PlatformArgs:
    """The blueprint and the secrets the stack config holds (kubeconfig, repo token, receiver URLs)."""

    blueprint: Blueprint
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Platform(pulumi.ComponentResource):
    """A whole AI delivery platform, built layer by layer from a blueprint."""

    kubeconfig: pulumi.Output[str]
    registry_url: pulumi.Output[str]
    registry_username: pulumi.Output[str]
    registry_password: pulumi.Output[str]
    registry_team_credentials: pulumi.Output[dict]
    profile: pulumi.Output[dict]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shipway:platform:Platform", name, None, opts)
        blueprint = args.blueprint
        cluster = Cluster(f"{name}-cluster", ClusterArgs(blueprint, args.secrets.get("kubeconfig")),
                          pulumi.ResourceOptions(parent=self))
        layer_args = LayerArgs(blueprint, args.secrets)

        def after(*previous: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, providers={"kubernetes": cluster.provider},
                                          depends_on=[cluster, *previous])

        pools = NodePools(f"{name}-nodepools", layer_args, after())
        observability = Observability(f"{name}-observability", layer_args, after(pools))
        gpu = GpuStack(f"{name}-gpu", layer_args, after(pools, observability))
        registry = Registry(f"{name}-registry", layer_args, after(pools, observability))
        gateway = Gateway(f"{name}-gateway", layer_args, after(pools, observability, registry))
        gitops = GitOps(f"{name}-gitops", layer_args, after(pools, observability))
        serving = Serving(f"{name}-serving", layer_args, after(gpu, observability, registry, gateway))
        # Tenancy creates the team namespaces, so the registry's pull secret is created there too.
        team_configs = {f"{REGISTRY_DOCKER_CONFIG}/{team}": config for team, config in registry.team_docker_configs.items()}
        tenancy_args = LayerArgs(blueprint, {**args.secrets, **team_configs})
        tenancy = Tenancy(f"{name}-tenancy", tenancy_args, after(gitops, serving, registry, gateway))
        self.layers = {"cluster": cluster, "nodepools": pools, "gpu": gpu, "registry": registry, "gateway": gateway,
                       "gitops": gitops,
                       "observability": observability, "serving": serving, "tenancy": tenancy}
        self.kubeconfig = cluster.kubeconfig
        self.registry_url = registry.url
        self.registry_username = pulumi.Output.from_input(
            blueprint.registry.username if isinstance(blueprint.registry, ExternalRegistry)
            else registry_render.ADMIN_USERNAME)
        self.registry_password = registry.password
        self.registry_team_credentials = registry.team_credentials
        self.profile = pulumi.Output.from_input(platform_profile(blueprint))
        self.register_outputs({"kubeconfig": self.kubeconfig, "registryUrl": self.registry_url,
                               "registryUsername": self.registry_username,
                               "registryPassword": self.registry_password,
                               "registryTeamCredentials": self.registry_team_credentials, "profile": self.profile})
