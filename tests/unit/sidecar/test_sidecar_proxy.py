"""The sidecar over real sockets: passthrough, accounting, feedback, runtime restarts."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Awaitable, Callable

import aiohttp

from shipway import metric_names as names
from shipway.sidecar.metrics import SloThresholds

from sidecar_support import chain, sample

OIP = json.dumps(
    {"id": "req-1", "inputs": [{"name": "predict", "shape": [2, 4], "datatype": "FP64", "data": [[1, 0, 0, 0], [-1, 0, 0, 0]]}]}
).encode()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


async def _metrics(session: aiohttp.ClientSession, port: int) -> str:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        return await response.text()


def test_request_and_response_bytes_pass_through_unchanged_and_are_counted() -> None:
    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            async with session.post(url, data=OIP, headers={"Content-Type": "application/json"}) as response:
                assert response.status == 200
                assert response.headers["x-body-sha256"] == hashlib.sha256(OIP).hexdigest()
                # The OIP id becomes the request id header, so feedback can name it.
                assert response.headers["x-request-id"] == "req-1"
                assert (await response.json())["outputs"][0]["data"] == [1, 0]
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_requests_total", code="200", model="m", version="v1") == 1
            assert sample(text, "shipway_model_request_errors_total") == 0
            assert sample(text, "shipway_model_request_duration_seconds_count") == 1
            assert sample(text, "shipway_model_drift_window_rows") == 2
            assert sample(text, "shipway_model_feature_drift_psi", feature="f0") is not None
            # Every shared name is exported (histograms by their series); chi-square only
            # exists for categorical features, which this reference has none of, and SLO
            # thresholds only for the ones the model overrides, none here; the sidecar answered nothing itself.
            exported = {line.split("{")[0].removesuffix("_bucket") for line in text.splitlines() if "{" in line}
            assert set(names.ALL_METRICS) - exported == {
                names.FEATURE_DRIFT_CHI2_PVALUE, *names.SLO_THRESHOLDS, names.SIDECAR_RESPONSES_TOTAL}
            assert response.headers["X-Shipway-Model-Version"] == "v1"

    run(scenario)


def test_a_gzip_encoded_request_reaches_the_runtime_as_sent_and_its_features_are_still_read() -> None:
    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            compressed = gzip.compress(OIP)
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            async with session.post(url, data=compressed, headers=headers) as response:
                # The runtime could inflate what it got: the sidecar sent the gzip bytes, not inflated ones.
                assert response.status == 200
                assert response.headers["x-body-sha256"] == hashlib.sha256(OIP).hexdigest()
                assert (await response.json())["outputs"][0]["data"] == [1, 0]
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_drift_window_rows") == 2
            assert sample(text, "shipway_model_unparsed_requests_total") == 0

    run(scenario)


def test_the_models_own_slo_thresholds_are_exported_and_the_rest_left_to_the_platform() -> None:
    thresholds = SloThresholds(latency_p99_seconds=0.25, drift_psi=0.4, drift_min_rows=200)

    async def scenario() -> None:
        async with chain(thresholds=thresholds) as (_, _, config), aiohttp.ClientSession() as session:
            text = await _metrics(session, config.metrics_port)
            model = {"model": "m", "version": "v1"}
            assert sample(text, names.SLO_LATENCY_P99_SECONDS, **model) == 0.25
            assert sample(text, names.SLO_DRIFT_PSI, **model) == 0.4
            assert sample(text, names.SLO_DRIFT_MIN_ROWS, **model) == 200
            # No series at all, not a zero: the platform's rules then use their default.
            assert names.SLO_ERROR_RATE not in text and names.SLO_ACCURACY_FLOOR not in text

    run(scenario)


def test_plain_json_rows_are_read_and_non_inference_calls_are_not_counted() -> None:
    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            rows = json.dumps({"instances": [{"f0": 0.1, "f1": 0.2, "f2": 0.3, "f3": 0.4}] * 3}).encode()
            async with session.post(f"http://127.0.0.1:{config.listen_port}/predict", data=rows) as response:
                assert response.status == 200
                assert await response.read() == rows
                assert len(response.headers["x-request-id"]) == 32
            async with session.get(f"http://127.0.0.1:{config.listen_port}/v2/health/ready") as response:
                assert response.status == 200
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_drift_window_rows") == 3
            assert sample(text, "shipway_model_requests_total", code="200") == 1

    run(scenario)


def test_malformed_request_is_passed_through_and_counted() -> None:
    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            for body in (b"{not json", b"", b'{"inputs": "nonsense"}', b"\xff\xfe"):
                async with session.post(url, data=body) as response:
                    # The runtime's own answer, not the sidecar's.
                    assert response.status == 400
                    assert await response.json() == {"error": "bad request"}
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_unparsed_requests_total") == 4
            assert sample(text, "shipway_model_requests_total", code="400") == 4
            assert sample(text, "shipway_model_request_errors_total") == 0

    run(scenario)


def test_runtime_restart_is_survived_and_the_outage_counted_as_errors() -> None:
    async def scenario() -> None:
        async with chain() as (upstream, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            async with session.post(url, data=OIP) as response:
                assert response.status == 200
            await upstream.stop()
            for _ in range(3):
                async with session.post(url, data=OIP) as response:
                    assert response.status == 502
                    assert response.headers["x-shipway-sidecar"] == "upstream-error"
            await upstream.start()
            async with session.post(url, data=OIP) as response:
                assert response.status == 200
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_request_errors_total") == 3
            assert sample(text, "shipway_model_requests_total", code="502") == 3
            assert sample(text, "shipway_model_requests_total", code="200") == 2

    run(scenario)


def test_delayed_labels_by_request_id_drive_online_accuracy() -> None:
    async def scenario() -> None:
        async with chain(min_labels=4) as (_, _, config), aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{config.listen_port}"
            labels_base = f"http://127.0.0.1:{config.feedback_port}"
            ids = []
            for index in range(2):
                headers = {"x-request-id": f"r{index}"}
                async with session.post(f"{base}/v2/models/m/infer", data=OIP, headers=headers) as response:
                    ids.append(response.headers["x-request-id"])
            assert ids == ["r0", "r1"]
            # Predictions are [1, 0]: r0's labels are both right, r1's both wrong.
            feedback = [{"id": "r0", "labels": [1, 0]}, {"id": "r1", "labels": [0, 1]}, {"id": "gone", "label": 1}]
            async with session.post(f"{labels_base}/feedback", json=feedback) as response:
                assert await response.json() == {"matched": 4, "unknown_ids": 1}
            async with session.post(f"{labels_base}/feedback", json={"id": "r0", "labels": [1, 0]}) as response:
                # A label is matched once; a repeat is unknown.
                assert await response.json() == {"matched": 0, "unknown_ids": 1}
            async with session.post(f"{labels_base}/feedback", data=b"nope") as response:
                assert response.status == 400
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_online_accuracy") == 0.5
            assert sample(text, "shipway_model_labels_total") == 4
            assert sample(text, "shipway_model_labels_unmatched_total") == 2

    run(scenario)


def test_feedback_without_a_label_is_refused_and_consumes_nothing() -> None:
    async def scenario() -> None:
        async with chain(min_labels=1) as (_, _, config), aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{config.listen_port}"
            labels_base = f"http://127.0.0.1:{config.feedback_port}"
            async with session.post(f"{base}/v2/models/m/infer", data=OIP, headers={"x-request-id": "r0"}):
                pass
            # The first item is fine, the second has no label: nothing is applied.
            bad = [{"id": "r0", "labels": [1, 0]}, {"id": "r0"}]
            async with session.post(f"{labels_base}/feedback", json=bad) as response:
                assert response.status == 400
            async with session.post(f"{labels_base}/feedback", json={"id": "r0"}) as response:
                assert response.status == 400
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_labels_total") == 0
            # r0's predictions still wait for their labels, and both are right.
            async with session.post(f"{labels_base}/feedback", json={"id": "r0", "labels": [1, 0]}) as response:
                assert await response.json() == {"matched": 2, "unknown_ids": 0}
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_online_accuracy") == 1.0

    run(scenario)


def test_a_sidecar_watching_named_features_exports_drift_only_for_them() -> None:
    async def scenario() -> None:
        async with chain(features=("f1", "f3")) as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            async with session.post(url, data=OIP, headers={"Content-Type": "application/json"}) as response:
                assert response.status == 200
            text = await _metrics(session, config.metrics_port)
            assert sample(text, "shipway_model_drift_window_rows") == 2
            drifted = {line.split('feature="')[1].split('"')[0] for line in text.splitlines()
                       if line.startswith(f"{names.FEATURE_DRIFT_PSI}{{")}
            assert drifted == {"f1", "f3"}
            # Each watched feature's own observed rows (its alert guard) and missing share are exported too.
            rows = {line.split('feature="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines() if line.startswith(f"{names.FEATURE_DRIFT_ROWS}{{")}
            assert rows == {"f1": 2.0, "f3": 2.0}
            assert sum(line.startswith(f"{names.FEATURE_MISSING_SHARE}{{") for line in text.splitlines()) == 2
            assert sample(text, "shipway_model_prediction_drift_psi") is not None

    run(scenario)


def test_a_post_is_never_sent_twice_and_a_get_is_retried_after_a_dropped_connection() -> None:
    """Issue #15 finding 6: an inference POST ran twice after the runtime dropped the connection."""
    from shipway.sidecar.observer import ObserverSettings
    from shipway.sidecar.server import SidecarConfig, start

    from sidecar_support import free_port, reference

    async def scenario() -> None:
        seen: list[str] = []

        async def runtime(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            seen.append(b" ".join(head.split(b" ")[:2]).decode())
            if len(seen) % 2:  # every other request: the connection drops with no answer
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(runtime, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = SidecarConfig(listen_host="127.0.0.1", listen_port=free_port(), metrics_host="127.0.0.1",
                               metrics_port=free_port(), feedback_port=free_port(),
                               upstream=f"http://127.0.0.1:{port}", model="m",
                               version="v1", profile=reference(), observer=ObserverSettings(flush_rows=1),
                               timeout_seconds=5.0)
        sidecar = await start(config)
        try:
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{config.listen_port}"
                async with session.get(f"{base}/v2/health/ready") as response:
                    assert response.status == 200  # a read is safe to repeat: the retry answered
                assert seen == ["GET /v2/health/ready"] * 2
                async with session.post(f"{base}/v2/models/m/infer", data=OIP) as response:
                    assert response.status == 502  # inference may have run: never sent a second time
                    assert response.headers["X-Shipway-Model-Version"] == "v1"
                assert seen[2:] == ["POST /v2/models/m/infer"]
                text = await _metrics(session, config.metrics_port)
                assert sample(text, "shipway_model_requests_total", code="502") == 1
                assert sample(text, "shipway_sidecar_responses_total", listener="serving", code="502") == 1
        finally:
            await sidecar.stop()
            server.close()
            await server.wait_closed()

    run(scenario)
