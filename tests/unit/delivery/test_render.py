"""Rendering: security defaults, labels, strategies, GPU placement and each refusal with its reason."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from delivery_cases import CASES, model, profile_of
from shipway.artifacts.layout import init_container_args
from shipway.delivery.errors import RenderRefused
from shipway.delivery.render import MODEL_DIR, REGISTRY_AUTH_MOUNT, REGISTRY_AUTH_VOLUME, render
from shipway import catalog
from shipway.render import node_cache
from shipway.render.registry import PULL_SECRET
from shipway.spec.model import ModelSpec

LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
          "app.kubernetes.io/component", "app.kubernetes.io/part-of", "shipway.dev/model", "shipway.dev/version",
          "shipway.dev/team")
DIGEST = "sha256:" + "5d" * 32


def _objects(case: str) -> list[dict[str, Any]]:
    blueprint, environment, stable = CASES[case]
    return render(model(case), profile_of(blueprint), environment, stable)


def _pod(case: str) -> dict[str, Any]:
    return _objects(case)[0]["spec"]["template"]["spec"]


def _spec(case: str, **changes: Any) -> ModelSpec:
    data = model(case).model_dump(by_alias=True, exclude_unset=True)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return ModelSpec.model_validate(data)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_container_is_restricted_and_bounded(case: str) -> None:
    pod = _pod(case)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    containers = pod["initContainers"] + pod["containers"]
    assert [c["name"] for c in containers] == ["fetch-model", "runtime", "sidecar"]
    for container in containers:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert security["readOnlyRootFilesystem"] is True
        resources = container["resources"]
        assert set(resources["requests"]) >= {"cpu", "memory"} and set(resources["limits"]) >= {"cpu", "memory"}
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert "/tmp" in writable, f"{container['name']} has no writable /tmp on a read-only root"
    emptydirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    # Besides scratch space, a pod mounts only the registry pull secret, read-only, into the init container.
    assert emptydirs | {REGISTRY_AUTH_VOLUME} >= {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_carries_the_stable_labels(case: str) -> None:
    spec = model(case)
    for obj in _objects(case):
        labels = obj["metadata"]["labels"]
        assert all(key in labels for key in LABELS), f"{obj['kind']} lacks {set(LABELS) - set(labels)}"
        assert labels["shipway.dev/version"] == spec.version and labels["app.kubernetes.io/part-of"] == "shipway"


def test_the_init_container_is_the_artifact_layouts_pull_with_digest_checks(kind_profile: dict) -> None:
    fetch = _pod("canary-sklearn")["initContainers"][0]
    ref = "oci://zot.shipway-registry.svc.cluster.local:5000/fraud/churn:1.2.0"
    assert fetch["command"] == [*init_container_args(ref, "/models", "model", plain_http=True,
                                                     docker_config=f"{REGISTRY_AUTH_MOUNT}/config.json"),
                                "--max-blob-size", "10Gi"]
    assert {"name": "model", "mountPath": "/models"} in fetch["volumeMounts"]
    model_volume = next(v for v in _pod("canary-sklearn")["volumes"] if v["name"] == "model")
    # Issue #16 finding 2: a blob larger than the volume it lands in is refused before a byte is fetched.
    assert model_volume == {"name": "model", "emptyDir": {"sizeLimit": "10Gi"}}


@pytest.mark.parametrize("case", ["canary-sklearn", "sklearn-none"])
def test_the_init_container_pulls_with_the_platforms_pull_secret_by_default(case: str) -> None:
    blueprint, _, _ = CASES[case]
    secret = profile_of(blueprint)["registry"]["pullSecret"]
    assert secret == PULL_SECRET
    pod = _pod(case)
    fetch = pod["initContainers"][0]
    assert fetch["command"][fetch["command"].index("--docker-config") + 1] == f"{REGISTRY_AUTH_MOUNT}/config.json"
    assert {"name": REGISTRY_AUTH_VOLUME, "mountPath": REGISTRY_AUTH_MOUNT, "readOnly": True} in fetch["volumeMounts"]
    assert all(m["name"] != REGISTRY_AUTH_VOLUME for c in pod["containers"] for m in c["volumeMounts"])
    volume = next(v for v in pod["volumes"] if v["name"] == REGISTRY_AUTH_VOLUME)
    assert volume["secret"] == {"secretName": secret, "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}
    assert pod["imagePullSecrets"] == [{"name": secret}]


def test_a_models_own_credentials_replace_the_platform_secret_for_the_pull() -> None:
    pod = _pod("llm-vllm-mig")  # names artifactCredentialsSecret: registry-reader
    fetch = pod["initContainers"][0]
    assert "--docker-config" not in fetch["command"]
    assert {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in fetch["env"] if "valueFrom" in e} == {
        "SHIPWAY_REGISTRY_USERNAME": "registry-reader", "SHIPWAY_REGISTRY_PASSWORD": "registry-reader"}
    assert all(v["name"] != REGISTRY_AUTH_VOLUME for v in pod["volumes"])


def test_an_artifact_on_another_registry_gets_no_platform_credentials(kind_profile: dict) -> None:
    spec = _spec("canary-sklearn", artifact="oci://elsewhere.example.com/fraud/churn")
    pod = render(spec, kind_profile, "staging")[0]["spec"]["template"]["spec"]
    assert "--docker-config" not in pod["initContainers"][0]["command"]
    assert all(v["name"] != REGISTRY_AUTH_VOLUME for v in pod["volumes"])


def test_a_profile_from_before_pull_secrets_keeps_the_old_behaviour(kind_profile: dict) -> None:
    legacy = copy.deepcopy(kind_profile)
    del legacy["registry"]["pullSecret"]
    pod = render(model("canary-sklearn"), legacy, "staging", "1.1.0")[0]["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in pod and "--docker-config" not in pod["initContainers"][0]["command"]
    legacy["registry"]["type"] = "external"
    pod = render(model("canary-sklearn"), legacy, "staging", "1.1.0")[0]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": PULL_SECRET}]


def test_the_sidecar_serves_the_traffic_port_in_front_of_the_runtime() -> None:
    objects = _objects("canary-sklearn")
    sidecar = objects[0]["spec"]["template"]["spec"]["containers"][1]
    command = sidecar["command"]
    assert command[:2] == ["shipway", "sidecar"]
    assert command[command.index("--upstream") + 1] == "http://127.0.0.1:8080"
    assert command[command.index("--reference") + 1] == "/models/model/reference-profile.json"
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == {"http": 8090, "metrics": 9091,
                                                                         "feedback": 9092}
    assert command[command.index("--feedback-listen") + 1] == "0.0.0.0:9092"
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(services) == {"churn", "churn-stable", "churn-canary", "churn-metrics", "churn-feedback"}
    assert services["churn-feedback"]["spec"]["ports"][0]["targetPort"] == "feedback"
    assert services["churn"]["spec"]["ports"][0]["targetPort"] == "http"
    monitor = next(o for o in objects if o["kind"] == "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"]["shipway.dev/service-role"] == "metrics"


def test_canary_steps_pause_and_analysis_references_the_platform_templates() -> None:
    canary = _objects("canary-sklearn")[0]["spec"]["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 10}, {"pause": {"duration": "2m"}},
                               {"setWeight": 50}, {"pause": {"duration": "5m"}}]
    analysis = canary["analysis"]
    assert [t["templateName"] for t in analysis["templates"]] == [
        "shipway-model-error-rate", "shipway-model-latency", "shipway-model-drift", "shipway-model-accuracy"]
    assert all(t["clusterScope"] for t in analysis["templates"])
    args = {a["name"]: a["value"] for a in analysis["args"]}
    assert args["canary-version"] == "1.2.0" and args["stable-version"] == "1.1.0"
    assert args["namespace"] == "fraud-staging" and args["model"] == "churn"


def test_the_platform_default_canary_steps_apply_when_the_model_names_none() -> None:
    steps = _objects("llm-vllm-mig")[0]["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [5, 25, 50]
    templates = _objects("llm-vllm-mig")[0]["spec"]["strategy"]["canary"]["analysis"]["templates"]
    assert "shipway-model-drift" not in [t["templateName"] for t in templates]  # the LLM watches no drift


def test_blue_green_has_pre_promotion_analysis_and_active_and_preview_services() -> None:
    objects = _objects("blue-green-xgboost")
    blue_green = objects[0]["spec"]["strategy"]["blueGreen"]
    assert (blue_green["activeService"], blue_green["previewService"]) == ("fraud-score", "fraud-score-preview")
    assert blue_green["autoPromotionSeconds"] == 300
    assert blue_green["prePromotionAnalysis"]["templates"][0]["templateName"] == "shipway-model-error-rate"
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Service"} == {
        "fraud-score", "fraud-score-preview", "fraud-score-metrics", "fraud-score-feedback"}
    assert "HorizontalPodAutoscaler" not in [o["kind"] for o in objects]  # min == max


def test_no_rollout_is_a_plain_rolling_update_with_one_service() -> None:
    objects = _objects("sklearn-none")
    assert objects[0]["spec"]["strategy"] == {"canary": {"maxSurge": 1, "maxUnavailable": 0}}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Service"] == ["churn-basic", "churn-basic-metrics",
                                                                                    "churn-basic-feedback"]


def test_a_gpu_llm_on_a_mig_slice_requests_the_slice_and_is_pinned_to_its_pool() -> None:
    pod = _pod("llm-vllm-mig")
    runtime = pod["containers"][0]
    assert runtime["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert runtime["resources"]["requests"]["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in runtime["resources"]["limits"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "shipway.dev/pool", "operator": "In", "values": ["h100"]}]}]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                   "effect": "NoSchedule"}]
    assert runtime["args"][:2] == ["serve", "/models/model"] and "--max-model-len" in runtime["args"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in runtime["volumeMounts"]


def test_whole_gpus_on_a_pool_without_mig(kind_profile: dict) -> None:
    spec = _spec("canary-sklearn", runtime={"name": "triton"}, resources={"gpus": 1, "gpuPool": "gpu-small"},
                 replicas={"min": 1, "max": 1})
    runtime = render(spec, kind_profile, "staging")[0]["spec"]["template"]["spec"]["containers"][0]
    assert runtime["resources"]["limits"]["nvidia.com/gpu"] == "1"


def _sidecar_command(spec: ModelSpec, case: str = "canary-sklearn") -> list[str]:
    blueprint, environment, stable = CASES[case]
    pod = render(spec, profile_of(blueprint), environment, stable)[0]["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "sidecar")["command"]


def _flags(command: list[str], prefix: str) -> dict[str, str]:
    return {flag: command[index + 1] for index, flag in enumerate(command) if flag.startswith(prefix)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_model_prometheus_rule_doubles_the_platforms_slo_alerts(case: str) -> None:
    assert "PrometheusRule" not in {obj["kind"] for obj in _objects(case)}


def test_the_sidecar_exports_only_the_slos_the_model_overrides() -> None:
    commands = {case: _sidecar_command(model(case), case) for case in CASES}
    assert _flags(commands["blue-green-xgboost"], "--slo-") == {
        "--slo-latency-p99-ms": "150", "--slo-error-rate": "0.002", "--slo-drift-psi": "0.3",
        "--slo-drift-min-rows": "500"}
    assert _flags(commands["canary-sklearn"], "--slo-") == {
        "--slo-drift-psi": "0.25", "--slo-drift-min-rows": "500", "--slo-accuracy-floor": "0.9"}
    assert _flags(commands["llm-vllm-mig"], "--slo-") == {"--slo-latency-p99-ms": "4000",
                                                          "--slo-accuracy-floor": "0.6"}
    assert _flags(commands["sklearn-none"], "--slo-") == {}


def test_every_rendered_sidecar_command_parses_with_the_real_cli() -> None:
    import typer
    from typer.main import get_command

    from shipway.cli import sidecar as sidecar_cli

    app = typer.Typer()
    app.command("sidecar")(sidecar_cli.sidecar)
    specs = {case: model(case) for case in CASES}
    specs["two-watched-features"] = _spec("canary-sklearn", drift__features=["age", "plan"])
    for case, spec in specs.items():
        command = _sidecar_command(spec, case if case in CASES else "canary-sklearn")
        params = get_command(app).make_context("sidecar", command[2:]).params
        assert params["model"] == spec.name, case
        assert list(params["features"]) == (spec.drift.features if spec.drift else []), case


def test_the_sidecar_watches_the_drift_features_the_model_names() -> None:
    watching = _sidecar_command(_spec("canary-sklearn", drift__features=["age", "plan"]))
    assert [watching[index + 1] for index, flag in enumerate(watching) if flag == "--feature"] == ["age", "plan"]
    every = _sidecar_command(_spec("canary-sklearn", drift__features=[]))
    assert "--feature" not in every and "--reference" in every


@pytest.mark.parametrize(("delay", "ttl"), [("24h", "129600"), ("90m", "8100"), ("2d", "259200"),
                                            ("1h30m", "8100"), ("45s", "67.5")])
def test_predictions_wait_for_labels_as_long_as_label_delay_with_a_margin(delay: str, ttl: str) -> None:
    command = _sidecar_command(_spec("canary-sklearn", accuracy__labelDelay=delay))
    assert command[command.index("--label-ttl") + 1] == ttl
    # Memory stays bounded however long the wait: the sidecar's --pending-limit caps predictions held.
    without_labels = _sidecar_command(model("sklearn-none"), "sklearn-none")
    assert "--label-ttl" not in without_labels
    # A model that takes no labels keeps no predictions waiting for them.
    assert without_labels[without_labels.index("--pending-limit") + 1] == "0"


def test_a_model_brings_no_network_policy_of_its_own() -> None:
    """Issue #16 finding 6: NetworkPolicy is not a kind teams may sync; the platform's policies in the team
    namespace admit the gateway on the serving port only (tests/unit/layers/test_tenancy.py)."""
    assert "NetworkPolicy" not in {o["kind"] for o in _objects("canary-sklearn")}


# --- refusals ---------------------------------------------------------------------------


def _refused(spec: ModelSpec, profile: dict, environment: str = "staging") -> str:
    with pytest.raises(RenderRefused) as raised:
        render(spec, profile, environment)
    return str(raised.value)


def test_gpus_over_the_team_quota_are_refused_with_the_arithmetic(kind_profile: dict) -> None:
    spec = _spec("canary-sklearn", runtime={"name": "triton"}, resources={"gpus": 1, "gpuPool": "gpu-large"},
                 team="search", replicas={"min": 1, "max": 2})
    message = _refused(spec, kind_profile)
    assert "needs up to 3 GPUs (1 per replica x 3 pods" in message and "GPU quota of 1" in message


def test_blue_green_counts_the_preview_against_the_quota(kind_profile: dict) -> None:
    spec = _spec("blue-green-xgboost", resources={"gpus": 2, "gpuPool": "gpu-small"}, replicas={"min": 1, "max": 1})
    assert "up to 4 GPUs (2 per replica x 2 pods at replicas.max, with the blue-green preview" in _refused(
        spec, kind_profile)


def test_an_unknown_pool_is_refused_naming_the_pools(kind_profile: dict) -> None:
    spec = _spec("canary-sklearn", resources={"gpus": 1, "gpuPool": "h100"}, replicas={"min": 1, "max": 1})
    assert 'no GPU pool named "h100"' in (message := _refused(spec, kind_profile))
    assert "gpu-large, gpu-small" in message


def test_a_pool_the_team_may_not_use_is_refused(kind_profile: dict) -> None:
    spec = _spec("canary-sklearn", team="search", resources={"gpus": 1, "gpuPool": "gpu-small"},
                 replicas={"min": 1, "max": 1})
    assert 'team "search" may not use pool "gpu-small"' in _refused(spec, kind_profile)


def test_more_gpus_than_a_node_has_are_refused(eks_profile: dict) -> None:
    spec = _spec("canary-sklearn", team="fraud", resources={"gpus": 2, "gpuPool": "a10g"},
                 replicas={"min": 1, "max": 1})
    assert "a node of pool \"a10g\" offers 1" in _refused(spec, eks_profile)


def test_a_mig_pool_needs_a_mig_profile_and_a_whole_gpu_pool_refuses_one(eks_profile: dict) -> None:
    whole = _spec("llm-vllm-mig", resources={"gpus": 1, "gpuPool": "h100"})
    assert "set migProfile to 1g.10gb" in _refused(whole, eks_profile)
    wrong = _spec("llm-vllm-mig", resources={"gpus": 1, "gpuPool": "h100", "migProfile": "3g.40gb"})
    assert "offers MIG slices 1g.10gb, not 3g.40gb" in _refused(wrong, eks_profile)
    not_mig = _spec("canary-sklearn", resources={"gpus": 1, "gpuPool": "a10g", "migProfile": "1g.10gb"},
                    replicas={"min": 1, "max": 1})
    assert 'pool "a10g" is not partitioned with MIG' in _refused(not_mig, eks_profile)


def test_a_gpu_runtime_without_gpus_is_refused(eks_profile: dict) -> None:
    spec = _spec("llm-vllm-mig", resources={"gpus": 0})
    assert 'runtime "vllm" needs a GPU' in _refused(spec, eks_profile)


def test_unknown_team_environment_and_runtime_are_refused(kind_profile: dict) -> None:
    assert 'team: "growth" is not a team' in _refused(_spec("sklearn-none", team="growth"), kind_profile)
    assert 'environment "qa" is not one of' in _refused(model("sklearn-none"), kind_profile, "qa")
    trimmed = copy.deepcopy(kind_profile)
    del trimmed["runtimes"]["sklearn"]
    assert 'runtime: "sklearn" is not in the platform\'s runtime catalog' in _refused(model("sklearn-none"), trimmed)


def test_a_platform_without_rollouts_is_refused(kind_profile: dict) -> None:
    off = copy.deepcopy(kind_profile)
    off["rollouts"]["enabled"] = False
    assert "does not run Argo Rollouts" in _refused(model("sklearn-none"), off)


def test_mig_slices_count_against_the_quota_the_namespace_enforces(eks_profile: dict) -> None:
    from shipway.render import tenancy
    from shipway.spec import load_blueprint

    from delivery_cases import ROOT

    blueprint = load_blueprint(ROOT / "blueprints" / "eks-prod.yaml")
    [team] = [t for t in blueprint.teams if t.name == "llm"]
    hard = tenancy.resource_quota(team, "llm-staging", tenancy.gpu_resources(blueprint, team))["spec"]["hard"]
    assert eks_profile["teams"]["llm"]["gpuQuotaResources"] == tenancy.gpu_resources(blueprint, team)
    limit = int(hard["requests.nvidia.com/mig-1g.10gb"])
    assert limit == eks_profile["teams"]["llm"]["gpuQuota"] == team.quota.gpus
    # Peak pods are replicas.max + 1 on a canary: exactly the quota renders, one slice more is refused.
    fits = _spec("llm-vllm-mig", replicas={"min": 1, "max": limit - 1})
    assert render(fits, eks_profile, "staging")
    message = _refused(_spec("llm-vllm-mig", replicas={"min": 1, "max": limit}), eks_profile)
    assert f"needs up to {limit + 1} GPUs" in message and "(requests.nvidia.com/mig-1g.10gb)" in message


def test_a_resource_the_quota_does_not_cap_is_refused(eks_profile: dict) -> None:
    stale = copy.deepcopy(eks_profile)
    stale["teams"]["llm"]["gpuQuotaResources"] = ["nvidia.com/gpu"]
    message = _refused(model("llm-vllm-mig"), stale)
    assert "nvidia.com/mig-1g.10gb, which team \"llm\"'s quota does not cap" in message


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_autoscaled_rollout_leaves_the_replica_count_to_the_autoscaler(case: str) -> None:
    objects = _objects(case)
    rollout = objects[0]["spec"]
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    if autoscalers:
        # Argo CD's self-heal would otherwise reset every scale-up to the replicas written in git.
        assert "replicas" not in rollout
        assert autoscalers[0]["spec"]["minReplicas"] == model(case).replicas.min
    else:
        assert rollout["replicas"] == model(case).replicas.min


def _digest_pod(case: str, digest: str = DIGEST, profile: dict[str, Any] | None = None, **changes: Any) -> dict:
    blueprint, environment, stable = CASES[case]
    objects = render(_spec(case, **changes), profile or profile_of(blueprint), environment, stable,
                     artifact_digest=digest)
    return objects[0]["spec"]["template"]["spec"]


# Models that name a Secret of their own (llm-vllm-mig) keep the init container: see below.
PLATFORM_PULLED = sorted(case for case in CASES if model(case).artifact_credentials_secret is None)


@pytest.mark.parametrize("case", PLATFORM_PULLED)
def test_a_model_by_digest_mounts_through_the_node_caches_csi_driver_with_nothing_to_fetch(case: str) -> None:
    """Issue #16 finding 7: the pod downloads nothing itself. The kubelet asks the node's plugin to mount the
    artifact by digest, with the team's pull secret, bounded by the spec's model storage."""
    blueprint, _, _ = CASES[case]
    profile = profile_of(blueprint)
    pod = _digest_pod(case)
    [volume] = [v for v in pod["volumes"] if v["name"] == "model"]
    repository = f"oci://{profile['registry']['url']}/{model(case).team}/{model(case).name}"
    assert volume == {"name": "model", "csi": {
        "driver": node_cache.DRIVER, "readOnly": True,
        "volumeAttributes": {"artifact": f"{repository}@{DIGEST}", "maxSize": model(case).resources.model_storage},
        "nodePublishSecretRef": {"name": PULL_SECRET}}}
    assert "initContainers" not in pod
    assert {v["name"] for v in pod["volumes"]}.isdisjoint({"fetch-tmp", REGISTRY_AUTH_VOLUME})
    # The volume holds the model's files at its root, where the runtime and sidecar look for them.
    for container in pod["containers"]:
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "model"]
        assert mount == {"name": "model", "mountPath": MODEL_DIR, "readOnly": True}
    assert pod["imagePullSecrets"] == [{"name": PULL_SECRET}]


@pytest.mark.parametrize("case", PLATFORM_PULLED)
def test_model_pods_with_the_csi_volume_pass_pod_security_restricted_and_the_kubernetes_schema(case: str) -> None:
    """kubernetes/pod-security-admission policy/check_restrictedVolumes.go (tag v0.35.6) lets restricted pods
    use csi volumes (restrictedVolumes_1_0: `volume.CSI != nil` is allowed), unlike hostPath; the pod is
    checked by shipway.charts.pod_security, which follows that check, and validated as a Pod of the catalog's
    Kubernetes version."""
    from shipway.charts.pod_security import violations

    blueprint, environment, stable = CASES[case]
    objects = render(model(case), profile_of(blueprint), environment, stable, artifact_digest=DIGEST)
    templates = [obj["spec"]["template"] for obj in objects if obj.get("spec", {}).get("template")]
    assert any("csi" in volume for template in templates for volume in template["spec"]["volumes"])
    for template in templates:
        assert violations(template.get("metadata", {}), template["spec"], "restricted") == []
        assert not any("hostPath" in volume for volume in template["spec"]["volumes"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "m", **template["metadata"]},
               "spec": template["spec"]}
        kubernetes_validate.validate(pod, f"{catalog.KUBERNETES_VERSION}.0", strict=True)


def test_a_model_by_tag_keeps_the_init_containers_pull(kind_profile: dict) -> None:
    """The plugin mounts by digest only (a tag may move between two pods' starts); promote commits digests,
    so only a render without one pulls, by tag, in the init container."""
    pod = render(_spec("canary-sklearn"), kind_profile, "staging")[0]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-model"]
    assert {"name": "model", "emptyDir": {"sizeLimit": "10Gi"}} in pod["volumes"]
    assert all("csi" not in volume for volume in pod["volumes"])
    assert "--node-cache" not in pod["initContainers"][0]["command"]


@pytest.mark.parametrize("changes", [
    {"artifact": "oci://elsewhere.example.com/fraud/churn"},  # the plugin pulls from the platform registry only
    {"artifactCredentialsSecret": "own-credentials"},  # not a dockerconfigjson the plugin could read
])
def test_an_artifact_the_plugin_cannot_pull_keeps_the_init_containers_pull(changes: dict[str, str]) -> None:
    pod = _digest_pod("canary-sklearn", **changes)
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-model"]
    assert all("csi" not in volume for volume in pod["volumes"])
    assert f"@{DIGEST}" in pod["initContainers"][0]["command"][3]


def test_a_platform_without_the_node_cache_or_with_an_older_profile_pulls_in_the_init_container() -> None:
    """Profiles before the CSI driver named the cache service's URL: that service and `model pull --node-cache`
    are gone, so such a profile means no node cache, and the pod pulls from the registry itself, as with the
    cache turned off, with a command the real `shipway model pull` accepts (no --node-cache)."""
    from cli_contract import check_command

    for cache in (None, "http://shipway-node-cache.shipway-cache.svc.cluster.local:5080"):
        profile = copy.deepcopy(profile_of("kind-dev"))
        if cache is None:
            del profile["registry"]["nodeCache"]
        else:
            profile["registry"]["nodeCache"] = cache
        pod = _digest_pod("canary-sklearn", profile=profile)
        assert [c["name"] for c in pod["initContainers"]] == ["fetch-model"]
        command = pod["initContainers"][0]["command"]
        assert command[0] == "shipway" and check_command(command[1:]) == "model pull"
        assert "--node-cache" not in command
        assert all("csi" not in volume for volume in pod["volumes"])


def test_an_artifact_on_the_platform_registry_outside_the_teams_path_is_refused() -> None:
    profile = profile_of("kind-dev")
    spec = _spec("canary-sklearn")
    outside = f"oci://{profile['registry']['url']}/models/{spec.team}/{spec.name}"
    with pytest.raises(RenderRefused, match=rf"only under {spec.team}/\. Push the model to"):
        render(_spec("canary-sklearn", artifact=outside), profile, "staging")
    inside = f"oci://{profile['registry']['url']}/{spec.team}/{spec.name}"
    assert render(_spec("canary-sklearn", artifact=inside), profile, "staging")
    # Another registry's layout is its owner's business.
    assert render(_spec("canary-sklearn", artifact=f"oci://registry.example.com/models/{spec.name}"), profile,
                  "staging")
