"""Rendered probes against each runtime's real routes (issue #15 finding 1).

MLServer runs here: its rendered probe paths are called on a real MLServer, and the sidecar's
on a real sidecar in front of it. vLLM and Triton cannot run here (GPU images), so their
rendered paths are checked against the routes their servers register, cited below.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from delivery_cases import CASES, model, profile_of
from shipway.delivery.render import render, startup_seconds
from shipway.spec.model import SIDECAR_METRICS_PORT, SIDECAR_PORT, ModelSpec
from net_support import free_port

CLI = "import typer; from shipway.cli import sidecar; app = typer.Typer(); sidecar.register(app); app()"
# triton-inference-server/server, src/http_server.cc: HTTPAPIServer's constructor matches server
# routes with server_regex_ R"(/v2(?:/health/(live|ready))?)" (HandleServerHealth for live/ready).
TRITON_SERVER_ROUTE = re.compile(r"/v2(?:/health/(live|ready))?")
# vllm-project/vllm, vllm/entrypoints/serve/instrumentator/health.py: @router.get("/health") answers 200
# once the engine is healthy (503 when it died); metrics.py mounts the Prometheus app at /metrics.
VLLM_HEALTH_ROUTE = "/health"
VLLM_METRICS_ROUTE = "/metrics"


def _pod(spec: ModelSpec, case: str) -> dict[str, Any]:
    blueprint, environment, stable = CASES[case]
    return render(spec, profile_of(blueprint), environment, stable)[0]["spec"]["template"]["spec"]


def _containers(spec: ModelSpec, case: str) -> dict[str, dict[str, Any]]:
    return {container["name"]: container for container in _pod(spec, case)["containers"]}


def _paths(container: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
            for probe in ("startupProbe", "readinessProbe", "livenessProbe") if probe in container}


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_no_probe_of_any_runtime_goes_through_the_proxied_serving_port() -> None:
    for case in CASES:
        for name, container in _containers(model(case), case).items():
            for probe, (_, port) in _paths(container).items():
                assert port != SIDECAR_PORT, f"{case} {name} {probe} is proxied to the runtime"
        sidecar = _containers(model(case), case)["sidecar"]
        assert _paths(sidecar) == {"readinessProbe": ("/readyz", SIDECAR_METRICS_PORT),
                                   "livenessProbe": ("/livez", SIDECAR_METRICS_PORT)}


def test_vllm_probes_and_sidecar_readiness_use_vllms_health_route() -> None:
    containers = _containers(model("llm-vllm-mig"), "llm-vllm-mig")
    runtime = containers["runtime"]
    assert {path for path, _ in _paths(runtime).values()} == {VLLM_HEALTH_ROUTE}
    assert _flag(containers["sidecar"]["command"], "--runtime-ready-path") == VLLM_HEALTH_ROUTE


def test_triton_probes_and_sidecar_readiness_use_tritons_health_routes(kind_profile: dict) -> None:
    data = model("canary-sklearn").model_dump(by_alias=True, exclude_unset=True)
    data.update(runtime={"name": "triton"}, resources={"gpus": 1, "gpuPool": "gpu-small"},
                replicas={"min": 1, "max": 1})
    pod = render(ModelSpec.model_validate(data), kind_profile, "staging")[0]["spec"]["template"]["spec"]
    containers = {container["name"]: container for container in pod["containers"]}
    paths = _paths(containers["runtime"])
    for path, _ in paths.values():
        assert TRITON_SERVER_ROUTE.fullmatch(path), path
    assert paths["readinessProbe"][0] == paths["startupProbe"][0] == "/v2/health/ready"
    assert paths["livenessProbe"][0] == "/v2/health/live"
    assert _flag(containers["sidecar"]["command"], "--runtime-ready-path") == "/v2/health/ready"


def test_startup_probes_are_sized_for_the_model_volume() -> None:
    """A 40Gi LLM gets its base plus 40Gi at 50 MiB/s before liveness counts; the rollout waits longer still."""
    spec = model("llm-vllm-mig")
    objects = render(spec, profile_of("eks-prod"), "staging")
    runtime = objects[0]["spec"]["template"]["spec"]["containers"][0]
    probe = runtime["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    assert spec.resources.model_storage == "40Gi"
    assert budget >= startup_seconds(spec, gpu=True) == 600 + -(-40 * 1024 // 50)
    assert objects[0]["spec"]["progressDeadlineSeconds"] >= 2 * budget - probe["periodSeconds"]
    small = _containers(model("sklearn-none"), "sklearn-none")["runtime"]["startupProbe"]
    assert small["periodSeconds"] * small["failureThreshold"] < budget


# --- MLServer, for real ---------------------------------------------------------------


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def _wait(url: str, wanted: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _status(url) == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {wanted} within {seconds:g} s (last: {_status(url)})")


@pytest.mark.integration
@pytest.mark.slow
def test_mlserver_answers_every_rendered_probe_and_the_sidecar_follows_its_readiness(tmp_path: Path) -> None:
    if shutil.which("mlserver") is None:
        pytest.skip("mlserver not installed (pip install mlserver mlserver-sklearn)")
    from joblib import dump
    from sklearn.linear_model import LogisticRegression

    from shipway.drift.profile import build_profile

    spec = model("canary-sklearn")
    containers = _containers(spec, "canary-sklearn")
    runtime_paths, sidecar = _paths(containers["runtime"]), containers["sidecar"]
    rows = np.random.default_rng(1).normal(size=(500, 4))
    (tmp_path / "model").mkdir()
    dump(LogisticRegression().fit(rows, rows[:, 0] > 0), tmp_path / "model" / "model.joblib")
    (tmp_path / "model" / "model-settings.json").write_text(json.dumps(
        {"name": spec.name, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}))
    mlserver_port = free_port()
    (tmp_path / "settings.json").write_text(json.dumps(
        {"host": "127.0.0.1", "http_port": mlserver_port, "grpc_port": free_port(), "metrics_port": free_port(),
         "parallel_workers": 0}))
    build_profile(rows, feature_names=["age", "b", "c", "d"]).save(tmp_path / "reference-profile.json")

    # The rendered sidecar command, with its addresses moved to free local ports.
    ports = {SIDECAR_PORT: free_port(), SIDECAR_METRICS_PORT: free_port(), 9092: free_port()}
    command = list(sidecar["command"][1:])
    for flag in ("--listen", "--metrics-listen", "--feedback-listen"):
        port = int(_flag(command, flag).rsplit(":", 1)[1])
        command[command.index(flag) + 1] = f"127.0.0.1:{ports[port]}"
    command[command.index("--upstream") + 1] = f"http://127.0.0.1:{mlserver_port}"
    command[command.index("--reference") + 1] = str(tmp_path / "reference-profile.json")
    processes = [subprocess.Popen([sys.executable, "-c", CLI, *command], start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=(tmp_path / "sidecar.log").open("wb"))]
    probes = {probe: f"http://127.0.0.1:{ports[port]}{path}" for probe, (path, port) in _paths(sidecar).items()}
    try:
        _wait(probes["livenessProbe"], 200, 20)
        # The runtime is not up yet: the sidecar lives but is not ready.
        assert _status(probes["readinessProbe"]) == 503
        processes.append(subprocess.Popen([sys.executable, "-m", "mlserver.cli.main", "start", str(tmp_path)],
                                          start_new_session=True, stdout=subprocess.DEVNULL,
                                          stderr=(tmp_path / "mlserver.log").open("wb")))
        _wait(probes["readinessProbe"], 200, 90)
        for probe, (path, _) in runtime_paths.items():
            assert _status(f"http://127.0.0.1:{mlserver_port}{path}") == 200, (probe, path)
        # What the probes called before: /healthz on the serving port, forwarded to MLServer, which has no such route.
        assert _status(f"http://127.0.0.1:{ports[SIDECAR_PORT]}/healthz") == 404
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
