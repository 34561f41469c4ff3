"""End to end on 127.0.0.1: drifted traffic starts exactly one retraining, through the real alerting path.

MLServer (sklearn) <- the Shipway sidecar <- Prometheus (the platform's model SLO rules, 1 s evaluation) ->
Alertmanager (the route and receiver the observability layer renders, with short group timings) ->
`shipway retrain-trigger` -> a fake GitHub API, which fails the first two dispatches. The trigger reads the
model's retrain ConfigMap (rendered by the real delivery render) from a fake Kubernetes API and posts its
Events there. Drifted traffic fires ShipwayModelFeatureDrift; Alertmanager posts it, and repeats it every
second; exactly one repository_dispatch (event shipway-retrain) with the alert's evidence arrives, after
three attempts, and no repeat within the cooldown starts another. Every process is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from net_support import free_port  # noqa: E402
from test_observability_e2e import FEATURES, Server  # noqa: E402
from shipway.delivery.render import render  # noqa: E402
from shipway.drift.profile import build_profile  # noqa: E402
from shipway.render import retrain  # noqa: E402
from shipway.render.model_rules import ModelSlo, model_rule_groups, write_rules_file  # noqa: E402
from shipway.render.observability import receivers_config  # noqa: E402
from shipway.render.profile import platform_profile  # noqa: E402
from shipway.spec import load_blueprint  # noqa: E402
from shipway.spec.blueprint import Blueprint  # noqa: E402
from shipway.spec.model import ModelSpec  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
MODEL, TEAM, NAMESPACE, REPOSITORY = "iris", "fraud", "fraud-prod", "acme/iris-model"
SLO = ModelSlo(rate_window="15s", for_duration="0s", evaluation_interval="1s", min_drift_rows=200)
FAILURES_BEFORE_SUCCESS = 2
TOKEN = "test-github-token"


def _blueprint() -> Blueprint:
    """kind-dev with retraining on: the trigger's token is a Pulumi secret config key; the team's repo allowed."""
    data = load_blueprint(ROOT / "blueprints" / "kind-dev.yaml").model_dump(by_alias=True, exclude_unset=True)
    data["observability"] = {**data.get("observability", {}), "retraining": {"githubTokenSecret": "githubToken"}}
    for team in data["teams"]:
        if team["name"] == TEAM:
            team["retrainRepositories"] = {"github": [REPOSITORY]}
    return Blueprint.model_validate(data)


def _spec() -> ModelSpec:
    return ModelSpec.model_validate({
        "name": MODEL, "team": TEAM, "version": "v1", "runtime": "sklearn", "drift": {}, "accuracy": {},
        "retrain": {"signals": ["drift", "accuracy"], "cooldown": "1h",
                    "repository": {"provider": "github", "repository": REPOSITORY}}})


@dataclass
class FakeApis:
    """A fake GitHub API and a fake Kubernetes API, on one event loop in a thread."""

    config_map: dict[str, Any]
    github_port: int = field(default_factory=free_port)
    kube_port: int = field(default_factory=free_port)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    config_map_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return web.json_response({"message": "Bad credentials"}, status=401)
            if self.refused < FAILURES_BEFORE_SUCCESS:
                self.refused += 1
                return web.json_response({"message": "Server Error"}, status=502)
            self.dispatches.append({"repository": f"{request.match_info['owner']}/{request.match_info['repo']}",
                                    "at": time.monotonic(), **body})
        return web.Response(status=204)

    async def _config_map(self, request: web.Request) -> web.Response:
        with self.lock:
            self.config_map_reads += 1
        meta = self.config_map["metadata"]
        if (request.match_info["namespace"], request.match_info["name"]) != (meta["namespace"], meta["name"]):
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response(self.config_map)

    async def _event(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.events.append({"namespace": request.match_info["namespace"], **body})
        return web.json_response(body, status=201)

    def run(self) -> Iterator[None]:
        loop = asyncio.new_event_loop()
        github, kube = web.Application(), web.Application()
        github.router.add_post("/repos/{owner}/{repo}/dispatches", self._dispatch)
        kube.router.add_get("/api/v1/namespaces/{namespace}/configmaps/{name}", self._config_map)
        kube.router.add_post("/api/v1/namespaces/{namespace}/events", self._event)
        runners = [web.AppRunner(github), web.AppRunner(kube)]

        async def start() -> None:
            for runner, port in zip(runners, (self.github_port, self.kube_port)):
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()

        loop.run_until_complete(start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            async def stop() -> None:
                for runner in runners:
                    await runner.cleanup()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)


@dataclass
class Loop:
    """Addresses of the running loop and its fakes."""

    apis: FakeApis
    sidecar_port: int
    prometheus_port: int
    alertmanager_port: int
    trigger_port: int

    def firing(self) -> set[str]:
        response = requests.get(f"http://127.0.0.1:{self.prometheus_port}/api/v1/query",
                                params={"query": 'ALERTS{alertstate="firing"}'}, timeout=5).json()
        return {item["metric"]["alertname"] for item in response["data"]["result"]}

    def trigger_metrics(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.trigger_port}/metrics", timeout=5).text


def _tool(*names: str) -> str:
    for name in names:
        if shutil.which(name):
            return name
    pytest.skip(f"{' or '.join(names)} not installed")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    pytest.importorskip("mlserver_sklearn", reason="mlserver / mlserver-sklearn not installed")
    prometheus = _tool("prometheus")
    alertmanager = _tool("prometheus-alertmanager", "alertmanager")
    from joblib import dump
    from sklearn.linear_model import LogisticRegression

    work = tmp_path_factory.mktemp("retrain-e2e")
    rng = np.random.default_rng(21)
    train = rng.normal(size=(4000, FEATURES))
    model = LogisticRegression().fit(train, (train[:, 0] + train[:, 1] > 0).astype(int))
    (work / "model").mkdir()
    dump(model, work / "model" / "model.joblib")
    (work / "model" / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    ports = {name: free_port() for name in ("mlserver", "sidecar", "metrics", "feedback", "prometheus", "alertmanager",
                                             "trigger")}
    (work / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": ports["mlserver"], "grpc_port": free_port(),
        "metrics_port": free_port(), "parallel_workers": 0}))
    reference = build_profile(train, predictions=model.predict(train)).save(work / "profile.json")

    # The model's retrain ConfigMap exactly as `shipway promote` commits it.
    (config_map,) = [obj for obj in render(_spec(), platform_profile(_blueprint()), "prod")
                     if obj["kind"] == "ConfigMap"]
    apis = FakeApis(config_map)

    write_rules_file(work / "rules.yml", model_rule_groups(slo=SLO))
    (work / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [{"job_name": "shipway-sidecar", "static_configs": [{
            "targets": [f"127.0.0.1:{ports['metrics']}"], "labels": {"namespace": NAMESPACE}}]}]}))
    # The Alertmanager config the observability layer renders, with second-long timings and the local service.
    config = receivers_config(_blueprint(), {})
    config["route"].update({"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1s"})
    for route in config["route"]["routes"]:
        if route["receiver"] == retrain.NAME:
            route.update({"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1s"})
    (receiver,) = [item for item in config["receivers"] if item["name"] == retrain.NAME]
    assert receiver["webhook_configs"][0]["url"] == retrain.service_url("monitoring")
    receiver["webhook_configs"][0]["url"] = f"http://127.0.0.1:{ports['trigger']}/alerts"
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    (work / "kube-token").write_text("kube-test-token\n")
    # The allow-list as the observability layer renders it into the service's ConfigMap.
    (work / retrain.ALLOWED_KEY).write_text(json.dumps(retrain.allowed_document(_blueprint())))

    servers = [
        Server("mlserver", [sys.executable, "-m", "mlserver.cli.main", "start", str(work)], work / "mlserver.log"),
        Server("sidecar", [sys.executable, "-m", "shipway", "sidecar", "--listen", f"127.0.0.1:{ports['sidecar']}",
                           "--metrics-listen", f"127.0.0.1:{ports['metrics']}",
                           "--feedback-listen", f"127.0.0.1:{ports['feedback']}",
                           "--upstream", f"http://127.0.0.1:{ports['mlserver']}", "--model", MODEL, "--version", "v1",
                           "--reference", str(reference), "--window-rows", "400"], work / "sidecar.log"),
        Server("prometheus", [prometheus, f"--config.file={work / 'prometheus.yml'}",
                              f"--storage.tsdb.path={work / 'tsdb'}",
                              f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], work / "prometheus.log"),
        Server("alertmanager", [alertmanager, f"--config.file={work / 'alertmanager.yml'}",
                                f"--storage.path={work / 'am'}", "--cluster.listen-address=",
                                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}"], work / "alertmanager.log"),
        Server("trigger", [sys.executable, "-m", "shipway", "retrain-trigger", "--listen",
                           f"127.0.0.1:{ports['trigger']}", "--github-api", f"http://127.0.0.1:{apis.github_port}",
                           "--kube-api", f"http://127.0.0.1:{apis.kube_port}",
                           "--kube-token-file", str(work / "kube-token"), "--attempts", "4", "--backoff", "0.2",
                           "--allowed", str(work / retrain.ALLOWED_KEY)],
               work / "trigger.log"),
    ]
    os.environ["SHIPWAY_GITHUB_TOKEN"] = TOKEN
    fakes = apis.run()
    next(fakes)
    try:
        for server in servers:
            server.start()
        servers[0].wait_ready(f"http://127.0.0.1:{ports['mlserver']}/v2/health/ready", 60)
        servers[1].wait_ready(f"http://127.0.0.1:{ports['metrics']}/readyz", 20)
        servers[2].wait_ready(f"http://127.0.0.1:{ports['prometheus']}/-/ready", 30)
        servers[3].wait_ready(f"http://127.0.0.1:{ports['alertmanager']}/-/ready", 30)
        servers[4].wait_ready(f"http://127.0.0.1:{ports['trigger']}/healthz", 20)
        yield Loop(apis, ports["sidecar"], ports["prometheus"], ports["alertmanager"], ports["trigger"])
    finally:
        os.environ.pop("SHIPWAY_GITHUB_TOKEN", None)
        for server in reversed(servers):
            server.stop()
        next(fakes, None)


def _send(session: requests.Session, port: int, rows: np.ndarray) -> None:
    body = {"inputs": [{"name": "predict", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}]}
    response = session.post(f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_drift_starts_exactly_one_retraining_with_its_evidence(loop: Loop) -> None:
    started = time.monotonic()
    rng = np.random.default_rng(22)
    session = requests.Session()
    # Calm traffic first: the window fills in distribution and nothing fires.
    for _ in range(5):
        _send(session, loop.sidecar_port, rng.normal(size=(50, FEATURES)))
    time.sleep(2)
    assert "ShipwayModelFeatureDrift" not in loop.firing() and loop.apis.dispatches == []

    deadline = time.monotonic() + 40
    while not loop.apis.dispatches and time.monotonic() < deadline:
        _send(session, loop.sidecar_port, rng.normal(loc=3.0, size=(50, FEATURES)))
        time.sleep(0.5)
    assert loop.apis.dispatches, f"no repository_dispatch within 40 s; firing: {loop.firing()}"
    first = loop.apis.dispatches[0]
    fired_after = time.monotonic() - started

    # Alertmanager repeats the notification every second; all of them fall within the cooldown.
    def repeats() -> float:
        return _metric(loop.trigger_metrics(), "shipway_retrain_skipped_total", reason="cooldown")

    deadline = time.monotonic() + 20
    while repeats() < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert repeats() >= 3, loop.trigger_metrics()
    assert len(loop.apis.dispatches) == 1 and loop.apis.refused == FAILURES_BEFORE_SUCCESS

    assert first["repository"] == REPOSITORY and first["event_type"] == "shipway-retrain"
    payload = first["client_payload"]
    assert (payload["model"], payload["namespace"], payload["signal"]) == (MODEL, NAMESPACE, "drift")
    assert payload["alert"] == "ShipwayModelFeatureDrift" and payload["versions"] == ["v1"]
    assert float(payload["figures"]["v1"]["value"]) > SLO.max_feature_psi
    assert "largest feature PSI" in payload["figures"]["v1"]["description"]
    assert payload["window"]["from"] <= payload["window"]["to"]

    metrics = loop.trigger_metrics()
    assert _metric(metrics, "shipway_retrain_triggers_total", model=MODEL, signal="drift", provider="github") == 1
    assert _metric(metrics, "shipway_retrain_trigger_failures_total") == 0
    (event,) = loop.apis.events
    assert event["namespace"] == NAMESPACE and event["reason"] == "RetrainTriggered" and event["type"] == "Normal"
    assert event["involvedObject"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": MODEL,
                                       "namespace": NAMESPACE}
    assert "attempt 3" in event["message"] and REPOSITORY in event["message"]
    print(f"one dispatch {fired_after:.1f}s after the drift began, after {loop.apis.refused} refusals; "
          f"{repeats():g} repeats skipped by the cooldown; {time.monotonic() - started:.1f}s in all")
    assert time.monotonic() - started < 60
