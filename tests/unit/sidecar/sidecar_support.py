"""A real upstream and a real sidecar on 127.0.0.1, started inside the test's event loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from aiohttp import web

from shipway.drift.profile import ReferenceProfile, build_profile
from shipway.sidecar.metrics import SloThresholds
from shipway.sidecar.observer import ObserverSettings
from shipway.sidecar.server import RunningSidecar, SidecarConfig, start
from net_support import free_port


def reference() -> ReferenceProfile:
    """Four standard-normal features and balanced 0/1 predictions."""
    rng = np.random.default_rng(0)
    return build_profile(rng.normal(size=(5000, 4)), predictions=np.array([0, 1] * 2500))


async def _infer(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        document = json.loads(body)
        rows = int(document["inputs"][0]["shape"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        return web.json_response({"error": "bad request"}, status=400)
    # The prediction is 1 when the first feature is positive: labels can then be checked.
    first = document["inputs"][0]["data"]
    flat = [row[0] for row in first] if first and isinstance(first[0], list) else first[::4]
    return web.json_response(
        {
            "model_name": "m",
            "id": request.headers.get("x-request-id", ""),
            "outputs": [{"name": "predict", "shape": [rows], "datatype": "INT64", "data": [int(v > 0) for v in flat]}],
        },
        headers={"x-body-sha256": hashlib.sha256(body).hexdigest()},
    )


# An OpenAI-compatible stream: one token event every TOKEN_INTERVAL seconds, then usage, then [DONE].
TOKENS = 8
TOKEN_INTERVAL = 0.05


async def _chat(request: web.Request) -> web.StreamResponse:
    document = await request.json()
    if not document.get("stream"):
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    await response.write(b"data: " + json.dumps(role).encode() + b"\n\n")
    for index in range(TOKENS):
        await asyncio.sleep(TOKEN_INTERVAL)
        reason = "length" if index == TOKENS - 1 else None
        event = {"choices": [{"index": 0, "delta": {"content": f"t{index} "}, "finish_reason": reason}]}
        await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
    usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": TOKENS, "total_tokens": 11 + TOKENS}}
    await response.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
    await response.write_eof()
    return response


async def _headers(request: web.Request) -> web.Response:
    # Answers with the headers it got, and nominates one of its own for removal by the proxy.
    await request.read()
    return web.json_response({name.lower(): value for name, value in request.headers.items()},
                             headers={"Connection": "x-runtime-private", "X-Runtime-Private": "secret"})


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=body, headers={"x-body-sha256": hashlib.sha256(body).hexdigest()})


@dataclass
class Upstream:
    """A tiny OIP runtime that can be stopped and started again on the same port."""

    port: int
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (again) on the same port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v2/models/m/infer", _infer)
        app.router.add_post("/v1/chat/completions", _chat)
        app.router.add_route("*", "/headers", _headers)
        app.router.add_route("*", "/{tail:.*}", _echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening, as a crashed runtime would."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@asynccontextmanager
async def chain(
    min_labels: int = 2, thresholds: SloThresholds | None = None, features: tuple[str, ...] = ()
) -> AsyncIterator[tuple[Upstream, RunningSidecar, SidecarConfig]]:
    """An upstream with a sidecar in front of it; both stopped on exit."""
    upstream = Upstream(free_port())
    await upstream.start()
    config = SidecarConfig(
        listen_host="127.0.0.1",
        listen_port=free_port(),
        metrics_host="127.0.0.1",
        metrics_port=free_port(),
        feedback_port=free_port(),
        upstream=f"http://127.0.0.1:{upstream.port}",
        model="m",
        version="v1",
        profile=reference(),
        features=features,
        observer=ObserverSettings(min_labels=min_labels, flush_rows=1),
        timeout_seconds=5.0,
        thresholds=thresholds or SloThresholds(),
    )
    sidecar = await start(config)
    try:
        yield upstream, sidecar, config
    finally:
        await sidecar.stop()
        await upstream.stop()


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from a Prometheus exposition, or None when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        label_text, value = line[len(name) + 1 :].rsplit("} ", 1)
        found = dict(part.split("=", 1) for part in label_text.split(","))
        if all(found.get(key) == f'"{wanted}"' for key, wanted in labels.items()):
            return float(value)
    return None
