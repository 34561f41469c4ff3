"""Where a model runs on a platform: its namespace, runtime, GPU resource and pool; refusals say why not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipway.delivery.errors import RenderRefused
from shipway.spec.gpus import GPU_MODELS, mig_slices
from shipway.spec.model import RESERVED_PORTS, CustomRuntime, ModelSpec

Profile = dict[str, Any]
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class RuntimeImage:
    """The image, port and protocol a model's runtime serves with."""

    image: str
    port: int
    protocol: str
    needs_gpu: bool


@dataclass(frozen=True)
class GpuPlacement:
    """The extended resource a replica requests, and the pool it is pinned to."""

    resource: str
    count: int
    pool: str
    node_labels: dict[str, str]
    taints: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Placement:
    """Everything the renderer needs to know about the platform for one model in one environment."""

    environment: str
    namespace: str
    runtime: RuntimeImage
    gpu: GpuPlacement | None
    strategy: str


def place(spec: ModelSpec, profile: Profile, environment: str) -> Placement:
    """Resolve the model against the platform profile, refusing what the platform cannot run."""
    environments = list(profile.get("environments", []))
    if environment not in environments:
        raise RenderRefused(f'environment "{environment}" is not one of the platform\'s: {", ".join(environments)}')
    teams = profile.get("teams", {})
    if spec.team not in teams:
        raise RenderRefused(f'team: "{spec.team}" is not a team of platform "{profile.get("name")}"; '
                            f'teams are: {", ".join(sorted(teams)) or "(none)"}')
    team = teams[spec.team]
    namespace = team["namespaces"].get(environment)
    if namespace is None:
        raise RenderRefused(f'team "{spec.team}" has no namespace in "{environment}"; it deploys to: '
                            f'{", ".join(team["namespaces"])}')
    runtime = _runtime(spec, profile)
    strategy = _strategy(spec, profile)
    gpu = _gpu(spec, profile, team, strategy)
    if runtime.needs_gpu and gpu is None:
        raise RenderRefused(f'runtime "{spec.runtime.name}" needs a GPU (the catalog marks it gpu: true) but '
                            "resources.gpus is 0; set resources.gpus (and gpuPool or migProfile)")
    return Placement(environment, namespace, runtime, gpu, strategy)


def _runtime(spec: ModelSpec, profile: Profile) -> RuntimeImage:
    runtime = spec.runtime
    if isinstance(runtime, CustomRuntime):
        return RuntimeImage(runtime.image, runtime.port, runtime.protocol, needs_gpu=False)
    catalog = profile.get("runtimes", {})
    entry = catalog.get(runtime.name)
    if entry is None:
        raise RenderRefused(f'runtime: "{runtime.name}" is not in the platform\'s runtime catalog '
                            f'({", ".join(sorted(catalog)) or "empty"}); '
                            "use one of those, or name: custom with an image")
    port = int(entry.get("port", 8080))
    if port in RESERVED_PORTS:
        raise RenderRefused(f'runtime "{runtime.name}" listens on port {port}, which the Shipway sidecar uses; '
                            "change the runtime's port in the blueprint's serving.runtimes")
    return RuntimeImage(entry["image"], port, entry.get("protocol", "v2"), bool(entry.get("gpu", False)))


def _strategy(spec: ModelSpec, profile: Profile) -> str:
    rollouts = profile.get("rollouts", {})
    if not rollouts.get("enabled", False):
        raise RenderRefused("the platform does not run Argo Rollouts (serving.rollouts is false), "
                            "so models cannot be delivered on it; turn serving.rollouts on in the blueprint")
    strategy = spec.strategy or rollouts.get("defaultStrategy", "canary")
    return str(strategy)


def _gpu(spec: ModelSpec, profile: Profile, team: dict[str, Any], strategy: str) -> GpuPlacement | None:
    resources = spec.resources
    if resources.gpus == 0:
        return None
    pools = profile.get("gpuPools", {})
    allowed = list(team.get("gpuPools", []))
    name = resources.gpu_pool
    if name is None:
        if len(allowed) != 1:
            raise RenderRefused(f'resources.gpuPool is not set and team "{spec.team}" may use '
                                f'{len(allowed)} GPU pools ({", ".join(allowed) or "none"}); name one')
        name = allowed[0]
    if name not in pools:
        raise RenderRefused(f'resources.gpuPool: no GPU pool named "{name}" on the platform; '
                            f'GPU pools are: {", ".join(sorted(pools)) or "(none)"}')
    if name not in allowed:
        raise RenderRefused(f'resources.gpuPool: team "{spec.team}" may not use pool "{name}"; '
                            f'its pools are: {", ".join(allowed) or "(none)"}')
    pool = pools[name]
    resource, per_node = _gpu_resource(spec, profile, name, pool)
    if resources.gpus > per_node:
        raise RenderRefused(f"resources.gpus: one replica asks for {resources.gpus} {resource}, but a node of pool "
                            f'"{name}" offers {per_node}; lower gpus or use a larger pool')
    # The team's quota.gpus caps each GPU resource on its own, MIG slices counted as devices (the
    # tenancy ResourceQuota's rule), so a model's peak need is compared in the resource it requests.
    quota = int(team.get("gpuQuota", 0))
    capped = team.get("gpuQuotaResources")
    if capped is not None and resource not in capped:
        raise RenderRefused(f'resources: pool "{name}" offers {resource}, which team "{spec.team}"\'s quota does not '
                            f'cap ({", ".join(capped)}); the platform profile is stale, run `shipway synth` again')
    peak_pods, why = _peak_pods(spec, strategy)
    needed = resources.gpus * peak_pods
    if needed > quota:
        raise RenderRefused(f"resources.gpus: the model needs up to {needed} GPUs ({resources.gpus} per replica x "
                            f'{peak_pods} pods {why}), over team "{spec.team}"\'s GPU quota of {quota} '
                            f"(requests.{resource}); lower gpus or replicas.max, or raise the team's quota in the "
                            "blueprint")
    return GpuPlacement(resource, resources.gpus, name, dict(pool.get("labels", {})), list(pool.get("taints", [])))


def _gpu_resource(spec: ModelSpec, profile: Profile, name: str, pool: dict[str, Any]) -> tuple[str, int]:
    """The resource name a pod requests on the pool, and how many one node offers."""
    sharing = profile.get("gpuSharing", {"strategy": "none"})
    model = GPU_MODELS.get(pool.get("model", ""))
    per_node = int(pool.get("gpusPerNode", 1))
    mig_profile = spec.resources.mig_profile
    strategy = sharing.get("strategy")
    partitioned = strategy == "mig" and (
        name in sharing["pools"] if sharing.get("pools") is not None else bool(model and model.mig_capable))
    if not partitioned:
        if mig_profile is not None:
            raise RenderRefused(f'resources.migProfile: pool "{name}" is not partitioned with MIG; '
                                "remove migProfile or choose a MIG pool")
        if strategy == "time-slicing":
            resource = "nvidia.com/gpu.shared" if sharing.get("renameByDefault") else GPU_RESOURCE
            return resource, per_node * int(sharing.get("replicas", 1))
        return GPU_RESOURCE, per_node
    config = str(sharing.get("profile", ""))
    if config == "all-balanced":
        slices = [p.removeprefix("all-") for p in (model.mig_profiles if model else ()) if p != "all-balanced"]
    else:
        slices = [config.removeprefix("all-")]
    offered = per_node * mig_slices(config)
    if sharing.get("migStrategy", "mixed") == "single":
        if mig_profile is not None and mig_profile not in slices:
            raise RenderRefused(f'resources.migProfile: pool "{name}" is partitioned as {config}; '
                                f'use {", ".join(slices)}')
        return GPU_RESOURCE, offered
    if mig_profile is None:
        raise RenderRefused(f'resources.migProfile: pool "{name}" is partitioned with MIG ({config}, mixed strategy), '
                            f'so whole GPUs are not offered; set migProfile to {" or ".join(slices)}')
    if mig_profile not in slices:
        raise RenderRefused(f'resources.migProfile: pool "{name}" offers MIG slices {", ".join(slices)}, '
                            f'not {mig_profile}')
    return f"nvidia.com/mig-{mig_profile}", offered


def _peak_pods(spec: ModelSpec, strategy: str) -> tuple[int, str]:
    """Pods that may run at once during a rollout: the preview doubles blue-green, a surge pod the others."""
    if strategy == "blue-green":
        return 2 * spec.replicas.max, "at replicas.max, with the blue-green preview beside the active set"
    return spec.replicas.max + 1, "at replicas.max plus one surge pod during a rollout"
