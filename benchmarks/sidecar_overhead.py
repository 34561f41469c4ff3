"""How much the sidecar adds to small OIP v2 requests on loopback, against direct calls.

A fast upstream (aiohttp answering a fixed OIP response) runs in one process,
the real `shipway sidecar` command (with a drift reference, so features are
parsed and binned) in another, and the load generator here. Latency is
measured one request at a time; throughput with a fixed number of requests
over several concurrent connections. Targets (issue #15): p50 added under 1 ms,
and at least 90% of direct throughput.

The runtime is a real MLServer (sklearn logistic regression, one worker) by
default, the figure a model team would see; `--runtime aiohttp` puts a minimal
aiohttp upstream there instead, which makes the sidecar's share of the work
far larger than any model server would.

Throughput load comes from `wrk` (C, Debian package `wrk`) when it is installed, so the load
generator does not take the CPU the servers are measured on; `--pin` (the default on 2+ CPUs)
gives the runtime its own CPU and puts the sidecar and the load generator on another, as a pod
gives its sidecar a CPU budget of its own. Direct and proxied runs alternate for `--rounds`, and
the best of each is kept.

    python benchmarks/sidecar_overhead.py [--requests 3000] [--concurrency 16] [--runtime aiohttp|mlserver]
        [--load wrk|aiohttp] [--seconds 5] [--rounds 2] [--no-pin]

The machine these figures come from is shared: run it with `nice` and read the figures as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

UPSTREAM = """
import sys
from aiohttp import web
ANSWER = b'{"model_name":"m","outputs":[{"name":"predict","shape":[1,1],"datatype":"INT64","data":[1]}]}'
async def infer(request):
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")
async def ready(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/v2/models/m/infer", infer)
app.router.add_get("/v2/health/ready", ready)
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
SIDECAR = "import typer; from shipway.cli import sidecar; app = typer.Typer(); sidecar.register(app); app()"
BODY = json.dumps(
    {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [[0.1, -0.4, 1.2, 0.3]]}]}
).encode()


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment() -> dict[str, str]:
    """This environment, with the shipway imported here first on the children's path."""
    import shipway

    source = str(Path(shipway.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


def wait_ready(url: str, seconds: float = 30.0) -> None:
    """Poll until the URL answers 200."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


async def latencies(urls: tuple[str, ...], count: int) -> list[list[float]]:
    """Seconds per request for each URL, one request at a time, the URLs taking turns.

    Taking turns request by request, each over its own keep-alive connection, makes both paths
    see the same moment of a shared machine.
    """
    results: list[list[float]] = [[] for _ in urls]
    sessions = [aiohttp.ClientSession() for _ in urls]
    try:
        for _ in range(count):
            for index, (url, session) in enumerate(zip(urls, sessions, strict=True)):
                started = time.perf_counter()
                async with session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    assert response.status == 200
                results[index].append(time.perf_counter() - started)
    finally:
        for session in sessions:
            await session.close()
    return results


async def throughput(url: str, count: int, concurrency: int) -> float:
    """Requests per second for `count` requests over `concurrency` connections."""
    remaining = count

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                assert response.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
"""


def pinned(cpu: int | None):  # noqa: ANN201 - a preexec_fn
    """A preexec_fn that runs the child on one CPU, or None when not pinning."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def wrk_throughput(url: str, seconds: float, concurrency: int, script: Path, cpu: int | None) -> float:
    """Requests per second `wrk` measures over `seconds` with `concurrency` connections."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True, text=True, check=True, preexec_fn=pinned(cpu),
    ).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if match is None or "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk failed or saw errors:\n{output}")
    return float(match.group(1))


def start_mlserver(work: Path, port: int, cpu: int | None = None) -> subprocess.Popen[bytes]:
    """A real MLServer serving a small sklearn model on 127.0.0.1."""
    from joblib import dump
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(1000, 4))
    (work / "model").mkdir()
    dump(LogisticRegression().fit(rows, rows[:, 0] > 0), work / "model" / "model.joblib")
    (work / "model" / "model-settings.json").write_text(json.dumps(
        {"name": "m", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}
    ))
    (work / "settings.json").write_text(json.dumps(
        {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
         "parallel_workers": 0}
    ))
    return subprocess.Popen(
        [sys.executable, "-m", "mlserver.cli.main", "start", str(work)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(cpu),
    )


def main() -> None:
    """Start both servers, measure direct and through the sidecar, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runtime", choices=("aiohttp", "mlserver"), default="mlserver")
    parser.add_argument("--load", choices=("wrk", "aiohttp"), default="wrk" if shutil.which("wrk") else "aiohttp")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each wrk run.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating direct/proxied throughput runs.")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="Let the OS place the processes.")
    options = parser.parse_args()
    pin = options.pin and (os.cpu_count() or 1) >= 2
    runtime_cpu, sidecar_cpu = (1, 0) if pin else (None, None)
    if pin:
        os.sched_setaffinity(0, {sidecar_cpu})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from shipway.drift.profile import build_profile

    work = Path(tempfile.mkdtemp(prefix="shipway-bench-"))
    profile = build_profile(np.random.default_rng(0).normal(size=(5000, 4))).save(work / "profile.json")
    upstream_port, sidecar_port, metrics_port, feedback_port = free_port(), free_port(), free_port(), free_port()
    processes = [
        start_mlserver(work, upstream_port, runtime_cpu)
        if options.runtime == "mlserver"
        else subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)], start_new_session=True,
                              preexec_fn=pinned(runtime_cpu)),
        subprocess.Popen(
            [sys.executable, "-c", SIDECAR, "sidecar", "--listen", f"127.0.0.1:{sidecar_port}",
             "--metrics-listen", f"127.0.0.1:{metrics_port}", "--feedback-listen", f"127.0.0.1:{feedback_port}",
             "--upstream", f"http://127.0.0.1:{upstream_port}",
             "--model", "m", "--version", "bench", "--reference", str(profile)],
            start_new_session=True, stdout=subprocess.DEVNULL, env=child_environment(),
            preexec_fn=pinned(sidecar_cpu),
        ),
    ]
    try:
        wait_ready(f"http://127.0.0.1:{upstream_port}/v2/health/ready", 60)
        wait_ready(f"http://127.0.0.1:{metrics_port}/livez")
        direct = f"http://127.0.0.1:{upstream_port}/v2/models/m/infer"
        proxied = f"http://127.0.0.1:{sidecar_port}/v2/models/m/infer"
        # Warm both paths (connections, caches) before timing.
        asyncio.run(latencies((direct, proxied), 200))
        direct_times, proxied_times = asyncio.run(latencies((direct, proxied), options.requests))
        direct_p50, proxied_p50 = statistics.median(direct_times), statistics.median(proxied_times)
        # Per pair, taken at the same moment: the median of the differences is the sidecar's own share.
        added_pairs_ms = statistics.median(p - d for d, p in zip(direct_times, proxied_times, strict=True)) * 1000
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % BODY.decode())
        direct_runs, proxied_runs = [], []
        for _ in range(max(1, options.rounds)):
            if options.load == "wrk":
                direct_runs.append(wrk_throughput(direct, options.seconds, options.concurrency, script, sidecar_cpu))
                proxied_runs.append(wrk_throughput(proxied, options.seconds, options.concurrency, script,
                                                   sidecar_cpu))
            else:
                direct_runs.append(asyncio.run(throughput(direct, options.requests, options.concurrency)))
                proxied_runs.append(asyncio.run(throughput(proxied, options.requests, options.concurrency)))
        direct_rps, proxied_rps = max(direct_runs), max(proxied_runs)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
    added_ms = (proxied_p50 - direct_p50) * 1000
    ratio = proxied_rps / direct_rps
    print(f"runtime: {options.runtime}  load: {options.load}  pinned: {pin}  cpus: {os.cpu_count()}"
          f"  latency requests: {options.requests}  concurrency: {options.concurrency}  rounds: {options.rounds}")
    print(f"throughput runs direct {[round(r) for r in direct_runs]}, via sidecar {[round(r) for r in proxied_runs]}")
    print(f"p50 direct {direct_p50 * 1000:.3f} ms, via sidecar {proxied_p50 * 1000:.3f} ms: added {added_ms:.3f} ms"
          f" (median of paired differences {added_pairs_ms:.3f} ms) (target < 1 ms: {'PASS' if added_ms < 1 else 'FAIL'})")
    print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} cpus")
    print(f"throughput direct {direct_rps:.0f}/s, via sidecar {proxied_rps:.0f}/s: ratio {ratio:.2f}"
          f" (target >= 0.90: {'PASS' if ratio >= 0.9 else 'FAIL'})")


if __name__ == "__main__":
    main()
