"""The platform's layers after the cluster: each a ComponentResource over its render module."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random

from shipway.platform.kube import apply_layer, upstream
from shipway.render import cluster as render_cluster
from shipway.render import gateway, gitops, gpu, nodepools, observability, registry, serving, tenancy
from shipway.render.common import Obj, config_map, namespace
from shipway.render.layer import LayerRender
from shipway.spec.blueprint import Blueprint, ExternalRegistry

SYSTEM_NAMESPACE = "shipway-system"
# The key (then /<team>) under which each team's registry pull credentials reach the Tenancy layer.
REGISTRY_DOCKER_CONFIG = "registryDockerConfig"


@dataclass(frozen=True)
class LayerArgs:
    """What a layer needs: the blueprint, and the secrets (Pulumi secret inputs) it uses."""

    blueprint: Blueprint
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class _Layer(pulumi.ComponentResource):
    """A layer: its children are what its render function returns."""

    TYPE = ""
    resources: list[pulumi.Resource]

    def __init__(self, name: str, args: LayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.resources = apply_layer(self, name, self.render(name, args), upstream(opts))
        self.register_outputs({"resources": len(self.resources)})

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        """What this layer creates."""
        raise NotImplementedError


class NodePools(_Layer):
    """Node pools and autoscaling: Karpenter or the Cluster Autoscaler on EKS, metrics-server, default storage.

    Cloud node groups are built with the cluster; on kind this patches each pool's worker.
    """

    TYPE = "shipway:nodepools:NodePools"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        blueprint = args.blueprint
        layer = nodepools.render(blueprint)
        if blueprint.cluster.kind != "kind":
            layer.objects.append(node_pool_inventory(blueprint))
            layer.namespaces.append(namespace(SYSTEM_NAMESPACE))
            # No pod runs there (it holds the inventory ConfigMap), so it needs no flow: deny everything, so
            # that whatever lands there later starts isolated and gets exactly the flows it is given.
            layer.objects.append(tenancy.default_deny(SYSTEM_NAMESPACE))
            return layer
        cluster_name = render_cluster.kind_cluster_name(blueprint)
        workers = [worker for worker in render_cluster.kind_config(blueprint)["nodes"] if worker["role"] == "worker"]
        for index, worker in enumerate(workers):
            node_name = f"{cluster_name}-worker" + (str(index + 1) if index else "")
            taints = _worker_taints(blueprint, worker["labels"])
            patch = {"apiVersion": "v1", "kind": "NodePatch",
                     "metadata": {"name": node_name, "labels": worker["labels"],
                                  "annotations": {"pulumi.com/patchForce": "true"}}}
            if taints:
                patch["spec"] = {"taints": taints}
            layer.objects.append(patch)
        return layer


def _worker_taints(blueprint: Blueprint, labels: dict[str, str]) -> list[dict[str, str]]:
    for pool in blueprint.node_pools:
        if labels.get("shipway.dev/pool") == pool.name:
            return [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.effective_taints]
    return []


def node_pool_inventory(blueprint: Blueprint) -> Obj:
    """The pools as a ConfigMap, so people and readiness checks can see what the cloud was asked for."""
    data = {pool.name: json.dumps({"role": pool.effective_role, "instanceType": pool.instance_type,
                                   "gpu": pool.gpu.model_dump() if pool.gpu else None,
                                   "minSize": pool.min_size, "maxSize": pool.max_size, "spot": pool.spot,
                                   "labels": render_cluster.pool_labels(blueprint, pool)}, sort_keys=True)
            for pool in blueprint.node_pools}
    return config_map("shipway-node-pools", SYSTEM_NAMESPACE, data)


class GpuStack(_Layer):
    """The NVIDIA GPU Operator, the device plugin alone, or fake-gpu-operator on kind."""

    TYPE = "shipway:gpu:GpuStack"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        return gpu.render(args.blueprint)


class Registry(pulumi.ComponentResource):
    """zot in the cluster with an admin and per-team pull and push identities, or an external registry.

    Every password is a Pulumi secret: the admin's is shipway:registryPassword when given, the rest
    are generated. Each identity's bcrypt salt is its own random resource, kept in the stack's state.
    """

    url: pulumi.Output[str]
    password: pulumi.Output[str]
    team_docker_configs: dict[str, pulumi.Output[str]]
    team_credentials: pulumi.Output[dict]
    resources: list[pulumi.Resource]

    def __init__(self, name: str, args: LayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shipway:registry:Registry", name, None, opts)
        blueprint = args.blueprint
        given = args.secrets.get("registryPassword")
        child = pulumi.ResourceOptions(parent=self)
        server = registry.server(blueprint)
        teams = [team.name for team in blueprint.teams]
        if isinstance(blueprint.registry, ExternalRegistry):
            # The external registry's own access control is its owner's; every team gets the given user.
            password = pulumi.Output.secret(given if given is not None else "")
            config = pulumi.Output.secret(password.apply(
                lambda secret: registry.docker_config_json(server, registry.username(blueprint, ""), secret)))
            self.team_docker_configs = {team: config for team in teams}
            self.team_credentials = pulumi.Output.secret({})
            htpasswd: pulumi.Output[str] | None = None
            metrics_password: pulumi.Output[str] | None = None
        else:
            passwords: dict[str, pulumi.Output[str]] = {}
            lines = []
            for identity in registry.identities(blueprint):
                if identity.access == "admin" and given is not None:
                    secret = pulumi.Output.secret(given)
                else:
                    # The admin keeps the resource name the single registry user had, so its password survives.
                    suffix = "password" if identity.access == "admin" else f"{identity.username}-password"
                    secret = pulumi.Output.secret(
                        random.RandomPassword(f"{name}-{suffix}", length=32, special=False, opts=child).result)
                salt = random.RandomBytes(f"{name}-{identity.username}-salt", length=registry.SALT_BYTES,
                                          opts=child)
                passwords[identity.username] = secret
                lines.append(pulumi.Output.all(secret, salt.base64).apply(
                    lambda values, user=identity.username: registry.htpasswd_line(user, values[0], values[1])))
            password = passwords[registry.ADMIN_USERNAME]
            htpasswd = pulumi.Output.secret(pulumi.Output.all(*lines).apply("".join))
            self.team_docker_configs = {
                team: pulumi.Output.secret(passwords[registry.pull_identity(team).username].apply(
                    lambda secret, user=registry.pull_identity(team).username:
                    registry.docker_config_json(server, user, secret)))
                for team in teams}
            self.team_credentials = pulumi.Output.secret(pulumi.Output.all(**{
                f"{team}/{kind}": passwords[identity.username]
                for team in teams for kind, identity in (("pull", registry.pull_identity(team)),
                                                         ("push", registry.push_identity(team)))
            }).apply(lambda found: _credentials_by_team(teams, found)))
            metrics_password = passwords[registry.METRICS_USERNAME]
        self.resources = apply_layer(self, name, registry.render(blueprint, htpasswd, metrics_password),
                                     upstream(opts))
        self.url = pulumi.Output.from_input(registry.url(blueprint))
        self.password = password
        self.register_outputs({"url": self.url, "password": self.password, "teamCredentials": self.team_credentials})


def _credentials_by_team(teams: list[str], passwords: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    """{team: {pull|push: {username, password}}}, for the stack output each team's CI is given from."""
    makers = {"pull": registry.pull_identity, "push": registry.push_identity}
    return {team: {kind: {"username": make(team).username, "password": passwords[f"{team}/{kind}"]}
                   for kind, make in makers.items()} for team in teams}


class Gateway(_Layer):
    """cert-manager, Envoy Gateway with the Gateway API CRDs, the shared Gateway, its certificates, external-dns."""

    TYPE = "shipway:gateway:Gateway"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        return gateway.render(args.blueprint)


class GitOps(_Layer):
    """Argo CD, the GitOps repo credentials, an AppProject per team and the model ApplicationSet."""

    TYPE = "shipway:gitops:GitOps"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        key = args.blueprint.gitops.credentials_secret
        token = args.secrets.get(key) if key else None
        return gitops.render(args.blueprint, pulumi.Output.secret(token) if token is not None else None)


class Observability(_Layer):
    """kube-prometheus-stack, platform and model alert rules, and dashboards."""

    TYPE = "shipway:observability:Observability"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        keys = [receiver.secret for receiver in args.blueprint.observability.receivers]
        retraining = args.blueprint.observability.retraining
        if retraining is not None and retraining.enabled:
            keys += [key for key in (retraining.github_token_secret, retraining.gitlab_token_secret) if key]
        secrets = {key: pulumi.Output.secret(args.secrets[key]) for key in keys}
        return observability.render(args.blueprint, secrets)


class Serving(_Layer):
    """Argo Rollouts with the circuit-breaker analysis templates, the runtime catalog, KServe."""

    TYPE = "shipway:serving:Serving"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        return serving.render(args.blueprint)


class Tenancy(_Layer):
    """Team namespaces with quotas, limits, default-deny network policies and RBAC."""

    TYPE = "shipway:tenancy:Tenancy"

    def render(self, name: str, args: LayerArgs) -> LayerRender:
        configs = {team.name: args.secrets[f"{REGISTRY_DOCKER_CONFIG}/{team.name}"] for team in args.blueprint.teams
                   if f"{REGISTRY_DOCKER_CONFIG}/{team.name}" in args.secrets}
        return tenancy.render(args.blueprint, configs or None)

