"""Streaming through the sidecar against a direct stream: time to first token and tokens per second.

A local OpenAI-compatible server (aiohttp, its own process) answers
`POST /v1/chat/completions` with `stream: true` as server-sent events: one token
event every `1/--rate` seconds after a fixed `--prefill` delay, then usage and
`[DONE]`, as vLLM does. The real `shipway sidecar` command runs in front of it in
another process. Measured side by side in one run, direct and proxied in turn:

* time to first token, one stream at a time (p50 over `--ttft-streams`); target: added < 2 ms,
* tokens per second over `--streams` concurrent streams; target: >= 0.98 of direct.

    python benchmarks/sidecar_streaming.py [--rate 100] [--tokens 200] [--streams 32] [--ttft-streams 100]

The machine these figures come from is shared: run it with `nice` and read the figures as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

SIDECAR = "import typer; from shipway.cli import sidecar; app = typer.Typer(); sidecar.register(app); app()"
SERVER = """
import asyncio, json, sys
from aiohttp import web
PREFILL, INTERVAL, TOKENS = float(sys.argv[2]), 1.0 / float(sys.argv[3]), int(sys.argv[4])
async def chat(request):
    document = await request.json()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    start = loop.time() + PREFILL
    head = {"id": "c", "object": "chat.completion.chunk", "model": document.get("model", "m"),
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    await response.write(b"data: " + json.dumps(head).encode() + b"\\n\\n")
    tokens = int(document.get("max_tokens") or TOKENS)
    for index in range(tokens):
        # A fixed schedule, so a slow reader never changes the rate the server offers.
        await asyncio.sleep(max(0.0, start + index * INTERVAL - loop.time()))
        reason = "stop" if index == tokens - 1 else None
        event = {"id": "c", "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": " tok"}, "finish_reason": reason}]}
        await response.write(b"data: " + json.dumps(event).encode() + b"\\n\\n")
    usage = {"id": "c", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": tokens,
                                                 "total_tokens": 12 + tokens}}
    await response.write(b"data: " + json.dumps(usage).encode() + b"\\n\\ndata: [DONE]\\n\\n")
    await response.write_eof()
    return response
async def health(request):
    return web.Response()
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
REQUEST = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
           "messages": [{"role": "user", "content": "hello"}]}


def child_environment() -> dict[str, str]:
    """This environment, with the shipway imported here first on the children's path."""
    import shipway

    source = str(Path(shipway.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


async def wait_ready(url: str, seconds: float = 30.0) -> None:
    """Poll until the URL answers 200."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


async def stream(session: aiohttp.ClientSession, url: str, max_tokens: int | None = None) -> tuple[float, int, float]:
    """One streamed chat completion: seconds to the first token, tokens received, seconds in all."""
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    request = REQUEST if max_tokens is None else {**REQUEST, "max_tokens": max_tokens}
    async with session.post(url, json=request) as response:
        assert response.status == 200, response.status
        async for line in response.content:
            if line.startswith(b"data: ") and b'"content": " tok"' in line:
                if not tokens:
                    first = time.perf_counter() - started
                tokens += 1
    return first, tokens, time.perf_counter() - started


async def first_tokens(url: str, count: int) -> list[float]:
    """Time to first token of `count` short streams (three tokens), one at a time."""
    async with aiohttp.ClientSession() as session:
        return [(await stream(session, url, max_tokens=3))[0] for _ in range(count)]


async def tokens_per_second(url: str, streams: int) -> float:
    """Tokens per second received over `streams` concurrent streams."""
    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        results = await asyncio.gather(*(stream(session, url) for _ in range(streams)))
        return sum(tokens for _, tokens, _ in results) / (time.perf_counter() - started)


def free_port() -> int:
    """A port nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def measure(options: argparse.Namespace) -> None:
    """Start both servers, measure direct and through the sidecar in turn, print the ratios."""
    upstream, serving, metrics, feedback = free_port(), free_port(), free_port(), free_port()
    processes = [
        subprocess.Popen([sys.executable, "-c", SERVER, str(upstream), str(options.prefill), str(options.rate),
                          str(options.tokens)], start_new_session=True),
        subprocess.Popen(
            [sys.executable, "-c", SIDECAR, "sidecar", "--listen", f"127.0.0.1:{serving}",
             "--metrics-listen", f"127.0.0.1:{metrics}", "--feedback-listen", f"127.0.0.1:{feedback}",
             "--upstream", f"http://127.0.0.1:{upstream}", "--runtime-ready-path", "/health",
             "--model", "m", "--version", "bench", "--pending-limit", "0"],
            start_new_session=True, stdout=subprocess.DEVNULL, env=child_environment()),
    ]
    try:
        await wait_ready(f"http://127.0.0.1:{upstream}/health")
        await wait_ready(f"http://127.0.0.1:{metrics}/readyz")
        direct = f"http://127.0.0.1:{upstream}/v1/chat/completions"
        proxied = f"http://127.0.0.1:{serving}/v1/chat/completions"
        await first_tokens(direct, 5)
        await first_tokens(proxied, 5)
        direct_ttft, proxied_ttft, direct_rates, proxied_rates = [], [], [], []
        for _ in range(options.rounds):
            direct_ttft += await first_tokens(direct, options.ttft_streams // options.rounds)
            proxied_ttft += await first_tokens(proxied, options.ttft_streams // options.rounds)
            direct_rates.append(await tokens_per_second(direct, options.streams))
            proxied_rates.append(await tokens_per_second(proxied, options.streams))
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{metrics}/metrics") as answer:
            exposition = await answer.text()
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
    added_ms = (statistics.median(proxied_ttft) - statistics.median(direct_ttft)) * 1000
    ratio = statistics.median(proxied_rates) / statistics.median(direct_rates)
    recorded = [line for line in exposition.splitlines()
                if line.startswith(("shipway_llm_time_to_first_token_seconds_count",
                                    "shipway_llm_completion_tokens_total{"))]
    print(f"cpus: {os.cpu_count()} (shared machine; figures vary run to run)  rate: {options.rate:g} tokens/s"
          f"  tokens: {options.tokens}  prefill: {options.prefill * 1000:g} ms  streams: {options.streams}"
          f"  rounds: {options.rounds}")
    print(f"time to first token p50 direct {statistics.median(direct_ttft) * 1000:.3f} ms, via sidecar "
          f"{statistics.median(proxied_ttft) * 1000:.3f} ms: added {added_ms:.3f} ms"
          f" (target < 2 ms: {'PASS' if added_ms < 2 else 'FAIL'})")
    print(f"tokens/s over {options.streams} streams direct {[round(r) for r in direct_rates]}, via sidecar "
          f"{[round(r) for r in proxied_rates]}: ratio of medians {ratio:.3f}"
          f" (target >= 0.98: {'PASS' if ratio >= 0.98 else 'FAIL'})")
    print("sidecar recorded: " + "; ".join(recorded))
    print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} cpus")


def main() -> None:
    """Parse options and run the measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="Tokens per second each stream offers.")
    parser.add_argument("--tokens", type=int, default=200, help="Tokens per stream.")
    parser.add_argument("--prefill", type=float, default=0.02, help="Seconds before the first token.")
    parser.add_argument("--streams", type=int, default=32, help="Concurrent streams for tokens per second.")
    parser.add_argument("--ttft-streams", type=int, default=100, help="Sequential streams for time to first token.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating direct/proxied rounds.")
    options = parser.parse_args()
    asyncio.run(measure(options))


if __name__ == "__main__":
    main()
