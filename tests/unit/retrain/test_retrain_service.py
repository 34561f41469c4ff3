"""The trigger service in-process against fake GitHub, GitLab and Kubernetes APIs on 127.0.0.1.

The Event it posts is checked as the core/v1 Event schema (kubernetes-validate, strict) would check it.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shipway.render import retrain as names
from shipway.retrain.service import TriggerConfig, TriggerService, event_object
from shipway.spec.model import ModelSpec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spec(repository: dict[str, str], cooldown: str = "1h") -> ModelSpec:
    return ModelSpec.model_validate({"name": "churn", "team": "fraud", "version": "2", "runtime": "sklearn",
                                     "drift": {}, "retrain": {"signals": ["drift"], "cooldown": cooldown,
                                                              "repository": repository}})


def _alert(name: str = "ShipwayModelFeatureDrift", version: str = "2") -> dict[str, Any]:
    return {"status": "firing", "startsAt": "2026-03-01T10:00:00Z",
            "labels": {"alertname": name, "model": "churn", "namespace": "fraud-prod", "version": version,
                       "severity": "warning"},
            "annotations": {"value": "0.41", "description": "churn 2 in fraud-prod: largest feature PSI 0.410"}}


class Fakes:
    """GitHub, GitLab and the Kubernetes API; GitHub refuses the first `refuse` dispatches."""

    def __init__(self, spec: ModelSpec, refuse: int = 0) -> None:
        self.config_map = names.model_config_map(spec, "fraud-prod", {})
        self.refuse = refuse
        self.github: list[dict[str, Any]] = []
        self.gitlab: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.port = _free_port()

    async def dispatch(self, request: web.Request) -> web.Response:
        if self.refuse:
            self.refuse -= 1
            return web.Response(status=503)
        self.github.append({"path": request.path, "auth": request.headers.get("Authorization"),
                            **await request.json()})
        return web.Response(status=204)

    async def pipeline(self, request: web.Request) -> web.Response:
        self.gitlab.append({"path": request.raw_path, **dict(await request.post())})
        return web.json_response({"id": 1}, status=201)

    async def config_map_get(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != self.config_map["metadata"]["name"]:
            return web.Response(status=404)
        return web.json_response(self.config_map)

    async def event(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.json_response({}, status=201)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/repos/{owner}/{repo}/dispatches", self.dispatch)
        app.router.add_post("/api/v4/projects/{project}/trigger/pipeline", self.pipeline)
        app.router.add_get("/api/v1/namespaces/{namespace}/configmaps/{name}", self.config_map_get)
        app.router.add_post("/api/v1/namespaces/{namespace}/events", self.event)
        return app


async def _run(fakes: Fakes, posts: list[list[dict[str, Any]]], attempts: int = 3) -> TriggerService:
    runner = web.AppRunner(fakes.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fakes.port).start()
    base = f"http://127.0.0.1:{fakes.port}"
    service = TriggerService(TriggerConfig(github_api=base, gitlab_url=base, github_token="gh", gitlab_token="gl",
                                           kube_api=base, kube_token="kube", attempts=attempts, backoff_seconds=0.01))
    await service.start()
    service_runner = web.AppRunner(service.app())
    await service_runner.setup()
    port = _free_port()
    await web.TCPSite(service_runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as client:
            for alerts in posts:
                async with client.post(f"http://127.0.0.1:{port}/alerts", json={"version": "4", "alerts": alerts}) as r:
                    assert r.status == 200
                await asyncio.gather(*service.tasks)
            async with client.post(f"http://127.0.0.1:{port}/alerts", data=b"{not json") as response:
                assert response.status == 400
    finally:
        await service_runner.cleanup()
        await service.stop()
        await runner.cleanup()
    return service


def _sample(service: TriggerService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_github_dispatch_once_per_cooldown_after_retries() -> None:
    fakes = Fakes(_spec({"provider": "github", "repository": "acme/churn"}), refuse=2)
    service = asyncio.run(_run(fakes, [[_alert(), _alert(version="3")], [_alert()], [_alert()]]))
    (sent,) = fakes.github
    assert sent["path"] == "/repos/acme/churn/dispatches" and sent["auth"] == "Bearer gh"
    assert sent["event_type"] == "shipway-retrain"
    payload = sent["client_payload"]
    # GitHub accepts at most 10 top-level client_payload properties (REST docs, repos/dispatches).
    assert len(payload) <= 10
    assert payload["versions"] == ["2", "3"] and payload["signal"] == "drift"
    assert payload["figures"]["2"]["value"] == "0.41" and payload["window"]["from"] == "2026-03-01T10:00:00Z"
    assert _sample(service, names.TRIGGERS_TOTAL, namespace="fraud-prod", model="churn", provider="github",
                   signal="drift") == 1
    assert _sample(service, names.SKIPPED_TOTAL, reason="cooldown") == 2
    (event,) = fakes.events
    assert event["reason"] == "RetrainTriggered" and "(attempt 3)" in event["message"]


def test_a_signal_the_model_did_not_choose_starts_nothing() -> None:
    fakes = Fakes(_spec({"provider": "github", "repository": "acme/churn"}))
    service = asyncio.run(_run(fakes, [[_alert("ShipwayModelOnlineAccuracyLow")], [_alert("ShipwayModelErrorRateHigh")]]))
    assert fakes.github == [] and fakes.events == []
    assert _sample(service, names.SKIPPED_TOTAL, reason="signal-not-chosen") == 1
    assert _sample(service, names.SKIPPED_TOTAL, reason="not-a-retrain-alert") == 1


def test_every_attempt_failing_counts_a_failure_records_a_warning_and_frees_the_cooldown() -> None:
    fakes = Fakes(_spec({"provider": "github", "repository": "acme/churn"}), refuse=5)
    service = asyncio.run(_run(fakes, [[_alert()], [_alert()]], attempts=2))
    # Two alerts, two attempts each: four refusals, no dispatch, two failures (the cooldown was released).
    assert fakes.refuse == 1 and fakes.github == []
    assert _sample(service, names.FAILURES_TOTAL, namespace="fraud-prod", model="churn", provider="github") == 2
    assert [event["reason"] for event in fakes.events] == ["RetrainFailed", "RetrainFailed"]
    assert all(event["type"] == "Warning" for event in fakes.events)


def test_gitlab_pipeline_trigger_carries_the_evidence() -> None:
    fakes = Fakes(_spec({"provider": "gitlab", "project": "ml/fraud/churn", "ref": "retrain"}))
    asyncio.run(_run(fakes, [[_alert()]]))
    (sent,) = fakes.gitlab
    assert sent["path"] == "/api/v4/projects/ml%2Ffraud%2Fchurn/trigger/pipeline"
    assert (sent["token"], sent["ref"], sent["variables[SHIPWAY_RETRAIN]"]) == ("gl", "retrain", "true")
    assert json.loads(sent["variables[SHIPWAY_RETRAIN_EVIDENCE]"])["figures"]["2"]["value"] == "0.41"


def test_the_event_is_a_valid_core_v1_event() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    event = event_object("fraud-prod", "churn", "RetrainTriggered", "started", False, instance="pod-1")
    kubernetes_validate.validate(event, "1.31.0", strict=True)
    assert event["involvedObject"]["kind"] == "Rollout" and event["metadata"]["generateName"] == "churn-retrain-"
