"""The sidecar's HTTP side: a streaming reverse proxy, a feedback listener, and metrics and probes.

Three listeners, three trust levels:

* serving (proxied): every request's bytes go to the runtime as they arrive and its answer's
  bytes come back as they arrive, server-sent events included. Only a copy of small bodies is
  kept for reading, within one byte budget; anything larger passes through unread.
* feedback: delayed labels, on a port the NetworkPolicy opens only to the team's namespace.
* metrics: /metrics, /livez (the sidecar itself) and /readyz (the runtime's own readiness).

The proxy never fails a request the runtime would accept. What it answers itself (an
unreachable runtime, an oversized feedback body, a bug) it counts by code.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from shipway.sidecar import llm, payload
from shipway.sidecar.budget import ByteBudget, Capture
from shipway.sidecar.hygiene import forwardable, header_safe_id, origin_target
from shipway.sidecar.observer import Observer

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
MODEL_VERSION_HEADER = "X-Shipway-Model-Version"
SIDECAR_HEADER = "x-shipway-sidecar"
FEEDBACK_PATH = "/feedback"
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
# The OIP model repository API (load/unload) is management traffic, not inference.
NON_INFERENCE_PREFIXES = ("/v2/repository",)
# Bodies up to this size are read whole before forwarding (a request's id can then be read from
# it); larger ones stream from the first byte.
INLINE_BYTES = 64 * 1024
# Only these are sent a second time when the runtime drops a kept-alive connection before answering:
# a POST (inference, generation, model load) may have done its work, and is never repeated.
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EVENT_STREAM = "text/event-stream"
# Marks a request the application handled, so the access log counts only what aiohttp refused itself.
# (A typed key from aiohttp 3.14 on; older releases take the plain string.)
_SEEN: Any = web.RequestKey("shipway.sidecar.seen", bool) if hasattr(web, "RequestKey") else "shipway.sidecar.seen"


@dataclass(frozen=True)
class ProxySettings:
    """Where the runtime is, how long to wait for it, and what the sidecar may hold."""

    upstream: str
    timeout_seconds: float = 300.0
    # The runtime's own readiness route, which /readyz reports (OIP /v2/health/ready, vLLM /health).
    runtime_ready_path: str = "/v2/health/ready"
    # All copies of bodies held for reading, together.
    capture_budget_bytes: int = 64 * 1024 * 1024
    feedback_max_bytes: int = 1024 * 1024
    feedback_max_items: int = 10_000
    # Below the usual 5 s keep-alive of uvicorn-based runtimes, so the proxy rarely reuses a
    # connection the runtime is about to close.
    keepalive_seconds: float = 3.0
    connections: int = 512


class Proxy:
    """The request handlers, the one upstream client session they share, and the bookkeeping thread."""

    def __init__(self, settings: ProxySettings, observer: Observer) -> None:
        self.settings = settings
        self.observer = observer
        self.metrics = observer.metrics
        self.upstream = settings.upstream.rstrip("/")
        self.budget = ByteBudget(settings.capture_budget_bytes)
        self._session: aiohttp.ClientSession | None = None
        # One thread does all parsing and bookkeeping, in arrival order: the event loop only moves bytes.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sidecar-bookkeeping")
        self._queued: list[tuple[_Exchange, bytes | None, str | None, bytes | None, int]] = []

    async def start(self) -> None:
        """Open the upstream session, once."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self.settings.connections, keepalive_timeout=self.settings.keepalive_seconds
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            # Generations stream for minutes: bound the wait for each byte, not the whole exchange.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.settings.timeout_seconds),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        """Close the upstream session and let queued bookkeeping finish."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)

    def serving_app(self) -> web.Application:
        """The application on the serving port: everything proxied, /feedback included."""
        app = web.Application(middlewares=[self._counted("serving", version_header=True)])
        app.router.add_route("*", "/{tail:.*}", self.forward)
        return app

    def feedback_app(self) -> web.Application:
        """The application on the feedback port: delayed labels, bounded in bytes and items."""
        app = web.Application(client_max_size=self.settings.feedback_max_bytes,
                              middlewares=[self._counted("feedback", version_header=False)])
        app.router.add_post(FEEDBACK_PATH, self.feedback)
        return app

    def metrics_app(self) -> web.Application:
        """The application on the metrics port: metrics and both probes, never proxied."""
        app = web.Application()
        app.router.add_get("/metrics", self.scrape)
        app.router.add_get(LIVENESS_PATH, self.livez)
        app.router.add_get(READINESS_PATH, self.readyz)
        return app

    def _counted(self, listener: str, version_header: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
        """Middleware: every answer the sidecar makes itself is counted; an unexpected failure is a counted 500."""

        @web.middleware
        async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
            request[_SEEN] = True
            try:
                response = await handler(request)
            except web.HTTPException as error:
                # aiohttp's own refusals (a feedback body over its bound: 413) are answers of the sidecar.
                self.metrics.response(listener, error.status)
                if version_header:
                    error.headers[MODEL_VERSION_HEADER] = self.metrics.version
                raise
            except (asyncio.CancelledError, ConnectionError):
                raise
            except Exception:  # noqa: BLE001 - a bug answers 500, counted, and serving goes on
                log.exception("sidecar failed on %s %s", request.method, request.path)
                response = _json(500, {"error": "the sidecar failed on this request; see its log"})
                self.metrics.response(listener, 500)
            if version_header and not response.prepared:
                response.headers[MODEL_VERSION_HEADER] = self.metrics.version
            return response

        return middleware

    def refusals_counter(self, listener: str) -> type[AbstractAccessLogger]:
        """An access-log class that counts what aiohttp answered itself, before the application saw the request.

        A request line or header aiohttp cannot parse (a raw NUL or CR in the target, an oversized
        header) is refused with 400 by aiohttp's protocol handler; those answers are the sidecar's too.
        """
        metrics = self.metrics

        class RefusalCounter(AbstractAccessLogger):
            def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
                if _SEEN not in request:
                    metrics.response(listener, response.status)

        return RefusalCounter

    # --- serving --------------------------------------------------------------------------

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Stream one request to the runtime and its answer back, and account for it."""
        assert self._session is not None, "the proxy session opens on application startup"
        started = time.perf_counter()
        method = request.method
        inference = method == "POST" and not request.path.startswith(NON_INFERENCE_PREFIXES)
        generation = llm.is_generation(method, request.path)
        headers = forwardable(request.headers)
        capture = Capture(self.budget, self.observer.settings.max_parse_bytes) if inference else None
        try:
            body, document = await self._request_body(request, capture)
        except web.HTTPException as error:
            if inference:
                self.metrics.request(error.status)
            raise
        if isinstance(body, AsyncIterator) and request.content_length is not None:
            # Streamed as it arrives, with the length it was announced with (not re-chunked).
            headers["Content-Length"] = str(request.content_length)
        given_id = request.headers.get(REQUEST_ID_HEADER)
        request_id = header_safe_id(given_id) if given_id else None
        if request_id is None and inference:
            found = payload.request_id(document)
            request_id = header_safe_id(found) if found is not None else uuid.uuid4().hex
            # The id travels in a header so the request bytes stay exactly as sent.
            headers[REQUEST_ID_HEADER] = request_id
        url = URL(self.upstream + origin_target(request.raw_path, request.rel_url.raw_path_qs), encoded=True)
        exchange = _Exchange(started, request_id, capture, document, generation)
        try:
            return await self._exchange(request, url, headers, body, exchange)
        except Exception:
            # The middleware answers 500; the request is counted with that code.
            exchange.status, exchange.broken = 500, True
            raise
        finally:
            if inference:
                self._account(request, exchange)
            elif capture is not None:
                capture.drop()

    async def _request_body(
        self, request: web.Request, capture: Capture | None
    ) -> tuple[bytes | AsyncIterator[bytes] | None, Any]:
        """The body to send: bytes when small (with its JSON, when inference), else a stream of its chunks."""
        if not request.body_exists:
            return None, None
        content = request.content
        head: list[bytes] = []
        length = request.content_length
        if length is not None and length <= INLINE_BYTES:
            # The common case, small and announced: one read.
            try:
                head.append(await content.readexactly(length))
            except asyncio.IncompleteReadError:
                raise web.HTTPBadRequest(text="the request body ended before its Content-Length") from None
            at_end = True
        else:
            at_end = False
            size = 0
            while size <= INLINE_BYTES:
                chunk = await content.readany()
                if not chunk:
                    at_end = True
                    break
                head.append(chunk)
                size += len(chunk)
        if at_end:
            body = head[0] if len(head) == 1 else b"".join(head)
            if capture is None:
                return body, None
            capture.add(body)
            document = None
            if not capture.overflowed and REQUEST_ID_HEADER not in request.headers:
                # Read now only for its id; otherwise the bookkeeping thread reads it.
                document = self.observer.parse(body, request.headers.get("Content-Encoding"))
            return body, document

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in head:
                if capture is not None:
                    capture.add(chunk)
                yield chunk
            head.clear()
            async for chunk in content.iter_any():
                if capture is not None:
                    capture.add(chunk)
                yield chunk

        return chunks(), None

    async def _exchange(
        self, request: web.Request, url: URL, headers: CIMultiDict[str], body: Any, exchange: _Exchange
    ) -> web.StreamResponse:
        assert self._session is not None
        attempts = 2 if request.method in REPEATABLE_METHODS and not isinstance(body, AsyncIterator) else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self._session.request(
                    request.method, url, data=body, headers=headers, allow_redirects=False
                ) as upstream:
                    return await self._relay(request, upstream, exchange)
            except aiohttp.ServerDisconnectedError as error:
                if exchange.relayed:
                    return exchange.response  # type: ignore[return-value]
                if attempt == attempts:
                    return self._unreachable(request, exchange, 502, f"runtime closed the connection: {error}")
            except asyncio.TimeoutError:
                if exchange.relayed:
                    return exchange.response  # type: ignore[return-value]
                return self._unreachable(request, exchange, 504,
                                         f"runtime did not answer within {self.settings.timeout_seconds:g} s")
            except (aiohttp.ClientError, OSError) as error:
                if exchange.relayed:
                    return exchange.response  # type: ignore[return-value]
                return self._unreachable(request, exchange, 502, f"runtime unreachable at {self.upstream}: {error}")
        raise AssertionError("unreachable: the last attempt returns")

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, exchange: _Exchange
    ) -> web.StreamResponse:
        """The runtime's answer, written to the client as it arrives; a copy of small ones kept for reading."""
        exchange.status = upstream.status
        headers = forwardable(upstream.headers)
        if exchange.request_id is not None and REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = exchange.request_id
        headers[MODEL_VERSION_HEADER] = self.metrics.version
        streamed = upstream.content_type == EVENT_STREAM
        keep = exchange.capture is not None and upstream.status < 400 and not streamed
        length = upstream.content_length
        if length is not None and length <= INLINE_BYTES and not streamed:
            body = await upstream.read()
            if keep:
                exchange.response_capture = Capture(self.budget, self.observer.settings.max_parse_bytes)
                exchange.response_capture.add(body)
            return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
        if length is not None and request.method != "HEAD":
            response.content_length = length
        exchange.response = response
        await response.prepare(request)
        exchange.relayed = True
        meter = llm.StreamMeter(exchange.started) if exchange.generation and streamed else None
        exchange.meter = meter
        copy = Capture(self.budget, self.observer.settings.max_parse_bytes) if keep else None
        exchange.response_capture = copy
        try:
            async for chunk in upstream.content.iter_any():
                try:
                    await response.write(chunk)
                except ConnectionError:
                    # The client left: stop reading, so the runtime sees its connection close and stops too.
                    exchange.cancelled = True
                    return response
                if meter is not None:
                    meter.feed(chunk, time.perf_counter())
                if copy is not None:
                    copy.add(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            # Headers are gone already: the only honest signal left is to break the client's connection.
            log.warning("runtime broke off its answer to %s: %s", request.path, error)
            exchange.broken = True
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    def _unreachable(self, request: web.Request, exchange: _Exchange, status: int, message: str) -> web.Response:
        exchange.status = status
        exchange.broken = True
        self.metrics.response("serving", status)
        headers = {SIDECAR_HEADER: "upstream-error", MODEL_VERSION_HEADER: self.metrics.version}
        if exchange.request_id is not None:
            headers[REQUEST_ID_HEADER] = exchange.request_id
        return _json(status, {"error": message}, headers)

    def _account(self, request: web.Request, exchange: _Exchange) -> None:
        """Count the exchange now; parse what was kept on the bookkeeping thread, off the event loop."""
        seconds = time.perf_counter() - exchange.started
        status = exchange.status
        metrics = self.metrics
        metrics.request(status)
        metrics.duration.observe(seconds)
        if status >= 500 or exchange.broken:
            metrics.errors.inc()
        meter = exchange.meter
        if meter is not None:
            self._account_stream(exchange, meter)
        request_body, request_bytes = exchange.capture.take() if exchange.capture else (None, 0)
        response_body, response_bytes = (
            exchange.response_capture.take() if exchange.response_capture else (None, 0))
        self._queued.append((exchange, request_body, request.headers.get("Content-Encoding"), response_body,
                             request_bytes + response_bytes))
        if len(self._queued) == 1:
            # Handed over on the next loop turn, after the response has been written, and in batches
            # under load: waking the bookkeeping thread mid-request would make the request wait for it.
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        batch, self._queued = self._queued, []
        self._worker.submit(self._record_all, batch)

    def _record_all(self, batch: list[tuple[_Exchange, bytes | None, str | None, bytes | None, int]]) -> None:
        for job in batch:
            self._record(*job)

    def _account_stream(self, exchange: _Exchange, meter: llm.StreamMeter) -> None:
        metrics = self.metrics
        if meter.first_token is not None:
            metrics.time_to_first_token.observe(meter.first_token - meter.started)
        for gap in meter.gaps:
            metrics.inter_token_latency.observe(gap)
        if meter.prompt_tokens is not None:
            metrics.prompt_tokens.inc(meter.prompt_tokens)
        completion = meter.completion_tokens if meter.completion_tokens is not None else meter.token_events
        metrics.completion_tokens.inc(completion)
        outcome = llm.outcome(exchange.status, meter.finish_reason, exchange.broken, exchange.cancelled)
        metrics.llm_outcomes[outcome].inc()

    def _record(self, exchange: _Exchange, request_body: bytes | None, encoding: str | None,
                response_body: bytes | None, held: int) -> None:
        """Bookkeeping of one exchange, on the bookkeeping thread."""
        try:
            document = exchange.document
            if document is None and request_body is not None:
                document = self.observer.parse(request_body, encoding)
            response = payload.load_json(response_body) if response_body else None
            if exchange.generation and exchange.meter is None:
                self._account_generation(exchange, response)
            self.observer.observe(exchange.request_id, document, exchange.status, response)
        except Exception:  # noqa: BLE001 - a bookkeeping bug must never take serving down
            log.exception("sidecar bookkeeping failed for request %s", exchange.request_id)
        finally:
            self.budget.release(held)

    def _account_generation(self, exchange: _Exchange, response: Any) -> None:
        found = llm.usage(response)
        metrics = self.metrics
        if found is not None:
            if found.prompt_tokens is not None:
                metrics.prompt_tokens.inc(found.prompt_tokens)
            if found.completion_tokens is not None:
                metrics.completion_tokens.inc(found.completion_tokens)
        reason = found.finish_reason if found is not None else None
        metrics.llm_outcomes[llm.outcome(exchange.status, reason, exchange.broken, exchange.cancelled)].inc()

    # --- feedback, metrics, probes --------------------------------------------------------

    async def feedback(self, request: web.Request) -> web.Response:
        """Take delayed labels: {"id", "label" | "labels"}, or a list of such objects."""
        body = await request.read()
        status, answer = await asyncio.get_running_loop().run_in_executor(self._worker, self._feedback, body)
        self.metrics.response("feedback", status)
        return _json(status, answer)

    def _feedback(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Parse and apply one feedback body, on the bookkeeping thread."""
        document = payload.load_json(body)
        items = document if isinstance(document, list) else [document]
        if len(items) > self.settings.feedback_max_items:
            return 413, {"error": f"at most {self.settings.feedback_max_items} labels per request; "
                                  f"got {len(items)}, send them in smaller batches"}
        # Every item is checked before any is applied: a rejected body consumes no prediction,
        # and an item without a label is refused rather than scored as a wrong prediction.
        if not all(
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and (isinstance(item.get("labels"), list) or "label" in item)
            for item in items
        ):
            return 400, {"error": 'expected {"id": "<request id>", "labels": [...]} or a list of them'}
        matched = unknown = 0
        for item in items:
            labels = item["labels"] if isinstance(item.get("labels"), list) else [item["label"]]
            count = self.observer.feedback(item["id"], labels)
            matched += count
            unknown += count == 0
        return 200, {"matched": matched, "unknown_ids": unknown}

    async def scrape(self, _request: web.Request) -> web.Response:
        """Prometheus exposition, with drift statistics refreshed for this scrape."""
        await asyncio.get_running_loop().run_in_executor(self._worker, self.observer.refresh)
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def livez(self, _request: web.Request) -> web.Response:
        """Liveness of the sidecar itself, whatever the runtime's state."""
        return _json(200, {"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready exactly when the runtime's own readiness route answers 200."""
        assert self._session is not None
        url = self.upstream + self.settings.runtime_ready_path
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            return _json(503, {"ready": False, "runtime": url, "error": str(error) or type(error).__name__})
        return _json(200 if status == 200 else 503, {"ready": status == 200, "runtime": url, "status": status})


@dataclass
class _Exchange:
    """What one proxied request has shown so far."""

    started: float
    request_id: str | None
    capture: Capture | None
    document: Any
    generation: bool
    status: int = 0
    relayed: bool = False
    broken: bool = False
    cancelled: bool = False
    response: web.StreamResponse | None = None
    response_capture: Capture | None = None
    meter: llm.StreamMeter | None = None


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(document, status=status, headers=headers)
