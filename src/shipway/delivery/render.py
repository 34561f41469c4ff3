"""A ModelSpec, the platform profile and an environment, rendered into the model's Kubernetes objects.

Pure and deterministic: the same inputs give the same objects, in the same order.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shipway import catalog
from shipway.artifacts.layout import init_container
from shipway.delivery.errors import RenderRefused
from shipway.delivery.placement import GpuPlacement, Placement, Profile, place
from shipway.render import model_rules, retrain
from shipway.render.common import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, Obj, metadata
from shipway.render.registry import PULL_SECRET
from shipway.render.tenancy import SERVING_PRIORITY
from shipway.spec.blueprint import CanaryStep
from shipway.spec.base import quantity_value
from shipway.spec.model import (
    MLSERVER_IMPLEMENTATIONS,
    SIDECAR_FEEDBACK_PORT,
    SIDECAR_METRICS_PORT,
    SIDECAR_PORT,
    BlueGreenRollout,
    CanaryRollout,
    CustomRuntime,
    MlserverRuntime,
    ModelSpec,
    TritonRuntime,
    VllmRuntime,
)

MODEL_MOUNT = "/models"
MODEL_DIR = f"{MODEL_MOUNT}/model"
# Where the init container reads the platform's registry pull secret as a docker config.
REGISTRY_AUTH_MOUNT = "/var/run/shipway/registry"
REGISTRY_AUTH_VOLUME = "registry-auth"
SERVICE_PORT = 80
RUNTIME_METRICS_PORT_NAME = "runtime-metrics"
ROLE_LABEL = "shipway.dev/service-role"
COMPONENT = "model-server"
INIT_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
SIDECAR_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
# The sidecar's probes, on its metrics port, which is never proxied: its own liveness, and
# readiness that follows the runtime's readiness route (`--runtime-ready-path`).
SIDECAR_LIVENESS_PATH = "/livez"
SIDECAR_READINESS_PATH = "/readyz"
# Startup budget: a fixed part (process start; for GPUs CUDA init and graph capture) plus the
# model's bytes at a load rate any node sustains from a local volume, so a 40Gi LLM gets ~25 min.
STARTUP_BASE_SECONDS = {False: 120, True: 600}
STARTUP_LOAD_BYTES_PER_SECOND = 50 * 1024 * 1024
STARTUP_PERIOD_SECONDS = 10
# Predictions wait for their labels this many times the spec's labelDelay, so late labels still match.
LABEL_TTL_MARGIN = 1.5
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def render(spec: ModelSpec, profile: Profile, environment: str, stable_version: str | None = None,
           artifact_digest: str | None = None) -> list[Obj]:
    """The model's objects in one environment; stable_version is the version serving there now, if any.

    With `artifact_digest` (promote resolves the version's tag to it), pods pull the artifact by that
    digest, so moving the tag afterwards never changes what runs.
    """
    if artifact_digest is not None:
        spec = pin_artifact(spec, profile, artifact_digest)
    where = place(spec, profile, environment)
    objects = [rollout(spec, profile, where, stable_version or spec.version)]
    objects += services(spec, where)
    objects += routes(spec, profile, where)
    # No per-model PrometheusRule: the platform's shipway-model-slo rules alert on every model at the
    # thresholds its sidecar exports (sidecar_slo_args), so a second rule here would alert twice.
    objects += [service_monitor(spec, profile, where), disruption_budget(spec, where)]
    if autoscaled(spec):
        objects.append(autoscaler(spec, where))
    # No NetworkPolicy: teams may not sync that kind (render.gitops.MODEL_KINDS); the platform's policies
    # in every team namespace (render.tenancy.network_policies) admit the gateway, Prometheus and the team.
    if spec.retrain is not None:
        objects.append(retrain.model_config_map(spec, where.namespace, labels(spec)))
    # A JSON round trip leaves no shared sub-objects, so YAML output has no anchors and callers may mutate freely.
    return [json.loads(json.dumps(obj)) for obj in objects]


def selector(spec: ModelSpec) -> dict[str, str]:
    """Labels that pick the model's pods whatever their version; Argo Rollouts adds the template hash."""
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": spec.name}


def labels(spec: ModelSpec, component: str = COMPONENT) -> dict[str, str]:
    """The stable labels every object of the model carries."""
    return {
        **selector(spec),
        "app.kubernetes.io/version": spec.version,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "shipway",
        "shipway.dev/model": spec.name,
        "shipway.dev/version": spec.version,
        "shipway.dev/team": spec.team,
    }


def artifact_reference(spec: ModelSpec, profile: Profile) -> str:
    """The artifact's reference: the spec's, or the platform registry's <team>/<name>, tagged with the version."""
    registry = profile["registry"]
    ref = spec.artifact or f"oci://{registry['url']}/{spec.team}/{spec.name}"
    host, _, repository = ref.removeprefix("oci://").partition("/")
    on_platform = registry.get("type") == "zot" and host in {registry.get("url"), registry.get("pushUrl")}
    if on_platform and not repository.startswith(f"{spec.team}/"):
        # zot grants a team's identities <team>/** and nothing else (render/registry.py).
        raise RenderRefused(
            f'Got artifact "{ref}": on the platform\'s registry, team {spec.team}\'s identities may read and push '
            f'only under {spec.team}/. Push the model to oci://{host}/{spec.team}/{spec.name} and name that '
            "(or leave `artifact` out, which means the same).")
    if spec.artifact_tag is None and "@" not in ref:
        ref = f"{ref}:{spec.version}"
    return ref


def pin_artifact(spec: ModelSpec, profile: Profile, digest: str) -> ModelSpec:
    """The spec with its artifact named by manifest digest instead of tag."""
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise RenderRefused(f"Got --artifact-digest {digest!r}: expected sha256: and 64 hex digits, the manifest "
                            "digest that `shipway model exists oci://REGISTRY/REPOSITORY:TAG` prints for the version")
    repository = artifact_reference(spec, profile).partition("@")[0]
    name, colon, tag = repository.rpartition(":")
    if colon and "/" not in tag:
        repository = name
    return spec.model_copy(update={"artifact": f"{repository}@{digest}"})


# --- the Rollout ------------------------------------------------------------------------


def rollout(spec: ModelSpec, profile: Profile, where: Placement, stable_version: str) -> Obj:
    """The Argo Rollout: pod template, and canary, blue-green or plain rolling strategy."""
    gpu = where.gpu is not None
    obj: Obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": metadata(spec.name, where.namespace, labels(spec),
                             {"shipway.dev/artifact": artifact_reference(spec, profile)}),
        "spec": {
            "replicas": spec.replicas.min,
            "revisionHistoryLimit": 3,
            # Pulling and loading a multi-gigabyte model takes minutes; a stuck rollout aborts instead
            # of hanging, but never before the pull and the startup probe could have finished.
            "progressDeadlineSeconds": max(1800 if gpu else 600, 2 * startup_seconds(spec, gpu)),
            "progressDeadlineAbort": True,
            "selector": {"matchLabels": selector(spec)},
            "template": {"metadata": {"labels": labels(spec)}, "spec": pod_spec(spec, profile, where)},
            "strategy": strategy(spec, profile, where, stable_version),
        },
    }
    if autoscaled(spec):
        # The autoscaler owns the count: a replicas field in git would have Argo CD's self-heal reset it to
        # min after every scale-up, and the HPA scale it back, for ever.
        del obj["spec"]["replicas"]
    return obj


def autoscaled(spec: ModelSpec) -> bool:
    """Whether a HorizontalPodAutoscaler sets the replica count, between replicas.min and replicas.max."""
    return spec.replicas.min != spec.replicas.max


def strategy(spec: ModelSpec, profile: Profile, where: Placement, stable_version: str) -> Obj:
    """The Rollout strategy; analysis references the platform's ClusterAnalysisTemplates with this model's args."""
    if where.strategy == "blue-green":
        chosen = spec.rollout
        options = chosen if isinstance(chosen, BlueGreenRollout) else BlueGreenRollout(strategy="blue-green")
        blue_green: Obj = {
            "activeService": spec.name,
            "previewService": f"{spec.name}-preview",
            "autoPromotionEnabled": options.auto_promote,
            "scaleDownDelaySeconds": options.scale_down_delay_seconds,
        }
        if options.auto_promotion_seconds is not None:
            blue_green["autoPromotionSeconds"] = options.auto_promotion_seconds
        if options.pre_promotion_analysis:
            blue_green["prePromotionAnalysis"] = analysis(spec, profile, where, stable_version)
        return {"blueGreen": blue_green}
    # Without steps a canary strategy is a plain rolling update: one surge pod, none unavailable.
    canary: Obj = {"maxSurge": 1, "maxUnavailable": 0}
    if where.strategy == "canary":
        options = spec.rollout if isinstance(spec.rollout, CanaryRollout) else CanaryRollout(strategy="canary")
        steps = options.steps or [_step(item) for item in profile["rollouts"]["canarySteps"]]
        canary["canaryService"] = f"{spec.name}-canary"
        canary["stableService"] = f"{spec.name}-stable"
        if gateway_on(profile):
            # Each setWeight sets the route's canary and stable backend weights to exactly the step's share.
            canary["trafficRouting"] = {"plugins": {catalog.ROLLOUTS_GATEWAY_PLUGIN: {
                "httpRoute": spec.name, "namespace": where.namespace}}}
        canary["steps"] = [item for step in steps for item in ({"setWeight": step.weight},
                                                                {"pause": {"duration": step.pause}})]
        if options.analysis:
            # From the first pause on: by then the first canary pods take traffic.
            canary["analysis"] = {**analysis(spec, profile, where, stable_version), "startingStep": 1}
    return {"canary": canary}


def _step(item: dict[str, Any]) -> CanaryStep:
    return CanaryStep.model_validate(item)


def breakers(spec: ModelSpec) -> list[str]:
    """The circuit breakers that apply: drift and accuracy only when the model measures them.

    An OpenAI-compatible LLM is judged on failed generations, time to first token and inter-token
    latency instead of on whole-request errors and latency.
    """
    chosen = list(model_rules.LLM_BREAKERS) if isinstance(spec.runtime, VllmRuntime) else ["error-rate", "latency"]
    if spec.drift is not None:
        chosen.append("drift")
    if spec.accuracy is not None:
        chosen.append("accuracy")
    return chosen


def analysis(spec: ModelSpec, profile: Profile, where: Placement, stable_version: str) -> Obj:
    """Templates and arguments of the canary or pre-promotion analysis."""
    templates = profile["rollouts"].get("analysisTemplates", {})
    missing = [name for name in breakers(spec) if name not in templates]
    if missing:
        raise RenderRefused(f"the platform has no analysis template for {', '.join(missing)}; "
                            "is serving.rollouts on and the profile from this Shipway version?")
    values = {"model": spec.name, "namespace": where.namespace, "canary-version": spec.version,
              "stable-version": stable_version}
    address = profile.get("prometheus", {}).get("url")
    if address:
        values["prometheus-address"] = address
    if spec.drift is not None:
        # The drift breaker judges the model by its own bound and minimum window, as its alert does.
        if spec.drift.threshold is not None:
            values["drift-threshold"] = f"{spec.drift.threshold:g}"
        values["drift-min-rows"] = str(spec.drift.min_rows)
    names = (*model_rules.BREAKER_ARGS, *model_rules.DRIFT_ARGS)
    return {
        "templates": [{"templateName": templates[name], "clusterScope": True} for name in breakers(spec)],
        "args": [{"name": name, "value": values[name]} for name in names if name in values],
    }


# --- the pod ----------------------------------------------------------------------------


def pod_spec(spec: ModelSpec, profile: Profile, where: Placement) -> Obj:
    """Runtime and sidecar on restricted security, with GPU scheduling when asked; the model comes from the
    node cache's CSI volume, or else from an init container that pulls it into the pod's own volume."""
    cached = node_cache_volume(spec, profile)
    volumes: list[Obj] = [
        cached or {"name": "model", "emptyDir": {"sizeLimit": spec.resources.model_storage}},
        {"name": "runtime-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "sidecar-tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if cached is None:
        volumes.append({"name": "fetch-tmp", "emptyDir": {"sizeLimit": "64Mi"}})
    if where.gpu is not None:
        # PyTorch and NCCL share tensors through /dev/shm, which is 64Mi by default.
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}})
    auth_secret = registry_auth_secret(spec, profile)
    if auth_secret is not None and cached is None:
        volumes.append({"name": REGISTRY_AUTH_VOLUME, "secret": {
            "secretName": auth_secret, "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
    # The CSI volume holds the model's files at its root; the init container pulls into MODEL_MOUNT's `model`
    # folder. Either way the runtime and sidecar find the model at MODEL_DIR.
    model_mount = MODEL_DIR if cached is not None else MODEL_MOUNT
    pod: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "priorityClassName": SERVING_PRIORITY,
        "terminationGracePeriodSeconds": 30,
        "securityContext": dict(RESTRICTED_POD_SECURITY),
    }
    if cached is None:
        pod["initContainers"] = [fetch_container(spec, profile)]
    pod.update({
        "containers": [runtime_container(spec, where, model_mount),
                       sidecar_container(spec, profile, where, model_mount)],
        "volumes": volumes,
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector(spec)},
        }],
    })
    if where.gpu is not None:
        pod.update(gpu_scheduling(where.gpu))
    pull_secret = platform_pull_secret(profile)
    if pull_secret is not None:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    return pod


def node_cache_driver(profile: Profile) -> str | None:
    """The node cache's CSI driver the platform runs; None when it runs none.

    Profiles written before the CSI driver held the old cache service's URL in registry.nodeCache. That service
    and `model pull --node-cache` no longer exist, so such a profile means no node cache here: the init container
    pulls from the registry.
    """
    cache = profile.get("registry", {}).get("nodeCache")
    return str(cache["driver"]) if isinstance(cache, dict) and cache.get("driver") else None


def node_cache_volume(spec: ModelSpec, profile: Profile) -> Obj | None:
    """The model volume from the node cache's CSI driver, or None where the init container must pull instead.

    The driver mounts artifacts of the platform's registry only (its one --registry host), by manifest digest
    only, with the platform's dockerconfigjson pull secret. An artifact named by tag keeps the init container:
    a tag can move between two pods' starts, so the cache, which keys models by digest, refuses it. `shipway
    promote` commits digests (render's artifact_digest), so only a render without one pulls by tag.
    """
    driver = node_cache_driver(profile)
    # Only an artifact on the platform's registry gets the platform's pull secret (registry_auth_secret).
    pull_secret = registry_auth_secret(spec, profile)
    ref = artifact_reference(spec, profile)
    if driver is None or pull_secret is None or not re.search(r"@sha256:[0-9a-f]{64}$", ref):
        return None
    return {"name": "model", "csi": {
        "driver": driver, "readOnly": True,
        # maxSize: the plugin refuses an artifact larger than the model storage the spec asked for.
        "volumeAttributes": {"artifact": ref, "maxSize": spec.resources.model_storage},
        "nodePublishSecretRef": {"name": pull_secret},
    }}


def platform_pull_secret(profile: Profile) -> str | None:
    """The dockerconfigjson Secret the platform puts in every team namespace; older profiles name none."""
    registry = profile.get("registry", {})
    if "pullSecret" in registry:
        return registry["pullSecret"] or None
    # Profiles written before pullSecret existed had the secret only for external registries.
    return PULL_SECRET if registry.get("type") == "external" else None


def registry_auth_secret(spec: ModelSpec, profile: Profile) -> str | None:
    """The pull secret the init container reads as its docker config: the platform's, for its own registry.

    A model naming artifactCredentialsSecret uses that instead; an artifact elsewhere gets no platform secret.
    """
    if spec.artifact_credentials_secret is not None:
        return None
    host = artifact_reference(spec, profile).removeprefix("oci://").split("/")[0]
    platform_host = str(profile.get("registry", {}).get("url", "")).split("/")[0]
    return platform_pull_secret(profile) if host == platform_host else None


def gpu_scheduling(gpu: GpuPlacement) -> Obj:
    """Node affinity to the chosen pool and tolerations of its taints."""
    terms = [{"key": key, "operator": "In", "values": [value]} for key, value in sorted(gpu.node_labels.items())
             if key == "shipway.dev/pool"]
    tolerations = [{"key": taint["key"], "operator": "Equal", "value": taint.get("value", ""),
                    "effect": taint.get("effect", "NoSchedule")} for taint in gpu.taints]
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": terms}]}}},
        "tolerations": tolerations,
    }


def _security() -> Obj:
    return {key: (dict(value) if isinstance(value, dict) else value)
            for key, value in RESTRICTED_CONTAINER_SECURITY.items()}


def shipway_image(profile: Profile) -> str:
    """The Shipway image the platform names (a mirror's copy, say), else this Shipway's own release."""
    return profile.get("images", {}).get("shipway") or catalog.SHIPWAY_IMAGE


def fetch_container(spec: ModelSpec, profile: Profile) -> Obj:
    """The init container: `shipway model pull` with its digest checks, into the model volume."""
    ref = artifact_reference(spec, profile)
    registry = profile.get("registry", {})
    # The in-cluster zot serves plain HTTP on its cluster-local address.
    platform_registry = ref.removeprefix("oci://").startswith(f"{registry.get('url')}/")
    plain_http = registry.get("type") == "zot" and platform_registry
    auth_secret = registry_auth_secret(spec, profile)
    container: Obj = dict(init_container(ref, shipway_image(profile), mount_path=MODEL_MOUNT, volume_name="model",
                                         plain_http=plain_http,
                                         credentials_secret=spec.artifact_credentials_secret,
                                         docker_config=f"{REGISTRY_AUTH_MOUNT}/config.json" if auth_secret else None))
    # No blob larger than the model volume is even started: the volume's sizeLimit is the cap.
    container["command"] = [*container["command"], "--max-blob-size", spec.resources.model_storage]
    container["env"] = [*container.get("env", []), {"name": "HOME", "value": "/tmp"}]
    container["volumeMounts"] = [*container["volumeMounts"], {"name": "fetch-tmp", "mountPath": "/tmp"}]
    if auth_secret is not None:
        container["volumeMounts"].append({"name": REGISTRY_AUTH_VOLUME, "mountPath": REGISTRY_AUTH_MOUNT,
                                          "readOnly": True})
    container["resources"] = _copy(INIT_RESOURCES)
    container["securityContext"] = _security()
    return container


def runtime_container(spec: ModelSpec, where: Placement, model_mount: str = MODEL_MOUNT) -> Obj:
    """The model server, reading the artifact from the read-only model volume."""
    command, args, env, health, live = _runtime_command(spec, where)
    runtime = spec.runtime
    args = [*args, *runtime.extra_args]
    env = {"HOME": "/tmp", **env, **runtime.env}
    resources = spec.resources
    requests: Obj = {"cpu": resources.cpu, "memory": resources.memory}
    limits: Obj = {"cpu": resources.cpu_limit or resources.cpu, "memory": resources.memory_limit or resources.memory}
    if where.gpu is not None:
        requests[where.gpu.resource] = str(where.gpu.count)
        limits[where.gpu.resource] = str(where.gpu.count)
    mounts = [{"name": "model", "mountPath": model_mount, "readOnly": True},
              {"name": "runtime-tmp", "mountPath": "/tmp"}]
    if where.gpu is not None:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    port = where.runtime.port
    # Large models load for minutes; the startup probe holds liveness off until then.
    startup_failures = -(-startup_seconds(spec, where.gpu is not None) // STARTUP_PERIOD_SECONDS)
    container: Obj = {
        "name": "runtime",
        "image": where.runtime.image,
        "command": command,
        "args": args,
        "env": [{"name": name, "value": value} for name, value in env.items()],
        "ports": [{"name": "runtime", "containerPort": port, "protocol": "TCP"}],
        "startupProbe": _probe(health, port, period=STARTUP_PERIOD_SECONDS, failures=startup_failures),
        "readinessProbe": _probe(health, port, period=5, failures=3),
        "livenessProbe": _probe(live, port, period=10, failures=3),
        "resources": {"requests": requests, "limits": limits},
        "securityContext": _security(),
        "volumeMounts": mounts,
    }
    if not command:
        del container["command"]
    return container


def startup_seconds(spec: ModelSpec, gpu: bool) -> int:
    """How long the runtime may take to load the model before liveness counts: sized by the model volume."""
    model_bytes = int(quantity_value(spec.resources.model_storage))
    return STARTUP_BASE_SECONDS[gpu] + -(-model_bytes // STARTUP_LOAD_BYTES_PER_SECOND)


def runtime_routes(spec: ModelSpec) -> tuple[str, str]:
    """The runtime's own readiness and liveness routes."""
    runtime = spec.runtime
    if isinstance(runtime, (MlserverRuntime, TritonRuntime)):
        # Both speak the Open Inference Protocol's health API.
        return "/v2/health/ready", "/v2/health/live"
    if isinstance(runtime, VllmRuntime):
        # vLLM's OpenAI-compatible server has one health route, 200 once the engine is up.
        return "/health", "/health"
    assert isinstance(runtime, CustomRuntime)
    return runtime.health_path, runtime.health_path


def _runtime_command(spec: ModelSpec, where: Placement) -> tuple[list[str], list[str], dict[str, str], str, str]:
    """Command, arguments, environment, readiness and liveness paths of each runtime variant."""
    runtime = spec.runtime
    port = str(where.runtime.port)
    if isinstance(runtime, MlserverRuntime):
        env = {
            "MLSERVER_HTTP_PORT": port,
            "MLSERVER_MODEL_NAME": spec.name,
            "MLSERVER_MODEL_VERSION": spec.version,
            "MLSERVER_MODEL_IMPLEMENTATION": MLSERVER_IMPLEMENTATIONS[runtime.name],
            "MLSERVER_MODEL_URI": f"{MODEL_DIR}/{runtime.effective_model_file}",
        }
        return ["mlserver"], ["start", MODEL_DIR], env, *runtime_routes(spec)
    if isinstance(runtime, TritonRuntime):
        args = [f"--model-repository={MODEL_DIR}/{runtime.model_repository}", f"--http-port={port}",
                "--allow-grpc=false", "--allow-metrics=false"]
        return ["tritonserver"], args, {}, *runtime_routes(spec)
    if isinstance(runtime, VllmRuntime):
        weights = MODEL_DIR if runtime.model_path == "." else f"{MODEL_DIR}/{runtime.model_path}"
        args = ["serve", weights, "--served-model-name", spec.name, "--host", "0.0.0.0", "--port", port,
                "--gpu-memory-utilization", f"{runtime.gpu_memory_utilization:g}",
                "--tensor-parallel-size", str(runtime.tensor_parallel_size)]
        if runtime.max_model_len is not None:
            args += ["--max-model-len", str(runtime.max_model_len)]
        # The weights come from the artifact; the pod must never reach for the Hugging Face hub.
        env = {"HF_HOME": "/tmp/huggingface", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
        return ["vllm"], args, env, *runtime_routes(spec)
    assert isinstance(runtime, CustomRuntime)
    return list(runtime.command), list(runtime.args), {}, *runtime_routes(spec)


def sidecar_container(spec: ModelSpec, profile: Profile, where: Placement, model_mount: str = MODEL_MOUNT) -> Obj:
    """The Shipway sidecar on the serving port: proxy, drift, delayed-label accuracy, metrics.

    Its probes answer on the metrics port, which is not proxied; delayed labels come in on a port
    of their own, which the NetworkPolicy opens only to the team's namespace.
    """
    args = ["shipway", "sidecar", "--listen", f"0.0.0.0:{SIDECAR_PORT}",
            "--upstream", f"http://127.0.0.1:{where.runtime.port}", "--model", spec.name, "--version", spec.version,
            "--metrics-listen", f"0.0.0.0:{SIDECAR_METRICS_PORT}",
            "--feedback-listen", f"0.0.0.0:{SIDECAR_FEEDBACK_PORT}",
            "--runtime-ready-path", runtime_routes(spec)[0]]
    if spec.drift is not None:
        args += ["--reference", f"{MODEL_DIR}/{spec.drift.reference_profile}",
                 "--window-rows", str(spec.drift.window_rows)]
        args += [item for feature in spec.drift.features for item in ("--feature", feature)]
    if spec.accuracy is not None:
        args += ["--accuracy-window", str(spec.accuracy.window), "--min-labels", str(spec.accuracy.min_labels),
                 "--label-ttl", _number(label_ttl_seconds(spec.accuracy.label_delay))]
    else:
        # No labels will come, so no prediction needs to wait for one.
        args += ["--pending-limit", "0"]
    args += sidecar_slo_args(spec)
    return {
        "name": "sidecar",
        "image": shipway_image(profile),
        "command": args,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "ports": [{"name": "http", "containerPort": SIDECAR_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": SIDECAR_METRICS_PORT, "protocol": "TCP"},
                  {"name": "feedback", "containerPort": SIDECAR_FEEDBACK_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe(SIDECAR_READINESS_PATH, SIDECAR_METRICS_PORT, period=5, failures=3),
        "livenessProbe": _probe(SIDECAR_LIVENESS_PATH, SIDECAR_METRICS_PORT, period=10, failures=3),
        "resources": _copy(SIDECAR_RESOURCES),
        "securityContext": _security(),
        "volumeMounts": [{"name": "model", "mountPath": model_mount, "readOnly": True},
                         {"name": "sidecar-tmp", "mountPath": "/tmp"}],
    }


def sidecar_slo_args(spec: ModelSpec) -> list[str]:
    """The model's own SLO thresholds as sidecar flags; the sidecar exports them for the platform's alerts.

    Only overrides are passed: a threshold the spec leaves out has no gauge, so the alerts
    follow the platform default, even after the blueprint changes it.
    """
    flags = [("--slo-latency-p99-ms", spec.slo.latency_p99_ms), ("--slo-error-rate", spec.slo.error_rate)]
    if spec.drift is not None:
        flags += [("--slo-drift-psi", spec.drift.threshold), ("--slo-drift-min-rows", spec.drift.min_rows)]
    if spec.accuracy is not None:
        flags.append(("--slo-accuracy-floor", spec.accuracy.floor))
    return [item for flag, value in flags if value is not None for item in (flag, _number(value))]


def label_ttl_seconds(label_delay: str) -> float:
    """How long the sidecar keeps a prediction for its label: the spec's labelDelay with a margin."""
    seconds = sum(int(amount) * _DURATION_SECONDS[unit]
                  for amount, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", label_delay))
    return seconds * LABEL_TTL_MARGIN


def _number(value: float) -> str:
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


def _probe(path: str, port: int, period: int, failures: int) -> Obj:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures,
            "timeoutSeconds": 3}


def _copy(value: Obj) -> Obj:
    return {key: dict(item) for key, item in value.items()}


# --- services, monitoring, guards -------------------------------------------------------


def services(spec: ModelSpec, where: Placement) -> list[Obj]:
    """The traffic Services of the strategy, and a headless Service Prometheus scrapes every pod through.

    A canary has three: stable and canary, whose selectors Argo Rollouts pins to their ReplicaSets (the
    route's two weighted backends), and the client Service `<model>`, which selects both. Without a
    gateway, in-cluster clients reach the canary through it, in proportion to its pods.
    """
    roles = {"canary": [("client", spec.name), ("stable", f"{spec.name}-stable"), ("canary", f"{spec.name}-canary")],
             "blue-green": [("active", spec.name), ("preview", f"{spec.name}-preview")]}.get(
        where.strategy, [("stable", spec.name)])
    objects = [_service(spec, where, name, role, {"name": "http", "port": SERVICE_PORT, "targetPort": "http"})
               for role, name in roles]
    metrics = _service(spec, where, f"{spec.name}-metrics", "metrics",
                       {"name": "metrics", "port": SIDECAR_METRICS_PORT, "targetPort": "metrics"})
    if scrapes_runtime(spec):
        metrics["spec"]["ports"].append({"name": RUNTIME_METRICS_PORT_NAME, "port": where.runtime.port,
                                         "targetPort": "runtime", "protocol": "TCP"})
    # Headless, so the canary and stable Services do not scrape the same pods twice.
    metrics["spec"]["clusterIP"] = "None"
    # Delayed labels reach every pod of the model through this Service, from the team's namespace only.
    feedback = _service(spec, where, f"{spec.name}-feedback", "feedback",
                        {"name": "feedback", "port": SIDECAR_FEEDBACK_PORT, "targetPort": "feedback"})
    return [*objects, metrics, feedback]


def scrapes_runtime(spec: ModelSpec) -> bool:
    """Whether the runtime's own Prometheus metrics are scraped too (vLLM: engine, cache and queue metrics)."""
    return isinstance(spec.runtime, VllmRuntime)


def _service(spec: ModelSpec, where: Placement, name: str, role: str, port: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, where.namespace, {**labels(spec), ROLE_LABEL: role}),
        "spec": {"type": "ClusterIP", "selector": selector(spec), "ports": [{**port, "protocol": "TCP"}]},
    }


def service_monitor(spec: ModelSpec, profile: Profile, where: Placement) -> Obj:
    """A ServiceMonitor for the sidecar's metrics, labelled so the platform's Prometheus selects it."""
    selector_labels = profile.get("prometheus", {}).get("selectorLabels", {})
    endpoints: list[Obj] = [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    if scrapes_runtime(spec):
        # The runtime labels its series by served model only; the pod's version label tells canary from stable.
        endpoints.append({"port": RUNTIME_METRICS_PORT_NAME, "path": "/metrics", "interval": "15s",
                          "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_label_shipway_dev_version"],
                                           "targetLabel": "version"}]})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(spec.name, where.namespace, {**labels(spec), **selector_labels}),
        "spec": {
            "selector": {"matchLabels": {**selector(spec), ROLE_LABEL: "metrics"}},
            "namespaceSelector": {"matchNames": [where.namespace]},
            "endpoints": endpoints,
        },
    }


def disruption_budget(spec: ModelSpec, where: Placement) -> Obj:
    """Voluntary evictions (node drains) take at most one replica at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(spec.name, where.namespace, labels(spec)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec)}},
    }


def autoscaler(spec: ModelSpec, where: Placement) -> Obj:
    """A HorizontalPodAutoscaler on the runtime container's CPU, between the replica bounds."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec.name, where.namespace, labels(spec)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": spec.name},
            "minReplicas": spec.replicas.min,
            "maxReplicas": spec.replicas.max,
            "metrics": [{"type": "ContainerResource", "containerResource": {
                "name": "cpu", "container": "runtime",
                "target": {"type": "Utilization", "averageUtilization": spec.replicas.target_cpu_utilization}}}],
        },
    }


def gateway_on(profile: Profile) -> bool:
    """Whether the platform routes models through its shared Gateway (profiles older than the gateway do not)."""
    return bool(profile.get("gateway", {}).get("enabled", False))


def route_timeout(where: Placement) -> str:
    """How long the gateway waits for a whole response: LLM completions stream for minutes."""
    return "600s" if where.runtime.protocol == "openai" else "60s"


def routes(spec: ModelSpec, profile: Profile, where: Placement) -> list[Obj]:
    """The model's HTTPRoutes on the shared Gateway: one per environment, plus a preview route for blue-green.

    A canary's route carries both backends, stable at 100 and canary at 0; Argo Rollouts' Gateway API
    plugin sets their weights at each step. Blue-green's route points at the active Service, which Argo
    Rollouts switches to the new pods at promotion, so the route switches with it.
    """
    if not gateway_on(profile):
        return []
    if where.strategy == "canary":
        backends = [(f"{spec.name}-stable", 100), (f"{spec.name}-canary", 0)]
        found = [_route(spec, profile, where, spec.name, spec.name, backends)]
    else:
        found = [_route(spec, profile, where, spec.name, spec.name, [(spec.name, None)])]
    if where.strategy == "blue-green":
        preview = f"{spec.name}-preview"
        found.append(_route(spec, profile, where, preview, preview, [(preview, None)]))
    return found


def _route(spec: ModelSpec, profile: Profile, where: Placement, name: str, host_name: str,
           backends: list[tuple[str, int | None]]) -> Obj:
    gateway = profile["gateway"]
    scheme = gateway["routes"].get(spec.team, {}).get(where.environment)
    if scheme is None:
        raise RenderRefused(f'the platform\'s gateway has no listener for team "{spec.team}" in '
                            f'"{where.environment}"; the platform profile is stale, run `shipway synth` again')
    host = scheme["host"].replace("{model}", host_name)
    path = scheme["path"].replace("{model}", host_name)
    if any(len(label) > 63 for label in host.split(".")):
        raise RenderRefused(f'route host "{host}" has a name longer than 63 characters; shorten the model name')
    rule: Obj = {
        "matches": [{"path": {"type": "PathPrefix", "value": path}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": backend, "port": SERVICE_PORT,
                         **({"weight": weight} if weight is not None else {})} for backend, weight in backends],
        "timeouts": {"request": route_timeout(where)},
    }
    if path != "/":
        # The model serves at its root (/v2/..., /v1/...); the route's prefix is the gateway's business.
        rule["filters"] = [{"type": "URLRewrite",
                            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(name, where.namespace, labels(spec)),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"],
                            "namespace": gateway["namespace"], "sectionName": scheme["listener"]}],
            "hostnames": [host],
            "rules": [rule],
        },
    }


def file_name(obj: Obj) -> str:
    """The file an object is written to in a rendered folder: kind-name.yaml."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


__all__ = ["render", "labels", "selector", "artifact_reference", "file_name"]
