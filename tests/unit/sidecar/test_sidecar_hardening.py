"""The findings of issue #15 over real sockets: each test fails on the sidecar as it was before the fix."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp

from shipway.sidecar import hygiene
from shipway.sidecar.feedback import PendingPredictions

from sidecar_support import TOKEN_INTERVAL, TOKENS, chain, sample

OIP_ROWS = [[1, 0, 0, 0], [-1, 0, 0, 0]]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def oip(request_id: str | None = None, shape: list[int] | None = None) -> bytes:
    document: dict = {"inputs": [{"name": "predict", "shape": shape or [2, 4], "datatype": "FP64", "data": OIP_ROWS}]}
    if request_id is not None:
        document["id"] = request_id
    return json.dumps(document).encode()


async def metrics_text(session: aiohttp.ClientSession, port: int) -> str:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        return await response.text()


def test_a_request_id_too_long_or_malformed_for_a_header_is_hashed_and_still_takes_its_label() -> None:
    """Finding 4: an OIP id of 20,000 characters got 200 from MLServer directly and 502 through the sidecar;
    ids with CR/LF/NUL got an uncounted 500."""

    async def scenario() -> None:
        async with chain(min_labels=1) as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            for raw in ("x" * 20_000, "line\r\nX-Injected: 1", "nul\x00byte", "späce id"):
                async with session.post(url, data=oip(raw)) as response:
                    assert response.status == 200, raw[:20]
                    sent = response.headers["x-request-id"]
                    assert sent == hygiene.header_safe_id(raw) and sent.startswith("sha-") and len(sent) == 36
                    assert "x-injected" not in response.headers
                async with session.post(f"http://127.0.0.1:{config.feedback_port}/feedback",
                                        json={"id": raw, "labels": [1, 0]}) as response:
                    # Feedback names the id the client knows; it matches the hashed one.
                    assert await response.json() == {"matched": 2, "unknown_ids": 0}
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_model_requests_total", code="200") == 4
            assert sample(text, "shipway_model_request_errors_total") == 0

    run(scenario)


def test_an_absolute_form_target_reaches_the_runtime_by_its_path_and_is_counted() -> None:
    """Finding 4: absolute-form targets (`POST http://host/path HTTP/1.1`) got an uncounted 500."""

    async def scenario() -> None:
        async with chain() as (_, _, config):
            reader, writer = await asyncio.open_connection("127.0.0.1", config.listen_port)
            body = oip("abs-1")
            writer.write(b"POST http://model.example/v2/models/m/infer HTTP/1.1\r\nHost: model.example\r\n"
                         b"Content-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["outputs"][0]["data"] == [1, 0]
            async with aiohttp.ClientSession() as session:
                text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_model_requests_total", code="200") == 1

    run(scenario)


def test_headers_the_connection_header_nominates_are_dropped_both_ways() -> None:
    """Finding 6: headers named in `Connection` were forwarded (RFC 9110 7.6.1 says remove them)."""

    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            headers = {"Connection": "keep-alive, X-Client-Private", "X-Client-Private": "token",
                       "X-Kept": "yes"}
            async with session.get(f"http://127.0.0.1:{config.listen_port}/headers", headers=headers) as response:
                seen = await response.json()
                assert seen["x-kept"] == "yes"
                assert "x-client-private" not in seen
                assert "X-Runtime-Private" not in response.headers
                assert response.headers["X-Shipway-Model-Version"] == "v1"

    run(scenario)


def test_feedback_is_not_taken_on_the_serving_port_and_is_bounded_on_its_own() -> None:
    """Finding 5: /feedback shared the serving port, so anyone who could call inference forged labels;
    finding 2: one 69 MB /feedback body took 963 MiB and stalled inference."""

    async def scenario() -> None:
        async with chain(min_labels=1) as (_, _, config), aiohttp.ClientSession() as session:
            serving = f"http://127.0.0.1:{config.listen_port}"
            async with session.post(f"{serving}/v2/models/m/infer", data=oip("r0")) as response:
                assert response.status == 200
            forged = json.dumps({"id": "r0", "labels": [0, 1]}).encode()
            async with session.post(f"{serving}/feedback", data=forged) as response:
                # The runtime's answer (here an echo): the sidecar took no label from the serving port.
                assert await response.read() == forged
            labels = f"http://127.0.0.1:{config.feedback_port}/feedback"
            async with session.post(labels, data=b"[" + b'{"id":"x","label":1},' * 60_000 + b"{}]") as response:
                assert response.status == 413
            many = [{"id": f"q{index}", "label": 1} for index in range(10_001)]
            async with session.post(labels, json=many) as response:
                assert response.status == 413
                assert "smaller batches" in (await response.json())["error"]
            async with session.post(labels, json={"id": "r0", "labels": [1, 0]}) as response:
                assert await response.json() == {"matched": 2, "unknown_ids": 0}
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_model_online_accuracy") == 1.0
            assert sample(text, "shipway_sidecar_responses_total", listener="feedback", code="413") == 2
            assert sample(text, "shipway_sidecar_responses_total", listener="feedback", code="200") == 1

    run(scenario)


def test_a_declared_shape_never_inflates_the_drift_window() -> None:
    """Finding 5: one request declaring shape [1e12] set the drift window to 1e12 rows."""

    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            body = json.dumps({"inputs": [{"name": "f0", "shape": [10**12], "datatype": "FP64", "data": [0.5]}]})
            async with session.post(f"http://127.0.0.1:{config.listen_port}/predict", data=body) as response:
                assert response.status == 200
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_model_drift_window_rows") == 1

    run(scenario)


def test_pending_predictions_are_bounded_in_bytes_whatever_the_ids() -> None:
    """Finding 3: 20,000 requests with 8 KB request ids added 164 MiB."""
    pending = PendingPredictions(max_predictions=100_000, max_bytes=1024 * 1024)
    for index in range(20_000):
        pending.put(f"{index:08d}" + "i" * 8192, [1])
    assert pending.bytes <= 1024 * 1024
    # Long ids are kept as digests, so 20,000 of them fit in well under 8 MB and the newest still match.
    assert len(pending) > 3000
    assert pending.pop(f"{19_999:08d}" + "i" * 8192) == (1,)


def test_server_sent_events_stream_through_with_token_metrics() -> None:
    """Finding 7: responses were buffered whole, so time to first token became total time."""

    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v1/chat/completions"
            started = time.perf_counter()
            arrivals: list[float] = []
            async with session.post(url, json={"model": "m", "stream": True, "messages": []}) as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                assert response.headers["X-Shipway-Model-Version"] == "v1"
                async for line in response.content:
                    if line.startswith(b"data: ") and b'"content": "t' in line:
                        arrivals.append(time.perf_counter() - started)
            assert len(arrivals) == TOKENS
            # The first token arrives about one interval in, long before the stream ends.
            assert arrivals[0] < TOKENS * TOKEN_INTERVAL / 2
            assert arrivals[-1] - arrivals[0] > (TOKENS - 2) * TOKEN_INTERVAL
            async with session.post(url, json={"model": "m", "messages": []}) as response:
                assert (await response.json())["usage"]["completion_tokens"] == 2
            await asyncio.sleep(0.1)
            text = await metrics_text(session, config.metrics_port)
            model = {"model": "m", "version": "v1"}
            assert sample(text, "shipway_llm_time_to_first_token_seconds_count", **model) == 1
            ttft = sample(text, "shipway_llm_time_to_first_token_seconds_sum", **model)
            assert ttft is not None and TOKEN_INTERVAL * 0.8 < ttft < TOKEN_INTERVAL * 4
            assert sample(text, "shipway_llm_inter_token_latency_seconds_count", **model) == TOKENS - 1
            assert sample(text, "shipway_llm_prompt_tokens_total", **model) == 11 + 5
            assert sample(text, "shipway_llm_completion_tokens_total", **model) == TOKENS + 2
            assert sample(text, "shipway_llm_requests_total", outcome="length", **model) == 1
            assert sample(text, "shipway_llm_requests_total", outcome="success", **model) == 1

    run(scenario)


def test_a_large_body_streams_through_both_ways_unchanged_and_unread() -> None:
    """Finding 2: bodies were held whole (four 120 MiB requests peaked at 1,091 MiB); here one
    24 MiB body passes through byte for byte while the sidecar keeps no copy of it."""

    async def scenario() -> None:
        async with chain() as (_, sidecar, config), aiohttp.ClientSession() as session:
            body = bytes(range(256)) * (24 * 4096)
            async with session.post(f"http://127.0.0.1:{config.listen_port}/v2/models/x/infer",
                                    data=body) as response:
                assert response.status == 200
                echoed = await response.read()
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(body).digest()
            assert sidecar.proxy.budget.held == 0
            await asyncio.sleep(0.1)
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_model_unparsed_requests_total") == 1
            assert sample(text, "shipway_model_requests_total", code="200") == 1

    run(scenario)


def test_probes_answer_on_the_metrics_port_and_readiness_follows_the_runtime() -> None:
    """Finding 1: the probes called /healthz on the serving port, which is proxied to the runtime (404)."""

    async def scenario() -> None:
        async with chain() as (upstream, _, config), aiohttp.ClientSession() as session:
            probes = f"http://127.0.0.1:{config.metrics_port}"
            async with session.get(f"{probes}/livez") as response:
                assert response.status == 200
            async with session.get(f"{probes}/readyz") as response:
                assert response.status == 200
            await upstream.stop()
            async with session.get(f"{probes}/readyz") as response:
                assert response.status == 503
            async with session.get(f"{probes}/livez") as response:
                assert response.status == 200  # the sidecar lives on: restarting it would not help the runtime

    run(scenario)


def test_a_failure_inside_the_sidecar_is_a_counted_500_and_serving_goes_on() -> None:
    async def scenario() -> None:
        async with chain() as (_, sidecar, config), aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{config.listen_port}/v2/models/m/infer"
            relay = sidecar.proxy._relay

            async def broken(*args: object) -> None:
                raise RuntimeError("a bug")

            sidecar.proxy._relay = broken  # type: ignore[method-assign]
            async with session.post(url, data=oip()) as response:
                assert response.status == 500
                assert response.headers["X-Shipway-Model-Version"] == "v1"
            sidecar.proxy._relay = relay  # type: ignore[method-assign]
            async with session.post(url, data=oip()) as response:
                assert response.status == 200
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_sidecar_responses_total", listener="serving", code="500") == 1
            assert sample(text, "shipway_model_requests_total", code="500") == 1

    run(scenario)


def test_a_request_aiohttp_refuses_to_parse_is_answered_400_and_counted() -> None:
    """Finding 4: targets with CR/LF/NUL got an uncounted answer; a runtime (uvicorn) refuses them with 400 too."""

    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            for target in (b"/v2/models/m/infer\x00x", b"/v2/models/m/\rinfer"):
                reader, writer = await asyncio.open_connection("127.0.0.1", config.listen_port)
                writer.write(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                answer = await reader.read()
                writer.close()
                assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:80]
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_sidecar_responses_total", listener="serving", code="400") == 2
            # Proxied answers are the runtime's, not the sidecar's: none counted as its own.
            async with session.get(f"http://127.0.0.1:{config.listen_port}/v2/health/ready") as response:
                assert response.status == 200
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_sidecar_responses_total", listener="serving", code="200") is None

    run(scenario)


def test_a_client_leaving_mid_body_is_not_counted_as_a_sidecar_failure() -> None:
    async def scenario() -> None:
        async with chain() as (_, _, config), aiohttp.ClientSession() as session:
            reader, writer = await asyncio.open_connection("127.0.0.1", config.listen_port)
            writer.write(b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\"")
            await writer.drain()
            writer.write_eof()
            assert await reader.read() == b""  # nobody is left to answer
            writer.close()
            text = await metrics_text(session, config.metrics_port)
            assert sample(text, "shipway_sidecar_responses_total", listener="serving", code="500") is None
            assert sample(text, "shipway_model_request_errors_total") == 0

    run(scenario)
