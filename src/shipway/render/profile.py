"""The platform profile: the facts model delivery and templates read about a platform."""

from __future__ import annotations

from shipway.render import gateway, node_cache, observability, registry, serving, tenancy
from shipway.render.common import Obj, shipway_image
from shipway.spec.blueprint import Blueprint

PROFILE_VERSION = "shipway.dev/platform-profile/v1"


def gateway_profile(blueprint: Blueprint) -> Obj:
    """Where model routes attach: the Gateway, and per team and environment its listener and host/path scheme."""
    if not blueprint.gateway.enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "name": gateway.GATEWAY,
        "namespace": gateway.NAMESPACE,
        "routes": {team.name: {env: {"listener": gateway.team_listener(team.name, env),
                                     "host": blueprint.route_host(team.name, env),
                                     "path": blueprint.route_path()}
                               for env in blueprint.team_environments(team)}
                   for team in blueprint.teams},
    }


def platform_profile(blueprint: Blueprint) -> Obj:
    """Registry, environments, team namespaces, gateway, runtimes, analysis templates, Prometheus, SLOs."""
    slo = blueprint.observability.slo
    registry_profile: Obj = {"url": registry.url(blueprint), "type": blueprint.registry.type,
                             "pullSecret": registry.PULL_SECRET}
    if node_cache.enabled(blueprint):
        # Model pods mount this registry's artifacts, by digest, through the node cache's CSI driver.
        # (Profiles before the CSI driver held the cache service's URL here; delivery.render reads those as off.)
        registry_profile["nodeCache"] = {"driver": node_cache.DRIVER}
    if blueprint.gateway.enabled and blueprint.registry.type == "zot":
        # CI pushes over TLS through the Gateway; pods keep pulling in-cluster from `url`.
        registry_profile["pushUrl"] = blueprint.registry_host
    return {
        "apiVersion": PROFILE_VERSION,
        "name": blueprint.metadata.name,
        "cluster": blueprint.cluster.kind,
        "environments": list(blueprint.metadata.environments),
        "registry": registry_profile,
        "gateway": gateway_profile(blueprint),
        "gitops": {"enabled": blueprint.gitops.enabled, "repoUrl": blueprint.gitops.repo_url,
                   "revision": blueprint.gitops.revision, "path": blueprint.gitops.path},
        "teams": {
            team.name: {
                "namespaces": blueprint.namespaces[team.name],
                "gpuQuota": team.quota.gpus,
                # Each of these is capped at gpuQuota in the team's ResourceQuota (tenancy.resource_quota).
                "gpuQuotaResources": tenancy.gpu_resources(blueprint, team),
                "gpuPools": [pool.name for pool in blueprint.team_gpu_pools(team)],
                "codeOwners": list(team.code_owners),
            }
            for team in blueprint.teams
        },
        "gpuPools": {
            pool.name: {"model": pool.gpu.model, "gpusPerNode": pool.gpu.count, "maxSize": pool.max_size,
                        "labels": pool.node_labels,
                        "taints": [taint.model_dump() for taint in pool.effective_taints],
                        "schedulableGpus": blueprint.schedulable_gpus(pool)}
            for pool in blueprint.gpu_pools if pool.gpu is not None
        },
        "gpuSharing": blueprint.gpu_stack.sharing.model_dump(by_alias=True),
        "runtimes": {name: runtime.model_dump(by_alias=True)
                     for name, runtime in sorted(blueprint.serving.runtime_catalog.items())},
        "rollouts": {
            "enabled": blueprint.serving.rollouts,
            "defaultStrategy": blueprint.serving.default_strategy,
            "canarySteps": [step.model_dump() for step in blueprint.serving.canary_steps],
            "analysisTemplates": dict(serving.ANALYSIS_TEMPLATES) if blueprint.serving.rollouts else {},
        },
        "prometheus": {"url": observability.PROMETHEUS_URL if blueprint.observability.enabled else None,
                       "selectorLabels": observability.SELECTOR_LABELS},
        "slo": slo.model_dump(by_alias=True),
        "images": {"shipway": shipway_image(blueprint)},
    }
