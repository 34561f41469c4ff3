"""The retraining trigger: Alertmanager posts drift and accuracy alerts; the model repo's retraining starts.

For each firing alert the service finds the model's retrain settings (the `<model>-retrain` ConfigMap in the
model's namespace, read through the Kubernetes API), and unless the model triggered within its cooldown, starts
the repository's pipeline: GitHub `repository_dispatch` (event shipway-retrain) or a GitLab pipeline trigger,
with the alert's evidence as payload. A start refused for a passing reason (a rate limit, a 5xx, a lost
connection) is retried with the shared RetryPolicy's backoff; any other refusal is final. Every outcome is counted
and recorded as a Kubernetes Event on the model's Rollout. The cooldown is kept in memory by the one replica.

The team writes that ConfigMap, so the repository it names must be one the blueprint allows the team of the
namespace it was read from (teams[].retrainRepositories, given to the service as --allowed); anything else is
refused, counted, logged and recorded as a Warning Event, and the platform's token is never sent.

Two HTTP clients: the Kubernetes API's trusts the cluster's CA (the service account's ca.crt) and nothing else;
GitHub's and GitLab's trust the system store (Python's default verify paths, so SSL_CERT_FILE and SSL_CERT_DIR
too). One client with the cluster CA as its only root cannot verify api.github.com.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shipway.errors import ShipwayError
from shipway.render import retrain as names
from shipway.retry import TRANSIENT_STATUS, RetryPolicy

LOG = logging.getLogger("shipway.retrain")
IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IN_CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
COMPONENT = names.NAME


@dataclass(frozen=True)
class Allowed:
    """What one team namespace may start: its team, and the repositories and projects listed for the team."""

    team: str
    github: tuple[str, ...] = ()
    gitlab: tuple[str, ...] = ()

    def holds(self, target: Target) -> bool:
        """Whether the target is this namespace's team and names one of its repositories."""
        patterns = self.github if target.provider == "github" else self.gitlab
        return target.team == self.team and names.repository_allowed(patterns, target.repository)


class AllowListError(ShipwayError):
    """The --allowed file is not the allow-list the platform renders: bad input, exit 2."""

    exit_code = 2


def load_allowed(path: Path) -> dict[str, Allowed]:
    """The allow-list file the platform renders (render.retrain.allowed_document), by team namespace."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {namespace: Allowed(team=entry["team"], github=tuple(entry.get("github", ())),
                                   gitlab=tuple(entry.get("gitlab", ())))
                for namespace, entry in document.items()}
    except OSError as error:
        raise AllowListError(f"cannot read the allow-list {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise AllowListError(f"{path} is not a retraining allow-list ({{namespace: {{team, github: [...], "
                             f"gitlab: [...]}}}}, as the platform renders it): {error}") from None


@dataclass(frozen=True)
class TriggerConfig:
    """Where the service listens, what it calls, and how hard it tries."""

    listen_host: str = "0.0.0.0"
    listen_port: int = names.PORT
    github_api: str = "https://api.github.com"
    gitlab_url: str = "https://gitlab.com"
    github_token: str | None = None
    gitlab_token: str | None = None
    kube_api: str = ""
    kube_token: str | None = None
    kube_ca: str | None = None
    retry: RetryPolicy = RetryPolicy(attempts=4, first_delay_s=2.0, max_delay_s=60.0)
    timeout_seconds: float = 10.0
    # By team namespace; a namespace not in it may start nothing.
    allowed: Mapping[str, Allowed] = field(default_factory=dict)


def in_cluster() -> tuple[str, str | None, str | None]:
    """The Kubernetes API address, token and CA file a pod's service account has; empty outside a cluster."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not os.path.exists(IN_CLUSTER_TOKEN):
        return "", None, None
    with open(IN_CLUSTER_TOKEN, encoding="utf-8") as handle:
        token = handle.read().strip()
    address = f"[{host}]" if ":" in host else host
    return f"https://{address}:{port}", token, IN_CLUSTER_CA


@dataclass(frozen=True)
class Target:
    """A model's retrain settings, from its ConfigMap."""

    model: str
    team: str
    namespace: str
    signals: tuple[str, ...]
    cooldown_seconds: float
    provider: str
    repository: str
    ref: str = "main"

    @classmethod
    def parse(cls, namespace: str, text: str) -> Target:
        """From the ConfigMap's retrain.json."""
        data = json.loads(text)
        repository = data["repository"]
        provider = repository["provider"]
        return cls(model=data["model"], team=data["team"], namespace=namespace, signals=tuple(data["signals"]),
                   cooldown_seconds=float(data["cooldownSeconds"]), provider=provider,
                   repository=repository["repository"] if provider == "github" else repository["project"],
                   ref=repository.get("ref", "main"))


def event_object(target_namespace: str, model: str, reason: str, message: str, warning: bool,
                 now: datetime | None = None, instance: str | None = None) -> dict[str, Any]:
    """The core/v1 Event recorded on the model's Rollout for one trigger outcome."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{model}-retrain-", "namespace": target_namespace,
                     "labels": {"shipway.dev/model": model}},
        "involvedObject": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": model,
                           "namespace": target_namespace},
        "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT}, "reportingComponent": f"shipway.dev/{COMPONENT}",
        "reportingInstance": instance or socket.gethostname(),
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def evidence(signal: str, alerts: list[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
    """The payload a retraining pipeline receives: the signal, its figures, the window, the versions."""
    first = min(alerts, key=lambda alert: alert.get("startsAt", ""))
    labels = first.get("labels", {})
    figures = {alert.get("labels", {}).get("version", ""): {
        "value": alert.get("annotations", {}).get("value"),
        "description": alert.get("annotations", {}).get("description", ""),
    } for alert in alerts}
    return {
        "model": labels.get("model"), "namespace": labels.get("namespace"), "signal": signal,
        "alert": labels.get("alertname"), "severity": labels.get("severity"),
        "figures": figures,
        "window": {"from": first.get("startsAt"),
                   "to": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")},
        "versions": sorted({alert.get("labels", {}).get("version", "") for alert in alerts} - {""}),
        "source": COMPONENT,
    }


class Refused(Exception):
    """GitHub or GitLab answered with an error status; transient (429, 5xx, 408) ones are worth another try."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(f"{status} {reason}: {detail}".rstrip(": "))
        self.status = status
        self.transient = status in TRANSIENT_STATUS

    @classmethod
    async def check(cls, response: aiohttp.ClientResponse) -> None:
        """Raise for an error answer, with the start of its body (GitHub's and GitLab's message)."""
        if response.status >= 400:
            raise cls(response.status, response.reason or "", (await response.text(errors="replace"))[:200])


class Metrics:
    """The service's counters, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("namespace", "model", "provider")
        self.triggers = Counter(names.TRIGGERS_TOTAL.removesuffix("_total"), "Retraining pipelines started.",
                                (*labels, "signal"), registry=self.registry)
        self.failures = Counter(names.FAILURES_TOTAL.removesuffix("_total"),
                                "Retraining triggers that failed after every retry.", labels, registry=self.registry)
        self.skipped = Counter(names.SKIPPED_TOTAL.removesuffix("_total"),
                               "Alerts that started nothing, by reason.", ("reason",), registry=self.registry)


@dataclass
class TriggerService:
    """Alert intake, cooldown, the trigger with retries, metrics and Events."""

    config: TriggerConfig
    metrics: Metrics = field(default_factory=Metrics)
    last_trigger: dict[tuple[str, str], float] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    kube_session: aiohttp.ClientSession | None = None
    forge_session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the two clients: the Kubernetes API's (its CA only, when given) and the forges' (system store)."""
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        # Built here, not at import, so the store is read as the process finds it (SSL_CERT_FILE included).
        kube_tls = ssl.create_default_context(cafile=self.config.kube_ca) if self.config.kube_ca else \
            ssl.create_default_context()
        self.kube_session = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(ssl=kube_tls))
        self.forge_session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(ssl=ssl.create_default_context()))

    async def stop(self) -> None:
        """Let triggers in flight finish, then close the clients."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for session in (self.kube_session, self.forge_session):
            if session is not None:
                await session.close()

    def app(self) -> web.Application:
        """POST /alerts (Alertmanager webhook), GET /healthz, GET /metrics."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/alerts", self.alerts)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def alerts(self, request: web.Request) -> web.Response:
        """Take Alertmanager's webhook; start what is due in the background and answer at once."""
        try:
            body = await request.json()
            alerts = [alert for alert in body["alerts"] if alert.get("status") == "firing"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": "not an Alertmanager webhook payload (version 4)"}, status=400)
        grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for alert in alerts:
            labels = alert.get("labels", {})
            signal = names.SIGNALS.get(labels.get("alertname", ""))
            if signal is None or not labels.get("model") or not labels.get("namespace"):
                self.metrics.skipped.labels("not-a-retrain-alert").inc()
                continue
            grouped.setdefault((labels["namespace"], labels["model"], signal), []).append(alert)
        started = []
        for (namespace, model, signal), group in grouped.items():
            if await self._consider(namespace, model, signal, group):
                started.append(f"{namespace}/{model}")
        return web.json_response({"started": started})

    async def _consider(self, namespace: str, model: str, signal: str, alerts: list[dict[str, Any]]) -> bool:
        key = (namespace, model)
        target = await self._target(namespace, model)
        if target is None:
            self.metrics.skipped.labels("no-retrain-settings").inc()
            return False
        if signal not in target.signals:
            self.metrics.skipped.labels("signal-not-chosen").inc()
            return False
        allowed = self.config.allowed.get(namespace)
        if allowed is None or not allowed.holds(target):
            self.metrics.skipped.labels("repository-not-allowed").inc()
            message = (f"refused to start retraining of {model} in {target.provider}:{target.repository} for team "
                       f"{target.team}: the platform allows namespace {namespace} "
                       + (f"(team {allowed.team}) only its team's listed repositories" if allowed else "nothing")
                       + "; list the repository under the team's retrainRepositories in the blueprint")
            LOG.warning("%s", message)
            await self._record(target, "RetrainRefused", message, True)
            return False
        # Read after the lookup's await, and set below with no await between: concurrent webhooks see one trigger.
        now, last = time.monotonic(), self.last_trigger.get(key)
        if last is not None and now - last < target.cooldown_seconds:
            self.metrics.skipped.labels("cooldown").inc()
            return False
        # Taken before the first attempt, so repeats arriving while it retries start nothing.
        self.last_trigger[key] = now
        task = asyncio.get_running_loop().create_task(self._trigger(target, signal, evidence(signal, alerts)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _target(self, namespace: str, model: str) -> Target | None:
        url = (f"{self.config.kube_api}/api/v1/namespaces/{quote(namespace)}/configmaps/"
               f"{quote(names.config_map_name(model))}")
        try:
            async with self._kube().get(url, headers=self._kube_headers()) as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                document = await response.json()
            return Target.parse(namespace, document["data"][names.DATA_KEY])
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as error:
            LOG.warning("cannot read the retrain settings of %s/%s: %s", namespace, model, error)
            return None

    async def _trigger(self, target: Target, signal: str, payload: dict[str, Any]) -> None:
        policy, problem, attempt = self.config.retry, "", 0
        while attempt < policy.attempts:
            attempt += 1
            try:
                await self._dispatch(target, payload)
            except Refused as error:
                problem = str(error)
                if not error.transient:
                    LOG.warning("%s's retraining was refused, not retried: %s", target.model, problem)
                    break
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                problem = str(error) or error.__class__.__name__
            else:
                self.metrics.triggers.labels(target.namespace, target.model, target.provider, signal).inc()
                await self._record(target, "RetrainTriggered", f"started retraining of {target.model} in "
                                   f"{target.provider}:{target.repository} on {signal} (attempt {attempt})", False)
                return
            LOG.warning("attempt %d of %d to start %s's retraining failed: %s", attempt, policy.attempts,
                        target.model, problem)
            if attempt < policy.attempts:
                await asyncio.sleep(policy.delay_s(attempt - 1))
        self.metrics.failures.labels(target.namespace, target.model, target.provider).inc()
        # A failed trigger does not hold the cooldown: the next repeat of the alert tries again.
        self.last_trigger.pop((target.namespace, target.model), None)
        await self._record(target, "RetrainFailed", f"could not start retraining of {target.model} in "
                           f"{target.provider}:{target.repository} after {attempt} attempt(s): {problem}", True)

    async def _dispatch(self, target: Target, payload: dict[str, Any]) -> None:
        session = self._forge()
        if target.provider == "github":
            url = f"{self.config.github_api.rstrip('/')}/repos/{target.repository}/dispatches"
            headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                       "Authorization": f"Bearer {self.config.github_token or ''}"}
            async with session.post(url, json={"event_type": names.EVENT_TYPE, "client_payload": payload},
                                    headers=headers) as response:
                await Refused.check(response)
            return
        url = f"{self.config.gitlab_url.rstrip('/')}/api/v4/projects/{quote(target.repository, safe='')}/trigger/pipeline"
        form = {"token": self.config.gitlab_token or "", "ref": target.ref,
                "variables[SHIPWAY_RETRAIN]": "true", "variables[SHIPWAY_RETRAIN_SIGNAL]": payload["signal"],
                "variables[SHIPWAY_RETRAIN_EVIDENCE]": json.dumps(payload, sort_keys=True)}
        async with session.post(url, data=form) as response:
            await Refused.check(response)

    async def _record(self, target: Target, reason: str, message: str, warning: bool) -> None:
        LOG.info("%s: %s", reason, message)
        url = f"{self.config.kube_api}/api/v1/namespaces/{quote(target.namespace)}/events"
        try:
            async with self._kube().post(url, json=event_object(target.namespace, target.model, reason, message,
                                                                    warning), headers=self._kube_headers()) as response:
                response.raise_for_status()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            LOG.warning("cannot record the %s event: %s", reason, error)

    def _kube_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.kube_token}"} if self.config.kube_token else {}

    def _kube(self) -> aiohttp.ClientSession:
        assert self.kube_session is not None, "start() the service first"
        return self.kube_session

    def _forge(self) -> aiohttp.ClientSession:
        assert self.forge_session is not None, "start() the service first"
        return self.forge_session


async def serve(config: TriggerConfig) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM in the CLI)."""
    service = TriggerService(config)
    if not config.allowed:
        LOG.warning("no allow-list (--allowed): every retraining trigger will be refused")
    await service.start()
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await service.stop()
