"""The trigger service in-process against fake GitHub, GitLab and Kubernetes APIs on 127.0.0.1.

The Event it posts is checked as the core/v1 Event schema (kubernetes-validate, strict) would check it.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shipway.render import retrain as names
from shipway.retrain.service import Allowed, TriggerConfig, TriggerService, event_object
from shipway.retry import RetryPolicy
from shipway.spec.model import ModelSpec
from net_support import free_port


# What the blueprint allows fraud-prod (teams[].retrainRepositories of team fraud).
FRAUD = {"fraud-prod": Allowed(team="fraud", github=("acme/*",), gitlab=("ml/fraud/churn",))}


def _spec(repository: dict[str, str], cooldown: str = "1h", team: str = "fraud") -> ModelSpec:
    return ModelSpec.model_validate({"name": "churn", "team": team, "version": "2", "runtime": "sklearn",
                                     "drift": {}, "retrain": {"signals": ["drift"], "cooldown": cooldown,
                                                              "repository": repository}})


def _alert(name: str = "ShipwayModelFeatureDrift", version: str = "2") -> dict[str, Any]:
    return {"status": "firing", "startsAt": "2026-03-01T10:00:00Z",
            "labels": {"alertname": name, "model": "churn", "namespace": "fraud-prod", "version": version,
                       "severity": "warning"},
            "annotations": {"value": "0.41", "description": "churn 2 in fraud-prod: largest feature PSI 0.410"}}


class Fakes:
    """GitHub, GitLab and the Kubernetes API; GitHub refuses the first `refuse` dispatches."""

    def __init__(self, spec: ModelSpec, refuse: int = 0, refuse_status: int = 503) -> None:
        self.config_map = names.model_config_map(spec, "fraud-prod", {})
        self.refuse, self.refuse_status = refuse, refuse_status
        self.github: list[dict[str, Any]] = []
        self.gitlab: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.port = free_port()

    async def dispatch(self, request: web.Request) -> web.Response:
        if self.refuse:
            self.refuse -= 1
            return web.json_response({"message": "refused"}, status=self.refuse_status)
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


async def _run(fakes: Fakes, posts: list[list[dict[str, Any]]], attempts: int = 3,
               allowed: dict[str, Allowed] = FRAUD) -> TriggerService:
    runner = web.AppRunner(fakes.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fakes.port).start()
    base = f"http://127.0.0.1:{fakes.port}"
    service = TriggerService(TriggerConfig(github_api=base, gitlab_url=base, github_token="gh", gitlab_token="gl",
                                           kube_api=base, kube_token="kube",
                                           retry=RetryPolicy(attempts=attempts, first_delay_s=0.01), allowed=allowed))
    await service.start()
    service_runner = web.AppRunner(service.app())
    await service_runner.setup()
    port = free_port()
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


@pytest.mark.parametrize(("status", "tries"), [(422, 1), (404, 1), (403, 1), (429, 3), (502, 3)])
def test_only_rate_limits_and_server_errors_are_retried(status: int, tries: int) -> None:
    """Review 1.14: a 4xx other than 429 (bad token, no such repository, invalid payload) is final."""
    fakes = Fakes(_spec({"provider": "github", "repository": "acme/churn"}), refuse=5, refuse_status=status)
    service = asyncio.run(_run(fakes, [[_alert()]], attempts=3))
    assert 5 - fakes.refuse == tries and fakes.github == []
    assert _sample(service, names.FAILURES_TOTAL, namespace="fraud-prod", model="churn", provider="github") == 1
    (event,) = fakes.events
    assert event["reason"] == "RetrainFailed" and f"after {tries} attempt(s): {status} " in event["message"]


def _ca(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA file, and a certificate for 127.0.0.1 it signed with its key: the files a TLS fake serves."""
    x509 = pytest.importorskip("cryptography.x509", reason="needs the cryptography package to make certificates")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    valid = {"not_valid_before": now, "not_valid_after": now + datetime.timedelta(hours=1)}
    ca = (x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, public_key=ca_key.public_key(),
                                  serial_number=1, **valid)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder(subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                                    issuer_name=ca_name, public_key=leaf_key.public_key(), serial_number=2, **valid)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    files = tmp_path / f"{name}-ca.pem", tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return files


def test_the_kubernetes_api_trusts_the_cluster_ca_and_the_forges_the_system_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 1.1: with the cluster CA as the one root, api.github.com's certificate could not be verified.

    Two TLS fakes on 127.0.0.1, each signed by its own test CA: the forge's CA is the system store (SSL_CERT_FILE,
    OpenSSL's default verify path), the Kubernetes fake's is the service account's ca.crt.
    """
    forge_ca, forge_cert, forge_key = _ca(tmp_path, "forge")
    kube_ca, kube_cert, kube_key = _ca(tmp_path, "kube")
    empty = tmp_path / "no-certs"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(forge_ca))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    fakes = Fakes(_spec({"provider": "github", "repository": "acme/churn"}))

    async def main() -> tuple[TriggerService, list[str]]:
        runners, ports = [], []
        for cert, key in ((forge_cert, forge_key), (kube_cert, kube_key)):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            runner = web.AppRunner(fakes.app())
            await runner.setup()
            ports.append(free_port())
            await web.TCPSite(runner, "127.0.0.1", ports[-1], ssl_context=context).start()
            runners.append(runner)
        forge, kube = (f"https://127.0.0.1:{port}" for port in ports)
        service = TriggerService(TriggerConfig(github_api=forge, github_token="gh", kube_api=kube, kube_token="k",
                                               kube_ca=str(kube_ca), retry=RetryPolicy(attempts=1), allowed=FRAUD))
        await service.start()
        refused = []
        try:
            assert await service._consider("fraud-prod", "churn", "drift", [_alert()])
            await asyncio.gather(*service.tasks)
            # Each client trusts its own CA only: neither verifies the other's server.
            for session, url in ((service.forge_session, kube), (service.kube_session, forge)):
                assert session is not None
                with pytest.raises(aiohttp.ClientConnectorCertificateError) as error:
                    async with session.get(f"{url}/api/v1/namespaces/fraud-prod/configmaps/churn-retrain"):
                        pass
                refused.append(str(error.value))
        finally:
            await service.stop()
            for runner in runners:
                await runner.cleanup()
        return service, refused

    service, refused = asyncio.run(main())
    (sent,) = fakes.github  # over TLS, verified against the system store
    assert sent["path"] == "/repos/acme/churn/dispatches"
    (event,) = fakes.events  # over TLS, verified against the cluster CA
    assert event["reason"] == "RetrainTriggered"
    assert len(refused) == 2 and all("certificate verify failed" in text for text in refused)


@pytest.mark.parametrize(("repository", "team", "allowed"), [
    ({"provider": "github", "repository": "victim/payroll"}, "fraud", FRAUD),  # not listed for the team
    ({"provider": "github", "repository": "acme-evil/churn"}, "fraud", FRAUD),  # acme/* is not a prefix match
    ({"provider": "gitlab", "project": "ml/fraud/churn-other"}, "fraud", FRAUD),
    ({"provider": "github", "repository": "acme/churn"}, "llm", FRAUD),  # the ConfigMap claims another team
    ({"provider": "github", "repository": "acme/churn"}, "fraud", {}),  # the namespace is not a listed team's
])
def test_a_repository_the_blueprint_does_not_allow_the_namespace_is_refused(
        repository: dict[str, str], team: str, allowed: dict[str, Allowed], caplog: pytest.LogCaptureFixture) -> None:
    """Review 1.3: the team writes the ConfigMap; the platform's token must not reach another repository."""
    fakes = Fakes(_spec(repository, team=team))
    service = asyncio.run(_run(fakes, [[_alert()], [_alert()]], allowed=allowed))
    assert fakes.github == [] and fakes.gitlab == []
    assert _sample(service, names.SKIPPED_TOTAL, reason="repository-not-allowed") == 2
    assert _sample(service, names.TRIGGERS_TOTAL, namespace="fraud-prod", model="churn", provider=repository[
        "provider"], signal="drift") == 0
    assert [(event["reason"], event["type"]) for event in fakes.events] == [("RetrainRefused", "Warning")] * 2
    assert "retrainRepositories" in fakes.events[0]["message"]
    assert any("refused to start retraining of churn" in record.getMessage() for record in caplog.records)


def test_allow_list_patterns_match_whole_paths_without_case() -> None:
    allowed = ("Acme/*", "ml/fraud/churn", "group/*")
    assert names.repository_allowed(allowed, "acme/Churn") and names.repository_allowed(allowed, "ML/fraud/churn")
    assert names.repository_allowed(allowed, "group/sub/project")  # a GitLab group's subgroups
    for refused in ("acme", "acme/", "acmeX/churn", "ml/fraud/churn2", "ml/fraud", "group", "other/acme/x"):
        assert not names.repository_allowed(allowed, refused), refused


def test_an_allow_list_file_that_is_not_one_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shipway.cli import app

    monkeypatch.setenv(names.GITHUB_TOKEN_ENV, "gh")
    bad = tmp_path / "allowed.json"
    bad.write_text('{"fraud-prod": ["acme/churn"]}')
    for path, expected in ((bad, "is not a retraining allow-list"), (tmp_path / "absent.json", "cannot read")):
        result = CliRunner().invoke(app, ["retrain-trigger", "--kube-api", "http://127.0.0.1:9", "--allowed",
                                          str(path)])
        assert result.exit_code == 2 and expected in result.output and str(path) in result.output.replace("\n", "")
        assert "Traceback" not in result.output
