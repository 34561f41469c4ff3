"""Static evidence: what the blueprint makes the platform create, read from the model and its renders."""

from __future__ import annotations

from collections.abc import Callable

from shipway.readiness.model import Finding, failed, passed, unknown
from shipway.render import gpu, observability, serving, tenancy
from shipway.spec.base import quantity_value
from shipway.spec.blueprint import Blueprint, MigSharing, TimeSlicing, ZotRegistry

# A registry this small holds only a handful of multi-gigabyte model versions.
MIN_REGISTRY_STORAGE = "100Gi"
# A 7B-parameter model in fp16 is a single ~14 GB weights file.
MIN_BLOB_SIZE = "16Gi"

BlueprintEvaluator = Callable[[Blueprint], Finding]


def _names(items: list[str]) -> str:
    return ", ".join(items) if items else "(none)"


def _gitops_sync(blueprint: Blueprint) -> Finding:
    gitops = blueprint.gitops
    if not gitops.enabled:
        return failed("gitops.enabled is false: no Argo CD, so deployments are applied by hand")
    policy = gitops.sync_policy
    off = [name for name, on in (("automated", policy.automated), ("selfHeal", policy.self_heal),
                                 ("prune", policy.prune)) if not on]
    where = f"{gitops.repo_url}@{gitops.revision}/{gitops.path}"
    if off:
        return failed(f"Argo CD syncs {where}, but syncPolicy {', '.join(off)} is off, so Git is not the record")
    return passed(f"Argo CD syncs {where} automatically with self-heal and prune (ApplicationSet shipway-models)")


def _gitops_promotion(blueprint: Blueprint) -> Finding:
    environments = blueprint.metadata.environments
    if not blueprint.gitops.enabled:
        return failed("gitops.enabled is false: there is no GitOps repo to promote through")
    if len(environments) < 2:
        return failed(f"one environment ({environments[0]}): nothing to promote through before production")
    if not blueprint.teams:
        return failed("no teams: no AppProject fences a team's Applications")
    return passed(f"environments {' -> '.join(environments)}; one AppProject per team: "
                  f"{_names([team.name for team in blueprint.teams])}")


def _gpu_pools(blueprint: Blueprint) -> Finding:
    pools = blueprint.gpu_pools
    if not pools:
        return failed("no GPU node pools")
    untainted = [pool.name for pool in pools
                 if not any(taint.effect in ("NoSchedule", "NoExecute") for taint in pool.effective_taints)]
    if untainted:
        return failed(f"GPU pools without a NoSchedule taint, open to any pod: {_names(untainted)}")
    fixed = [pool.name for pool in pools if blueprint.is_cloud and pool.max_size <= pool.min_size]
    if fixed:
        return failed(f"GPU pools that cannot scale (maxSize <= minSize): {_names(fixed)}")
    described = []
    for pool in pools:
        assert pool.gpu is not None
        taints = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in pool.effective_taints)
        sizes = f", {pool.min_size}-{pool.max_size} nodes" if blueprint.is_cloud else ""
        described.append(f"{pool.name} ({pool.gpu.count}x {pool.gpu.model}{sizes}, taint {taints})")
    return passed(f"{len(pools)} GPU pool(s): {'; '.join(described)}")


def _gpu_device_stack(blueprint: Blueprint) -> Finding:
    releases = [release.name for release in gpu.render(blueprint).releases]
    if not releases:
        return failed("no GPU pools, so no GPU operator or device plugin is installed")
    if blueprint.simulate_gpus:
        return passed(f"simulated GPUs: {_names(releases)} with its DCGM-style exporter scraped by Prometheus")
    if not blueprint.gpu_stack.dcgm_exporter:
        return failed(f"{_names(releases)} installed, but gpuStack.dcgmExporter is off: no GPU metrics")
    if not blueprint.observability.enabled:
        return failed(f"{_names(releases)} installed, but no Prometheus collects the DCGM metrics "
                      "(observability.enabled is false)")
    return passed(f"{_names(releases)} in namespace {gpu.NAMESPACE} (mode {blueprint.gpu_stack.mode}), "
                  "DCGM exporter on")


def _gpu_sharing(blueprint: Blueprint) -> Finding:
    sharing = blueprint.gpu_stack.sharing
    if not blueprint.gpu_pools:
        return failed("no GPU pools to share")
    if isinstance(sharing, TimeSlicing):
        return passed(f"time-slicing: {sharing.replicas} pods per GPU")
    if isinstance(sharing, MigSharing):
        pools = [pool.name for pool in blueprint.mig_pools()]
        return passed(f"MIG {sharing.profile} ({sharing.mig_strategy} strategy) on pools {_names(pools)}")
    return failed("gpuStack.sharing.strategy is none: every GPU pod holds whole GPUs")


def _gpu_quotas(blueprint: Blueprint) -> Finding:
    if not blueprint.teams:
        return failed("no teams: nothing caps requests.nvidia.com/gpu")
    caps = ", ".join(f"{team.name} {team.quota.gpus}" for team in blueprint.teams)
    return passed(f"requests.nvidia.com/gpu capped per namespace: {caps}")


def _artifacts_registry(blueprint: Blueprint) -> Finding:
    registry = blueprint.registry
    if not isinstance(registry, ZotRegistry):
        return passed(f"external registry {registry.url}; its capacity is the provider's")
    if quantity_value(registry.storage_size) < quantity_value(MIN_REGISTRY_STORAGE):
        return failed(f"zot has {registry.storage_size} of storage, under {MIN_REGISTRY_STORAGE}: "
                      "a few model versions fill it")
    return passed(f"zot in namespace shipway-registry with {registry.storage_size} of storage")


def _artifacts_large_blobs(blueprint: Blueprint) -> Finding:
    registry = blueprint.registry
    if not isinstance(registry, ZotRegistry):
        return unknown(f"external registry {registry.url}: blob limits and dedupe are set by its provider")
    problems = []
    if quantity_value(registry.max_blob_size) < quantity_value(MIN_BLOB_SIZE):
        problems.append(f"maxBlobSize {registry.max_blob_size} is under {MIN_BLOB_SIZE}")
    if not registry.dedupe:
        problems.append("dedupe is off, so every retrained version stores its bytes again")
    if problems:
        return failed("; ".join(problems))
    return passed(f"blobs up to {registry.max_blob_size}; dedupe on")


def _observability_model_slos(blueprint: Blueprint) -> Finding:
    if not blueprint.observability.enabled:
        return failed("observability.enabled is false: no Prometheus, no model alerts")
    slo = blueprint.observability.slo
    return passed(f"PrometheusRule shipway-model-slo: error rate <= {slo.error_rate:g}, "
                  f"p99 <= {slo.latency_p99_ms:g} ms, feature PSI <= {slo.drift_psi:g}, "
                  f"online accuracy >= {slo.accuracy_floor:g}; Grafana dashboards "
                  f"{'on' if blueprint.observability.grafana else 'off'}")


def _observability_alert_routing(blueprint: Blueprint) -> Finding:
    if not blueprint.observability.enabled:
        return failed("observability.enabled is false: no Alertmanager")
    receivers = blueprint.observability.receivers
    if not receivers:
        return failed("no observability.receivers: alerts go to Alertmanager's null receiver")
    return passed("receivers " + ", ".join(f"{receiver.name} ({receiver.type})" for receiver in receivers))


def _breakers_analysis(blueprint: Blueprint) -> Finding:
    if not blueprint.serving.rollouts:
        return failed("serving.rollouts is false: no Argo Rollouts, so nothing aborts a bad release")
    if not blueprint.observability.enabled:
        return failed("the analysis templates query Prometheus, which observability.enabled: false leaves out")
    names = [template["metadata"]["name"] for template in serving.analysis_templates(blueprint)]
    return passed(f"ClusterAnalysisTemplates {_names(names)} query {observability.PROMETHEUS_URL}")


def _rollouts_progressive(blueprint: Blueprint) -> Finding:
    serving_spec = blueprint.serving
    if not serving_spec.rollouts:
        return failed("serving.rollouts is false: models are replaced all at once")
    if serving_spec.default_strategy == "none":
        return failed("serving.defaultStrategy is none: models that name no strategy are replaced all at once")
    if serving_spec.default_strategy == "blue-green":
        return passed("Argo Rollouts, default strategy blue-green (preview, then switch)")
    steps = ", ".join(f"{step.weight}% for {step.pause}" for step in serving_spec.canary_steps)
    return passed(f"Argo Rollouts, default strategy canary: {steps}, then 100%")


def _tenancy_namespaces(blueprint: Blueprint) -> Finding:
    if not blueprint.teams:
        return failed("no teams: models share namespaces with no quota, limits or network policy")
    rendered = tenancy.render(blueprint)
    kinds: dict[str, int] = {}
    for obj in rendered.objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    names = [ns["metadata"]["name"] for ns in rendered.namespaces]
    return passed(f"{len(names)} team namespaces ({_names(names)}) with {kinds.get('ResourceQuota', 0)} "
                  f"ResourceQuotas, {kinds.get('LimitRange', 0)} LimitRanges and "
                  f"{kinds.get('NetworkPolicy', 0)} NetworkPolicies, default-deny first")


def _tenancy_rbac(blueprint: Blueprint) -> Finding:
    if not blueprint.teams:
        return failed("no teams: no Role or RoleBinding is created")
    unbound = [team.name for team in blueprint.teams if not team.groups]
    if unbound:
        return failed(f"teams with no groups, so Role {tenancy.TEAM_ROLE} is bound to nobody: {_names(unbound)}")
    return passed("Role " + tenancy.TEAM_ROLE + " bound per team: "
                  + "; ".join(f"{team.name} -> {', '.join(team.groups)}" for team in blueprint.teams))


def _tenancy_secrets(blueprint: Blueprint) -> Finding:
    gitops = blueprint.gitops
    if gitops.enabled and gitops.credentials_secret and (gitops.repo_url or "").startswith("http://"):
        return failed(f"the GitOps token ({gitops.credentials_secret}) would travel over plain http to "
                      f"{gitops.repo_url}")
    keys = []
    if gitops.enabled and gitops.credentials_secret:
        keys.append(f"{gitops.credentials_secret} (GitOps repo)")
    keys += [f"{receiver.secret} ({receiver.name})" for receiver in blueprint.observability.receivers]
    registry = ("the zot password is generated as a secret" if isinstance(blueprint.registry, ZotRegistry)
                else "the registry password is the secret registryPassword")
    listed = f"Pulumi secrets {', '.join(keys)}; " if keys else ""
    return passed(f"{listed}{registry}; the blueprint has no field for a plain credential")


EVALUATORS: dict[str, BlueprintEvaluator] = {
    "gitops-sync": _gitops_sync,
    "gitops-promotion": _gitops_promotion,
    "gpu-pools": _gpu_pools,
    "gpu-device-stack": _gpu_device_stack,
    "gpu-sharing": _gpu_sharing,
    "gpu-quotas": _gpu_quotas,
    "artifacts-registry": _artifacts_registry,
    "artifacts-large-blobs": _artifacts_large_blobs,
    "observability-model-slos": _observability_model_slos,
    "observability-alert-routing": _observability_alert_routing,
    "breakers-analysis": _breakers_analysis,
    "rollouts-progressive": _rollouts_progressive,
    "tenancy-namespaces": _tenancy_namespaces,
    "tenancy-rbac": _tenancy_rbac,
    "tenancy-secrets": _tenancy_secrets,
}
