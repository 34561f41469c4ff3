"""End to end on 127.0.0.1: MLServer (sklearn) <- two sidecars (stable v1, canary v2) <- Prometheus.

Prometheus scrapes both sidecars every second and evaluates the platform-wide
SLO rules every second. In-distribution traffic with true labels keeps every
alert quiet and every circuit breaker passing; then the canary gets drifted
traffic and wrong labels, its drift and accuracy alerts fire at the default
bounds, and the breakers' exact PromQL (arguments substituted) returns the
failing values. The stable sidecar runs with its own drift bound
(`--slo-drift-psi`): its milder drift passes the default but not its own
bound, so it stays quiet. Along the way a
malformed request is passed through and counted, and MLServer is restarted
under the sidecar. Every process is stopped by PID.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

import shipway
from shipway import metric_names as m
from shipway.drift.profile import build_profile
from shipway.render.model_rules import (
    LLM_BREAKERS,
    CircuitBreaker,
    ModelSlo,
    circuit_breaker_templates,
    model_rule_groups,
    resolve_args,
    template_args,
    write_rules_file,
)
from net_support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL, NAMESPACE = "iris", "team-a"
FEATURES = 4
SLO = ModelSlo(rate_window="15s", for_duration="0s", evaluation_interval="1s", min_drift_rows=200)
# The stable version's own drift bound, exported by its sidecar; the canary takes SLO's default.
STABLE_DRIFT_PSI = 10.0
BREAKER = CircuitBreaker(rate_window="15s", min_drift_rows=200)
# Boots the real `shipway sidecar` command from its module, whether or not the root app registers it yet.
CLI = "import typer; from shipway.cli import sidecar; app = typer.Typer(); sidecar.register(app); app()"


def _child_environment() -> dict[str, str]:
    """This process's environment, with the shipway under test first on the children's path."""
    source = str(Path(shipway.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


def _require(tool: str) -> None:
    if tool == "mlserver":
        pytest.importorskip("mlserver_sklearn", reason="mlserver / mlserver-sklearn not installed (pip install mlserver==1.7.1 mlserver-sklearn==1.7.1)")
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


@dataclass
class Server:
    """A child process in its own session, stopped by its PID (and its process group)."""

    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.log.parent,
            env=_child_environment(),
        )
        handle.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The group id is the child's own PID (start_new_session), so this reaches its workers only.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def wait_ready(self, url: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, f"{self.name} exited:\n{self._tail()}"
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready at {url} within {seconds:g}s:\n{self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


# Each sidecar's feedback port, by its serving port: labels go to a listener of their own.
FEEDBACK_PORTS: dict[int, int] = {}


@dataclass
class Chain:
    """Addresses of the running chain."""

    mlserver: Server
    mlserver_port: int
    stable_port: int
    canary_port: int
    canary_metrics_port: int
    prometheus_port: int

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"http://127.0.0.1:{self.prometheus_port}/api/v1/query", params={"query": promql}, timeout=5
        )
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def firing(self) -> set[tuple[str, str]]:
        return {
            (item["metric"]["alertname"], item["metric"].get("version", ""))
            for item in self.query('ALERTS{alertstate="firing"}')
        }


def _truth(rows: np.ndarray) -> np.ndarray:
    return (rows[:, 0] + rows[:, 1] > 0).astype(int)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    _require("mlserver")
    _require("prometheus")
    from joblib import dump
    from sklearn.linear_model import LogisticRegression

    work = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(11)
    train = rng.normal(size=(4000, FEATURES))
    model = LogisticRegression().fit(train, _truth(train))
    (work / "model").mkdir()
    dump(model, work / "model" / "model.joblib")
    (work / "model" / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }))
    mlserver_port = free_port()
    (work / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": mlserver_port, "grpc_port": free_port(),
        "metrics_port": free_port(), "parallel_workers": 0,
    }))
    profile = build_profile(train, predictions=model.predict(train)).save(work / "profile.json")

    ports = {name: free_port() for name in ("stable", "stable_metrics", "stable_feedback", "canary", "canary_metrics",
                                             "canary_feedback", "prometheus")}
    FEEDBACK_PORTS.update({ports["stable"]: ports["stable_feedback"], ports["canary"]: ports["canary_feedback"]})
    # The platform-wide rules, as the observability layer deploys them: no model selector.
    write_rules_file(work / "rules.yml", model_rule_groups(slo=SLO))
    (work / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yml")],
        "scrape_configs": [{
            "job_name": "shipway-sidecar",
            "static_configs": [{
                "targets": [f"127.0.0.1:{ports['stable_metrics']}", f"127.0.0.1:{ports['canary_metrics']}"],
                # In a cluster the ServiceMonitor adds the namespace label; here the scrape config does.
                "labels": {"namespace": NAMESPACE},
            }],
        }],
    }))
    servers = [Server("mlserver", [sys.executable, "-m", "mlserver.cli.main", "start", str(work)], work / "mlserver.log")]
    own_slos = {"stable": ["--slo-drift-psi", f"{STABLE_DRIFT_PSI:g}"], "canary": []}
    for version, name in (("v1", "stable"), ("v2", "canary")):
        servers.append(Server(f"sidecar-{name}", [
            sys.executable, "-c", CLI, "sidecar",
            "--listen", f"127.0.0.1:{ports[name]}", "--metrics-listen", f"127.0.0.1:{ports[name + '_metrics']}",
            "--feedback-listen", f"127.0.0.1:{ports[name + '_feedback']}",
            "--upstream", f"http://127.0.0.1:{mlserver_port}", "--model", MODEL, "--version", version,
            "--reference", str(profile), "--window-rows", "400", "--accuracy-window", "100", "--min-labels", "20",
            *own_slos[name],
        ], work / f"sidecar-{name}.log"))
    servers.append(Server("prometheus", [
        "prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
    ], work / "prometheus.log"))
    try:
        for server in servers:
            server.start()
        servers[0].wait_ready(f"http://127.0.0.1:{mlserver_port}/v2/health/ready", 60)
        # /readyz answers 200 only once the sidecar reaches MLServer's own readiness route.
        servers[1].wait_ready(f"http://127.0.0.1:{ports['stable_metrics']}/readyz", 20)
        servers[2].wait_ready(f"http://127.0.0.1:{ports['canary_metrics']}/readyz", 20)
        servers[3].wait_ready(f"http://127.0.0.1:{ports['prometheus']}/-/ready", 30)
        yield Chain(servers[0], mlserver_port, ports["stable"], ports["canary"], ports["canary_metrics"], ports["prometheus"])
    finally:
        for server in reversed(servers):
            server.stop()


def _send(session: requests.Session, port: int, rows: np.ndarray, label: Callable[[np.ndarray, list[int]], list[int]]) -> None:
    """One OIP request, then its delayed labels sent to /feedback by the request id the sidecar returned."""
    body = {"inputs": [{"name": "predict", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}]}
    response = session.post(f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    predicted = [int(value) for value in response.json()["outputs"][0]["data"]]
    feedback = {"id": response.headers["x-request-id"], "labels": label(rows, predicted)}
    labels = f"http://127.0.0.1:{FEEDBACK_PORTS[port]}/feedback"
    assert session.post(labels, json=feedback, timeout=5).json()["matched"] == len(predicted)


def _true_labels(rows: np.ndarray, _predicted: list[int]) -> list[int]:
    return _truth(rows).tolist()


def _wrong_labels(_rows: np.ndarray, predicted: list[int]) -> list[int]:
    return [1 - value for value in predicted]


def _breakers() -> dict[str, tuple[str, str, str]]:
    """Each breaker's query with the canary's arguments, and its success and failure conditions.

    The LLM breakers judge OpenAI-compatible runtimes only; this MLServer model is not rendered with them.
    """
    args = {"model": MODEL, "namespace": NAMESPACE, "canary-version": "v2", "stable-version": "v1"}
    found = {}
    for template in circuit_breaker_templates(BREAKER):
        (metric,) = template["spec"]["metrics"]
        if metric["name"] in LLM_BREAKERS:
            continue
        query = resolve_args(metric["provider"]["prometheus"]["query"], template_args(template, args))
        found[metric["name"]] = (query, metric["successCondition"], metric["failureCondition"])
    return found


def _argo_condition(condition: str, result: list[float]) -> bool:
    """Evaluate the templates' Argo condition (`len(result) > 0 && result[0] <op> bound`) on a result."""
    expression = condition.replace("&&", " and ").replace("||", " or ")
    return bool(eval(expression, {"__builtins__": {}}, {"len": len, "result": result}))  # noqa: S307 - our own fixed strings


def _measure(chain: Chain, query: str) -> list[float]:
    return [float(item["value"][1]) for item in chain.query(query)]


def _until(what: str, seconds: float, step: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if step():
            return
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


def test_alerts_and_circuit_breakers_follow_the_canary(chain: Chain) -> None:
    rng = np.random.default_rng(12)
    session = requests.Session()
    breakers = _breakers()
    started = time.monotonic()

    # Phase 1: both versions see in-distribution traffic and true labels.
    measured: dict[str, list[float]] = {}

    def calm_traffic() -> bool:
        for _ in range(15):
            _send(session, chain.stable_port, rng.normal(size=(4, FEATURES)), _true_labels)
            _send(session, chain.canary_port, rng.normal(size=(4, FEATURES)), _true_labels)
        measured.update({name: _measure(chain, query) for name, (query, _, _) in breakers.items()})
        return all(measured.values())

    _until("every breaker to have evidence on calm traffic", 40, calm_traffic)
    for name, (_, success, failure) in breakers.items():
        assert _argo_condition(success, measured[name]), (name, measured[name])
        assert not _argo_condition(failure, measured[name]), (name, measured[name])
    assert not [alert for alert in chain.firing() if alert[0].startswith("ShipwayModel")]
    print(f"calm breaker values: { {name: values[0] for name, values in measured.items()} }")
    # Nothing fired at any evaluation so far, not just now.
    assert chain.query('count_over_time(ALERTS{alertstate="firing",alertname=~"ShipwayModel.*"}[5m])') == []

    # A malformed request reaches MLServer untouched: the same status and body as a direct call.
    direct = session.post(f"http://127.0.0.1:{chain.mlserver_port}/v2/models/{MODEL}/infer", data=b"{oops", timeout=5)
    proxied = session.post(f"http://127.0.0.1:{chain.canary_port}/v2/models/{MODEL}/infer", data=b"{oops", timeout=5)
    assert proxied.status_code == direct.status_code == 422
    assert proxied.json() == direct.json()
    metrics = requests.get(f"http://127.0.0.1:{chain.canary_metrics_port}/metrics", timeout=5).text
    assert f'shipway_model_unparsed_requests_total{{model="{MODEL}",version="v2"}} 1.0' in metrics

    # The runtime restarts under the sidecar: 502s while it is down, then service resumes.
    chain.mlserver.stop()
    down = session.post(
        f"http://127.0.0.1:{chain.canary_port}/v2/models/{MODEL}/infer",
        json={"inputs": [{"name": "predict", "shape": [1, FEATURES], "datatype": "FP64", "data": [[0.0] * FEATURES]}]},
        timeout=5,
    )
    assert down.status_code == 502
    chain.mlserver.start()
    chain.mlserver.wait_ready(f"http://127.0.0.1:{chain.mlserver_port}/v2/health/ready", 60)
    _send(session, chain.canary_port, rng.normal(size=(1, FEATURES)), _true_labels)
    metrics = requests.get(f"http://127.0.0.1:{chain.canary_metrics_port}/metrics", timeout=5).text
    assert f'shipway_model_request_errors_total{{model="{MODEL}",version="v2"}} 1.0' in metrics

    # Phase 2: the canary's inputs drift and its labels say it is wrong; stable's inputs drift mildly,
    # past the default bound but within its own, and its labels stay true.
    def bad_canary() -> bool:
        for _ in range(15):
            _send(session, chain.stable_port, rng.normal(loc=1.5, size=(4, FEATURES)), _true_labels)
            _send(session, chain.canary_port, rng.normal(loc=3.0, size=(4, FEATURES)), _wrong_labels)
        firing = chain.firing()
        stable_drifted = _measure(chain, f'max({m.FEATURE_DRIFT_PSI}{{version="v1"}})')[0] > SLO.max_feature_psi
        wanted = {("ShipwayModelFeatureDrift", "v2"), ("ShipwayModelOnlineAccuracyLow", "v2")}
        # The drifted share of the canary's window only grows from here, so once its breaker fails it stays failed.
        drift_breaker_fails = _argo_condition(breakers["drift"][2], _measure(chain, breakers["drift"][0]))
        return stable_drifted and wanted <= firing and drift_breaker_fails

    _until("the canary's drift and accuracy alerts, and stable drifted past the default", 40, bad_canary)
    firing = chain.firing()
    assert not {alert for alert in firing if alert[1] == "v1"}, firing
    # Stable drifted past the default on a trusted window: only its own bound keeps it quiet.
    stable_psi = _measure(chain, f'max({m.FEATURE_DRIFT_PSI}{{version="v1"}})')[0]
    assert SLO.max_feature_psi < stable_psi < STABLE_DRIFT_PSI, stable_psi
    assert _measure(chain, f'min({m.DRIFT_WINDOW_ROWS}{{version="v1"}})')[0] >= SLO.min_drift_rows
    assert _measure(chain, f'{m.SLO_DRIFT_PSI}{{version="v1"}}') == [STABLE_DRIFT_PSI]
    assert _measure(chain, f'{m.SLO_DRIFT_PSI}{{version="v2"}}') == []
    for name in ("drift", "accuracy"):
        query, success, failure = breakers[name]
        result = _measure(chain, query)
        assert _argo_condition(failure, result) and not _argo_condition(success, result), (name, result)
    # The drift breaker measures PSI above the bound, so it fails above zero; the PSI itself is past the bound.
    drift_value = _measure(chain, breakers["drift"][0])[0]
    canary_psi = _measure(chain, f'max({m.FEATURE_DRIFT_PSI}{{version="v2"}})')[0]
    accuracy_drop = _measure(chain, breakers["accuracy"][0])[0]
    assert drift_value > 0 and canary_psi > BREAKER.max_feature_psi
    assert math.isclose(drift_value, canary_psi - BREAKER.max_feature_psi, rel_tol=1e-6, abs_tol=1e-9)
    assert accuracy_drop > BREAKER.max_accuracy_drop and not math.isnan(accuracy_drop)
    print(f"canary breaker values: PSI {canary_psi:.3f} ({drift_value:+.3f} over the bound),"
          f" accuracy drop {accuracy_drop:.3f};"
          f" stable PSI {stable_psi:.3f} (own bound {STABLE_DRIFT_PSI:g}, default {SLO.max_feature_psi:g});"
          f" firing {sorted(firing)}; {time.monotonic() - started:.1f}s of traffic")
    assert time.monotonic() - started < 110
