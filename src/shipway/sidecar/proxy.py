"""The sidecar's HTTP side: a reverse proxy on the serving port and a metrics server beside it.

The proxy forwards every request's bytes unchanged and answers with the
runtime's status, headers and bytes. It never fails a request itself: a body it
cannot read is forwarded and counted, and only an unreachable runtime turns
into a 502 (or 504 on timeout), which is counted as an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from shipway.sidecar import payload
from shipway.sidecar.observer import Observer

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
FEEDBACK_PATH = "/feedback"
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded;
# the length is recomputed by aiohttp for the bytes actually sent.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "host",
    }
)
# The OIP model repository API (load/unload) is management traffic, not inference.
NON_INFERENCE_PREFIXES = ("/v2/repository",)


@dataclass(frozen=True)
class ProxySettings:
    """Where the runtime is and how long to wait for it."""

    upstream: str
    timeout_seconds: float = 300.0
    max_body_bytes: int = 256 * 1024 * 1024
    # Below the usual 5 s keep-alive of uvicorn-based runtimes, so the proxy never
    # reuses a connection the runtime is about to close.
    keepalive_seconds: float = 3.0
    connections: int = 512


class Proxy:
    """The request handlers and the one upstream client session they share."""

    def __init__(self, settings: ProxySettings, observer: Observer) -> None:
        self.settings = settings
        self.observer = observer
        self.upstream = settings.upstream.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application | None = None) -> None:
        """Open the upstream session (an aiohttp on_startup hook)."""
        connector = aiohttp.TCPConnector(
            limit=self.settings.connections, keepalive_timeout=self.settings.keepalive_seconds
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def close(self, _app: web.Application | None = None) -> None:
        """Close the upstream session (an aiohttp on_cleanup hook)."""
        if self._session is not None:
            await self._session.close()

    def serving_app(self) -> web.Application:
        """The application on the serving port: /feedback, and everything else proxied."""
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.close)
        app.router.add_post(FEEDBACK_PATH, self.feedback)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        return app

    def metrics_app(self) -> web.Application:
        """The application on the metrics address."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Proxy one request to the runtime and account for it."""
        started = time.perf_counter()
        body = await request.read()
        inference = request.method == "POST" and not request.path.startswith(NON_INFERENCE_PREFIXES)
        document = self.observer.parse(body, request.headers.get("Content-Encoding")) if inference else None
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        request_id = headers.get(REQUEST_ID_HEADER) or payload.request_id(document)
        if inference and request_id is None:
            request_id = uuid.uuid4().hex
        if request_id is not None and REQUEST_ID_HEADER not in headers:
            # The id travels in a header so the request bytes stay exactly as sent.
            headers[REQUEST_ID_HEADER] = request_id
        # Reads and inference are safe to send twice; model load/unload (repository POSTs) are not.
        repeatable = inference or request.method in ("GET", "HEAD", "OPTIONS")
        status, response_headers, response_body = await self._call_upstream(request, headers, body, repeatable)
        if request_id is not None and REQUEST_ID_HEADER not in response_headers:
            response_headers[REQUEST_ID_HEADER] = request_id
        if inference:
            seconds = time.perf_counter() - started
            # Accounting runs after the response is written, off the request's critical path.
            asyncio.get_running_loop().call_soon(
                self._record, request_id, document, status, response_body, seconds
            )
        return web.Response(status=status, headers=response_headers, body=response_body)

    async def _call_upstream(
        self, request: web.Request, headers: CIMultiDict[str], body: bytes, repeatable: bool
    ) -> tuple[int, CIMultiDict[str], bytes]:
        assert self._session is not None, "the proxy session opens on application startup"
        # The raw path and query as received, marked encoded so nothing is re-escaped.
        url = URL(self.upstream + request.raw_path, encoded=True)
        # One retry covers a keep-alive connection the runtime closed between requests, for
        # requests that may be sent twice.
        for attempt in (1, 2) if repeatable else (2,):
            try:
                async with self._session.request(
                    request.method, url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    response_body = await response.read()
                    response_headers = CIMultiDict(
                        (k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP
                    )
                    return response.status, response_headers, response_body
            except aiohttp.ServerDisconnectedError as error:
                if attempt == 2:
                    return _unreachable(502, f"runtime closed the connection: {error}")
            except asyncio.TimeoutError:
                return _unreachable(504, f"runtime did not answer within {self.settings.timeout_seconds:g} s")
            except (aiohttp.ClientError, OSError) as error:
                return _unreachable(502, f"runtime unreachable at {self.upstream}: {error}")
        raise AssertionError("unreachable: the loop returns on its second attempt")

    def _record(self, request_id: str | None, document: Any, status: int, body: bytes, seconds: float) -> None:
        try:
            self.observer.record(request_id, document, status, body, seconds)
        except Exception:  # noqa: BLE001 - a bookkeeping bug must never take serving down
            log.exception("sidecar bookkeeping failed for request %s", request_id)

    async def feedback(self, request: web.Request) -> web.Response:
        """Take delayed labels: {"id", "label" | "labels"}, or a list of such objects."""
        document = payload.load_json(await request.read())
        items = document if isinstance(document, list) else [document]
        # Every item is checked before any is applied: a rejected body consumes no prediction,
        # and an item without a label is refused rather than scored as a wrong prediction.
        if not all(
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and (isinstance(item.get("labels"), list) or "label" in item)
            for item in items
        ):
            return _json(400, {"error": 'expected {"id": "<request id>", "labels": [...]} or a list of them'})
        matched = unknown = 0
        for item in items:
            labels = item["labels"] if isinstance(item.get("labels"), list) else [item["label"]]
            count = self.observer.feedback(item["id"], labels)
            matched += count
            unknown += count == 0
        return _json(200, {"matched": matched, "unknown_ids": unknown})

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus exposition, with drift statistics refreshed for this scrape."""
        self.observer.refresh()
        return web.Response(
            body=generate_latest(self.observer.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        """Liveness of the sidecar itself, whatever the runtime's state."""
        return _json(200, {"status": "ok"})


def _unreachable(status: int, message: str) -> tuple[int, CIMultiDict[str], bytes]:
    headers = CIMultiDict({"Content-Type": "application/json", "x-shipway-sidecar": "upstream-error"})
    return status, headers, json.dumps({"error": message}).encode()


def _json(status: int, document: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(document).encode(), content_type="application/json")
