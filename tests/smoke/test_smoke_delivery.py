"""Delivery on the real road: `shipway init-gitops` and `shipway promote` into a GitOps repo Argo CD syncs.

The GitOps repo is made by `shipway init-gitops` from the dev stack's platform
profile (`shipway synth`), kept as a bare repo on the runner and served to the
cluster by `git daemon` in a container on kind's docker network. A sample sklearn
model is pushed to zot with `shipway model push`; `shipway promote --push` commits
its rendered objects (Rollout with the sidecar, Services, ServiceMonitor, ...) on a
promotion branch, and the test merges that branch into main as a pull request
would. The second version's canary takes its step's share of the requests sent through
the shared Gateway (https://127.0.0.1:<httpsPort> with the route's host as SNI and
Host, trusting the platform's CA): each response names the version that served it
(X-Shipway-Model-Version), so the canary's share is counted and held to the step's
weight within a stated tolerance, and the route's weights the Gateway API plugin
wrote are read back. Then the canary is judged by the platform's
ClusterAnalysisTemplates on that traffic: labels posted to the canary's sidecar
say the predictions it served through the Gateway are wrong, and the accuracy
breaker aborts it.

The model's pods mount it by digest through the node cache's CSI driver (no init container). The Shipway
image (the node cache's plugin and the sidecar) must be loaded into kind; the
workflow builds it from the root Dockerfile.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import testinfra
import yaml

from shipway.render import gateway, gitops, registry, serving
from shipway.sidecar.proxy import MODEL_VERSION_HEADER
from shipway.spec.model import SIDECAR_FEEDBACK_PORT
from smoke_support import BLUEPRINT, Cluster, run, team_identity, tool_problem, wait_until

pytestmark = pytest.mark.smoke

GIT_CONTAINER = "shipway-smoke-git"
GIT_IMAGE = "alpine/git:2.47.2"
MODEL = "smoke-model"
GOOD, BAD = "1.0.0", "1.1.0"
# The canary's one step. Envoy picks a weighted backend per request at random, so the canary's share of N
# requests is binomial; it must fall within TOLERANCE_SIGMAS standard deviations of the weight. At 20 % and
# 500 requests that is 0.20 +/- 0.08, which also tells exact weights from a split by pod count (1 of 2 = 0.5).
CANARY_WEIGHT = 20
SHARE_REQUESTS = 500
TOLERANCE_SIGMAS = 4.5
FEATURES = 4
ARGOCD = "argocd"
GROUP, VERSION = "argoproj.io", "v1alpha1"


@dataclass(frozen=True)
class Road:
    """The GitOps clone promotions go into, the URL the cluster fetches from, and where the model lives."""

    clone: Path
    url: str
    model_yaml: Path
    environment: str
    namespace: str
    folder: str
    registry_address: str = ""
    registry_env: dict[str, str] = field(default_factory=dict)
    cache_path: str = ""

    def promote(self, version: str) -> None:
        """`shipway promote --push` (the tag resolved to its digest through the runner's registry address),
        then merge the promotion branch into main as its pull request would."""
        run(["shipway", "promote", str(self.model_yaml), "--gitops-repo", str(self.clone), "--env", self.environment,
             "--version", version, "--push", "--registry-address", self.registry_address, "--plain-http"],
            timeout=300, env={**os.environ, **self.registry_env})
        git = ["git", "-C", str(self.clone)]
        branch = run([*git, "branch", "--show-current"]).stdout.strip()
        assert branch == f"promote/{self.environment}/{MODEL}-{version}", branch
        run([*git, "checkout", "--quiet", "main"])
        run([*git, "merge", "--quiet", "--ff-only", branch])
        run([*git, "push", "--quiet", "origin", "main"])

    def rendered(self, kind: str) -> dict[str, Any]:
        """One object of the model's folder on main, as promoted."""
        return yaml.safe_load((self.clone / self.folder / f"{kind.lower()}-{MODEL}.yaml").read_text())


def _sample_model(directory: Path) -> None:
    """A small sklearn classifier: the prediction is 1 when the first two features sum above zero."""
    import numpy as np
    from joblib import dump
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    rows = rng.normal(size=(2000, FEATURES))
    directory.mkdir(parents=True)
    dump(LogisticRegression().fit(rows, (rows[:, 0] + rows[:, 1] > 0).astype(int)), directory / "model.joblib")


def _model_spec(team: str) -> dict[str, Any]:
    # One long pause, so the background analysis decides the canary before the steps run out.
    return {
        "name": MODEL, "team": team, "version": GOOD, "runtime": "sklearn",
        "resources": {"cpu": "250m", "memory": "512Mi"},
        "replicas": {"min": 1, "max": 1},
        "rollout": {"strategy": "canary", "steps": [{"weight": CANARY_WEIGHT, "pause": "15m"}]},
        "accuracy": {"labelDelay": "5m", "window": 50, "minLabels": 20},
    }


@pytest.fixture(scope="module")
def road(cluster: Cluster, blueprint: Any, tmp_path_factory: pytest.TempPathFactory,
         registry_address: str) -> Iterator[Road]:
    """A GitOps repo from `shipway init-gitops`, served by git daemon, and the sample model pushed to zot."""
    problem = tool_problem("docker")
    if problem:
        pytest.skip(f"the GitOps repo container needs {problem}")
    root = tmp_path_factory.mktemp("road")
    run(["shipway", "synth", str(BLUEPRINT), "-o", str(root / "synth"), "--quiet"], timeout=600)
    run(["shipway", "init-gitops", str(root / "seed"), "--platform", str(root / "synth" / "platform.json")])
    run(["git", "clone", "--quiet", "--bare", str(root / "seed"), str(root / "gitops.git")])
    run(["git", "clone", "--quiet", str(root / "gitops.git"), str(root / "clone")])

    team = blueprint.teams[0]
    environment = blueprint.team_environments(team)[0]
    model_repo = root / "model"
    _sample_model(model_repo / "artifact")
    (model_repo / "model.yaml").write_text(yaml.safe_dump(_model_spec(team.name), sort_keys=False))
    # As the team's CI does: pushes with the team's push identity, promote reads with its pull identity.
    user, password = team_identity(team.name, "push")
    reader, reader_password = team_identity(team.name, "pull")
    for version in (GOOD, BAD):
        # Both versions carry the same model: what makes BAD bad is what its labels say.
        target = f"oci://{registry_address}/{team.name}/{MODEL}:{version}"
        run(["shipway", "model", "push", str(model_repo / "artifact"), target,
             "--model-yaml", str(model_repo / "model.yaml"), "--model-version", version, "--plain-http",
             "-u", user, "-p", password], timeout=300)

    subprocess.run(["docker", "rm", "-f", GIT_CONTAINER], capture_output=True, timeout=60)
    run(["docker", "run", "-d", "--name", GIT_CONTAINER, "--network", "kind", "-v", f"{root}:/srv/git:ro",
         GIT_IMAGE, "-c", "safe.directory=*", "daemon", "--reuseaddr", "--export-all", "--base-path=/srv/git",
         "/srv/git"], timeout=300)
    try:
        server = testinfra.get_host(f"docker://{GIT_CONTAINER}")
        wait_until(lambda: server.run("git ls-remote git://127.0.0.1/gitops.git").rc == 0, 60, "git daemon to serve")
        address = run(["docker", "inspect", "-f", "{{.NetworkSettings.Networks.kind.IPAddress}}", GIT_CONTAINER])
        yield Road(clone=root / "clone", url=f"git://{address.stdout.strip()}/gitops.git",
                   model_yaml=model_repo / "model.yaml", environment=environment,
                   namespace=team.namespace(environment),
                   folder=f"{blueprint.gitops.path}/{environment}/{team.name}/{MODEL}",
                   registry_address=registry_address,
                   registry_env={"SHIPWAY_REGISTRY_USERNAME": reader, "SHIPWAY_REGISTRY_PASSWORD": reader_password},
                   cache_path=blueprint.registry.node_cache.path)
    finally:
        subprocess.run(["docker", "rm", "-f", GIT_CONTAINER], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def registry_address(cluster: Cluster) -> Iterator[str]:
    """zot's service forwarded to 127.0.0.1 for the artifact pushes; stopped by PID afterwards."""
    with _port_forward(cluster, registry.NAMESPACE, f"svc/{registry.RELEASE}", registry.SERVICE_PORT) as port:
        yield f"127.0.0.1:{port}"


class _port_forward:
    """`kubectl port-forward` to a free local port, as a context manager yielding the port."""

    def __init__(self, cluster: Cluster, namespace: str, target: str, port: int) -> None:
        self.command = ["kubectl", "--context", cluster.context, "-n", namespace, "port-forward", target, f":{port}"]
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> int:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not found:
            self.__exit__()
            pytest.fail(f"`{' '.join(self.command)}` did not forward: {line.strip()}")
        return int(found.group(1))

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def model_app(cluster: Cluster, custom: Any, road: Road) -> Iterator[str]:
    """The model's Argo CD Application over its folder on main, once GOOD is promoted; deleted afterwards."""
    road.promote(GOOD)
    application = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
        "metadata": {"name": f"smoke-{MODEL}", "namespace": ARGOCD},
        "spec": {
            "project": "default",
            "source": {"repoURL": road.url, "targetRevision": "main", "path": road.folder},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": road.namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                           "syncOptions": ["RespectIgnoreDifferences=true"]},
            # As the platform's ApplicationSet does: the plugin owns the route's weights mid-rollout.
            "ignoreDifferences": [gitops.ROUTE_WEIGHTS_IGNORED],
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", application)
    yield f"smoke-{MODEL}"
    custom.delete_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", f"smoke-{MODEL}")


def refresh(custom: Any, name: str) -> None:
    """Ask Argo CD to look at the repo now instead of at its next poll."""
    patch = {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", name, patch)


def rollout_status(custom: Any, namespace: str) -> dict[str, Any]:
    try:
        return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", MODEL).get("status", {})
    except Exception:  # noqa: BLE001 - absent until Argo CD has synced it
        return {}


def _healthy_at(custom: Any, namespace: str, version: str) -> bool:
    status = rollout_status(custom, namespace)
    return status.get("phase") == "Healthy" and status.get("stableRS") == status.get("currentPodHash") and (
        _rollout_version(custom, namespace) == version)


def _rollout_version(custom: Any, namespace: str) -> str | None:
    try:
        rollout = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", MODEL)
    except Exception:  # noqa: BLE001
        return None
    return rollout["metadata"].get("labels", {}).get("shipway.dev/version")


def test_a_promoted_model_syncs_and_its_rollout_becomes_healthy(custom: Any, model_app: str, road: Road) -> None:
    refresh(custom, model_app)

    def synced() -> str | None:
        app = custom.get_namespaced_custom_object(GROUP, VERSION, ARGOCD, "applications", model_app)
        sync = app.get("status", {}).get("sync", {}).get("status")
        return sync if sync == "Synced" else None

    wait_until(synced, timeout=300, what=f"Application {model_app} Synced")
    # The runtime image is large and the node cache's plugin pulls the model on first use: allow for both.
    wait_until(lambda: _healthy_at(custom, road.namespace, GOOD), 900, f"Rollout {MODEL} {GOOD} Healthy")


def test_the_model_pod_gets_its_model_through_the_node_caches_csi_volume(
        cluster: Cluster, api_client: Any, core: Any, custom: Any, model_app: str, road: Road) -> None:
    """Issue #16 finding 7 on kind: promote commits the artifact's digest, so the pod mounts the model through
    the node cache's CSI driver instead of downloading it. Every node registered the driver with its kubelet
    (CSINode, written by node-driver-registrar); the pod has no init container; its containers read the model
    at the mount, which is read-only; and the node's cache folder holds the model for that digest."""
    from kubernetes import client

    from shipway.artifacts.cache import MODELS
    from shipway.delivery.render import MODEL_DIR
    from shipway.render import node_cache

    wait_until(lambda: _healthy_at(custom, road.namespace, GOOD), 900, f"Rollout {MODEL} {GOOD} Healthy")
    template = road.rendered("Rollout")["spec"]["template"]["spec"]
    [volume] = [v for v in template["volumes"] if v["name"] == "model"]
    assert volume["csi"]["driver"] == node_cache.DRIVER and "initContainers" not in template, template
    digest = volume["csi"]["volumeAttributes"]["artifact"].rpartition("@")[2]

    storage = client.StorageV1Api(api_client)
    for node in core.list_node().items:
        drivers = storage.read_csi_node(node.metadata.name).spec.drivers or []
        assert node_cache.DRIVER in {driver.name for driver in drivers}, f"{node.metadata.name}: {drivers}"

    pods = [pod for pod in core.list_namespaced_pod(
        road.namespace, label_selector=f"shipway.dev/model={MODEL},shipway.dev/version={GOOD}").items
        if pod.status.phase == "Running"]
    assert pods, f"no running pod of {MODEL} {GOOD}"
    pod = pods[0]
    assert not pod.spec.init_containers
    [mounted] = [v for v in pod.spec.volumes if v.name == "model"]
    assert mounted.csi is not None and mounted.csi.driver == node_cache.DRIVER
    sidecar = testinfra.get_host(cluster.testinfra_spec(pod.metadata.name, road.namespace, "sidecar"))
    assert sidecar.file(f"{MODEL_DIR}/model.joblib").is_file
    [mount] = [line.split() for line in sidecar.file("/proc/self/mountinfo").content_string.splitlines()
               if line.split()[4] == MODEL_DIR]
    assert "ro" in mount[5].split(","), mount
    written = sidecar.run(f"touch {MODEL_DIR}/written-by-a-pod")
    assert written.rc != 0 and "Read-only file system" in written.stderr, written.stderr

    problem = tool_problem("docker")
    if problem:
        pytest.skip(f"reading the node's cache folder needs {problem}")
    # kind's node containers are named as their nodes.
    node = testinfra.get_host(f"docker://{pod.spec.node_name}")
    cached = f"{road.cache_path}/{MODELS}/{digest.replace(':', '-')}"
    assert node.file(f"{cached}/model.joblib").is_file, f"{cached} on {pod.spec.node_name}"


@pytest.fixture(scope="module")
def through_gateway(cluster: Cluster, blueprint: Any, core: Any, road: Road) -> GatewayClient:
    """A client for the model's route on the shared Gateway."""
    secret = core.read_namespaced_secret(gateway.CA_SECRET, gateway.CERT_MANAGER_NAMESPACE)
    ca_pem = base64.b64decode(secret.data["ca.crt"]).decode()
    team = road.namespace.removesuffix(f"-{road.environment}")
    host = blueprint.route_host(team, road.environment, MODEL)
    return GatewayClient(host, blueprint.cluster.https_port, ca_pem)


def _rows(rng: np.random.Generator, count: int) -> dict[str, Any]:
    rows = rng.normal(size=(count, FEATURES))
    return {"inputs": [{"name": "predict", "shape": [count, FEATURES], "datatype": "FP64", "data": rows.tolist()}]}


@pytest.fixture(scope="module")
def canary_at_step(custom: Any, core: Any, model_app: str, road: Road) -> str:
    """BAD promoted, its canary Ready and the Rollout paused at the canary step; the canary pod's name."""
    wait_until(lambda: _healthy_at(custom, road.namespace, GOOD), 900, f"Rollout {MODEL} {GOOD} Healthy")
    road.promote(BAD)
    refresh(custom, model_app)

    def canary_pod() -> str | None:
        pods = core.list_namespaced_pod(road.namespace, label_selector=f"shipway.dev/model={MODEL},"
                                                                       f"shipway.dev/version={BAD}").items
        ready = [pod for pod in pods if any(c.type == "Ready" and c.status == "True"
                                            for c in (pod.status.conditions or []))]
        return ready[0].metadata.name if ready else None

    pod = wait_until(canary_pod, 900, f"a Ready canary pod of {MODEL} {BAD}")

    def at_step() -> dict[str, Any] | None:
        status = rollout_status(custom, road.namespace)
        weights = status.get("canary", {}).get("weights", {})
        return status if weights.get("canary", {}).get("weight") == CANARY_WEIGHT else None

    wait_until(at_step, 300, f"Rollout {MODEL} at its {CANARY_WEIGHT}% step")
    return pod


def test_the_plugin_sets_the_routes_weights_to_the_steps(custom: Any, canary_at_step: str, road: Road) -> None:
    route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", road.namespace, "httproutes",
                                                MODEL)
    weights = {ref["name"]: ref.get("weight") for ref in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {f"{MODEL}-stable": 100 - CANARY_WEIGHT, f"{MODEL}-canary": CANARY_WEIGHT}
    accepted = [condition for parent in route.get("status", {}).get("parents", [])
                for condition in parent.get("conditions", []) if condition["type"] == "Accepted"]
    assert accepted and all(condition["status"] == "True" for condition in accepted), route.get("status")


def test_the_canary_gets_its_steps_share_of_gateway_traffic(canary_at_step: str,
                                                            through_gateway: GatewayClient) -> None:
    rng = np.random.default_rng(9)
    served: dict[str, int] = {}
    for _ in range(SHARE_REQUESTS):
        status, headers, _body = through_gateway.post(f"/v2/models/{MODEL}/infer", _rows(rng, 1))
        assert status == 200, status
        version = headers.get(MODEL_VERSION_HEADER.lower(), "(none)")
        served[version] = served.get(version, 0) + 1
    assert set(served) <= {GOOD, BAD}, served
    weight = CANARY_WEIGHT / 100
    tolerance = TOLERANCE_SIGMAS * math.sqrt(weight * (1 - weight) / SHARE_REQUESTS)
    share = served.get(BAD, 0) / SHARE_REQUESTS
    assert abs(share - weight) <= tolerance, f"canary share {share:.3f}, wanted {weight} +/- {tolerance:.3f}: {served}"


def test_a_canary_with_a_bad_version_is_aborted_by_analysis_on_gateway_traffic(
    cluster: Cluster, custom: Any, canary_at_step: str, road: Road, through_gateway: GatewayClient
) -> None:
    canary = road.rendered("Rollout")["spec"]["strategy"]["canary"]["analysis"]
    wanted = [serving.ANALYSIS_TEMPLATES[name] for name in ("error-rate", "latency", "accuracy")]
    assert [t["templateName"] for t in canary["templates"]] == wanted
    assert all(t["clusterScope"] for t in canary["templates"])
    assert {a["name"]: a["value"] for a in canary["args"]}["stable-version"] == GOOD
    with _port_forward(cluster, road.namespace, f"pod/{canary_at_step}", SIDECAR_FEEDBACK_PORT) as feedback_port:
        rng = np.random.default_rng(8)
        session = requests.Session()

        def wrong_labels_until_aborted() -> dict[str, Any] | None:
            # Requests go through the Gateway; the ones the canary served get labels saying they were wrong.
            for _ in range(20):
                status, headers, body = through_gateway.post(f"/v2/models/{MODEL}/infer", _rows(rng, 4))
                if status != 200 or headers.get(MODEL_VERSION_HEADER.lower()) != BAD:
                    continue
                wrong = [1 - int(value) for value in json.loads(body)["outputs"][0]["data"]]
                session.post(f"http://127.0.0.1:{feedback_port}/feedback", timeout=10,
                             json={"id": headers["x-request-id"], "labels": wrong})
            status_ = rollout_status(custom, road.namespace)
            return status_ if status_.get("abort") else None

        status = wait_until(wrong_labels_until_aborted, 600, f"Rollout {MODEL} aborted by analysis", interval=5)
    assert status["phase"] == "Degraded"
    runs = custom.list_namespaced_custom_object(GROUP, VERSION, road.namespace, "analysisruns")["items"]
    failed = [run_ for run_ in runs if run_.get("status", {}).get("phase") == "Failed"]
    assert failed, [run_.get("status", {}).get("phase") for run_ in runs]
    metrics = {result["name"]: result["phase"] for result in failed[-1]["status"].get("metricResults", [])}
    assert metrics.get("accuracy") == "Failed", metrics
    # The canary was rolled back: stable still serves GOOD, and the route sends it everything.
    assert rollout_status(custom, road.namespace).get("stableRS") != rollout_status(custom, road.namespace).get(
        "currentPodHash")
    route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", road.namespace, "httproutes",
                                                MODEL)
    weights = {ref["name"]: ref.get("weight") for ref in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {f"{MODEL}-stable": 100, f"{MODEL}-canary": 0}
