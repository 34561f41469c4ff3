"""Peak memory of the real `shipway sidecar` under each memory attack of issue #15, against its rendered limit.

The sidecar runs as its own process (the CLI a pod runs, with a drift reference); an aiohttp
runtime and the attacking client run here. Each attack runs alone, one after the other:

* four concurrent 120 MiB request bodies,
* three concurrent 200 MiB response bodies,
* one 69 MB /feedback body (on the feedback port), while small inference requests measure any stall,
* one 257 MiB request body,
* 20,000 requests with 8 KB request ids (pending predictions).

The peak is the kernel's high-water mark of the sidecar's resident memory (VmHWM in
/proc/PID/status), read after each attack; it never goes down, so each figure is the peak so far.

    python benchmarks/sidecar_attacks.py [--id-requests 20000] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

MIB = 1024 * 1024
SIDECAR = "import typer; from shipway.cli import sidecar; app = typer.Typer(); sidecar.register(app); app()"
ANSWER = json.dumps({"model_name": "m", "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64",
                                                    "data": [1]}]}).encode()
SMALL = json.dumps({"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64",
                                "data": [[0.1, -0.4, 1.2, 0.3]]}]}).encode()


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_rss(pid: int) -> int:
    """The process's resident-memory high-water mark, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc: not Linux?")


def rendered_sidecar_limit() -> int:
    """The memory limit the sidecar container is rendered with, in bytes."""
    from shipway.delivery.render import SIDECAR_RESOURCES
    from shipway.spec.base import quantity_value

    return int(quantity_value(SIDECAR_RESOURCES["limits"]["memory"]))


async def _discard(request: web.Request) -> web.Response:
    async for _ in request.content.iter_any():
        pass
    return web.Response(body=ANSWER, content_type="application/json")


async def _large(request: web.Request) -> web.StreamResponse:
    size = int(request.match_info["size"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    chunk = b"\0" * MIB
    for _ in range(size // MIB):
        await response.write(chunk)
    await response.write_eof()
    return response


@dataclass
class Sidecar:
    """A running sidecar process and its addresses."""

    process: subprocess.Popen[bytes]
    serving: str
    feedback: str
    metrics: str


async def start(work: Path, upstream_port: int) -> Sidecar:
    """The real CLI in front of the runtime, with a drift reference; returns once it answers."""
    from shipway.drift.profile import build_profile

    import shipway

    profile = build_profile(np.random.default_rng(0).normal(size=(2000, 4))).save(work / "profile.json")
    ports = [free_port() for _ in range(3)]
    source = str(Path(shipway.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-c", SIDECAR, "sidecar", "--listen", f"127.0.0.1:{ports[0]}",
         "--feedback-listen", f"127.0.0.1:{ports[1]}", "--metrics-listen", f"127.0.0.1:{ports[2]}",
         "--upstream", f"http://127.0.0.1:{upstream_port}", "--model", "m", "--version", "attack",
         "--reference", str(profile)],
        start_new_session=True, stdout=subprocess.DEVNULL, env=env,
    )
    sidecar = Sidecar(process, *(f"http://127.0.0.1:{port}" for port in ports))
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{sidecar.metrics}/livez") as response:
                    if response.status == 200:
                        return sidecar
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("the sidecar did not start within 30 s")


async def _body(size: int) -> AsyncIterator[bytes]:
    chunk = b"7" * MIB
    for _ in range(size // MIB):
        yield chunk


@dataclass
class Results:
    """Peak RSS after each attack, and what the attacks observed."""

    baseline: int = 0
    peaks: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    feedback_stall_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)


async def attack(sidecar: Sidecar, id_requests: int, scale: float = 1.0) -> Results:
    """Run every attack in turn and record the sidecar's peak RSS after each."""
    results = Results(baseline=peak_rss(sidecar.process.pid))
    pid = sidecar.process.pid
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as session:

        async def post(url: str, size: int) -> int:
            async with session.post(url, data=_body(size), headers={"Content-Length": str(size)}) as response:
                await response.read()
                return response.status

        async def fetch(size: int) -> int:
            async with session.get(f"{sidecar.serving}/large/{size}") as response:
                received = 0
                async for chunk in response.content.iter_any():
                    received += len(chunk)
                return response.status if received == size else -1

        async def timed(name: str, *jobs: object) -> None:
            started = time.perf_counter()
            results.statuses[name] = list(await asyncio.gather(*jobs))  # type: ignore[arg-type]
            results.seconds[name] = time.perf_counter() - started
            results.peaks[name] = peak_rss(pid)

        big = int(120 * MIB * scale) // MIB * MIB
        await timed("4 x 120 MiB requests", *(post(f"{sidecar.serving}/v2/models/m/infer", big) for _ in range(4)))
        large = int(200 * MIB * scale) // MIB * MIB
        await timed("3 x 200 MiB responses", *(fetch(large) for _ in range(3)))

        async def feedback() -> int:
            # 69 MB of labels, the size that once took 963 MiB and stalled inference for 9.1 s.
            body = b"[" + b'{"id":"x","label":1},' * (69_000_000 // 22) + b"{}]"
            async with session.post(f"{sidecar.feedback}/feedback", data=body) as response:
                return response.status

        async def inference_during() -> int:
            worst = 0.0
            for _ in range(20):
                started = time.perf_counter()
                async with session.post(f"{sidecar.serving}/v2/models/m/infer", data=SMALL) as response:
                    await response.read()
                worst = max(worst, time.perf_counter() - started)
                await asyncio.sleep(0.02)
            results.feedback_stall_seconds = worst
            return 200

        await timed("69 MB /feedback", feedback(), inference_during())
        huge = int(257 * MIB * scale) // MIB * MIB
        await timed("257 MiB request", post(f"{sidecar.serving}/v2/models/m/infer", huge))

        async def with_long_ids(start: int, count: int) -> int:
            bad = 0
            for index in range(start, start + count):
                body = json.dumps({"id": f"{index:08d}" + "i" * 8184, "inputs": json.loads(SMALL)["inputs"]})
                async with session.post(f"{sidecar.serving}/v2/models/m/infer", data=body) as response:
                    await response.read()
                    bad += response.status != 200
            return 200 if bad == 0 else 500

        workers = 16
        share = max(1, id_requests // workers)
        await timed(f"{share * workers} requests with 8 KB ids",
                    *(with_long_ids(worker * share, share) for worker in range(workers)))
    return results


async def run(id_requests: int, scale: float) -> Results:
    """Start the runtime and the sidecar, attack, stop both."""
    app = web.Application(client_max_size=1024 * MIB)
    app.router.add_post("/v2/models/m/infer", _discard)
    app.router.add_get("/large/{size}", _large)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    upstream_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
    sidecar = await start(Path(tempfile.mkdtemp(prefix="shipway-attacks-")), upstream_port)
    try:
        return await attack(sidecar, id_requests, scale)
    finally:
        os.killpg(sidecar.process.pid, signal.SIGTERM)
        sidecar.process.wait(timeout=15)
        await runner.cleanup()


def main() -> None:
    """Print the peak RSS after each attack and its ratio to the rendered limit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--id-requests", type=int, default=20_000)
    parser.add_argument("--scale", type=float, default=1.0, help="Scale the body sizes (1.0: the issue's sizes).")
    options = parser.parse_args()
    limit = rendered_sidecar_limit()
    results = asyncio.run(run(options.id_requests, options.scale))
    print(f"cpus: {os.cpu_count()} (shared machine; figures vary run to run)  rendered sidecar limit: "
          f"{limit / MIB:.0f} MiB  baseline peak: {results.baseline / MIB:.0f} MiB")
    for name, peak in results.peaks.items():
        print(f"{name:<34} peak RSS {peak / MIB:6.0f} MiB  ({peak / limit:.2f} of limit)"
              f"  {results.seconds[name]:5.1f} s  statuses {sorted(set(results.statuses[name]))}")
    print(f"worst small-inference latency during the /feedback attack: {results.feedback_stall_seconds * 1000:.0f} ms")
    worst = max(results.peaks.values())
    print(f"peak RSS {worst / MIB:.0f} MiB / limit {limit / MIB:.0f} MiB = {worst / limit:.2f}"
          f" (target < 1.00: {'PASS' if worst < limit else 'FAIL'})")


if __name__ == "__main__":
    main()
