"""Model starts through the node cache service (`shipway model cache-serve`) against cold starts from the registry.

Run by hand: `python benchmarks/node_cache_service.py [--size-gib 2] [--registry-mib-s 0 119]`. Needs Debian's
`docker-registry` on PATH.

A start is what a model pod's init container runs, each in its own process: `shipway model pull REF DEST`,
with registry credentials. Cold: no cache, every blob comes from the registry (the peer). Miss: the first pod
on a node with `--node-cache`: the cache downloads and verifies each blob, then serves it. Warm: the next pod
on the node: the cache checks the pod's access with the registry (a HEAD) and serves the verified blob; the
pod still receives every byte into its own volume and verifies it.

`--registry-mib-s` puts the registry behind a link of that many MiB/s (a relay on 127.0.0.1 that paces what
the registry sends), because in a cluster the registry is across the network while the cache is on the node;
0 is the raw loopback, where the registry is as near as the cache. Each rate is measured in the same run and
printed as its own table. The target is a warm start at least 10 times faster than a cold one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artifact_throughput import MIB, _free_port, _start_registry, _write_random  # noqa: E402

TARGET_RATIO = 10.0
USER, PASSWORD = "bench", "bench-password"


def _env() -> dict[str, str]:
    return {**os.environ, "SHIPWAY_REGISTRY_USERNAME": USER, "SHIPWAY_REGISTRY_PASSWORD": PASSWORD,
            "SHIPWAY_PLAIN_HTTP": "1", "NO_COLOR": "1", "COLUMNS": "200"}


def _wait(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start")


class PacedRelay:
    """A TCP relay on 127.0.0.1 to the registry that sends the registry's answers at most `mib_s` MiB/s in all."""

    def __init__(self, target_port: int, mib_s: float) -> None:
        self.target_port, self.rate = target_port, mib_s * MIB
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.lock = asyncio.Lock()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> PacedRelay:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer, paced=False), self._pipe(up_reader, writer, paced=True),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, paced: bool) -> None:
        try:
            while block := await reader.read(256 * 1024):
                if paced:
                    async with self.lock:  # one link, shared by every connection
                        await asyncio.sleep(len(block) / self.rate)
                writer.write(block)
                await writer.drain()
        finally:
            writer.close()


def _pull(ref: str, destination: Path, *extra: str) -> tuple[float, str]:
    """Seconds one `shipway model pull` process takes, start-up included, and its output."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shipway", "model", "pull", ref, str(destination), *extra],
                          capture_output=True, text=True, timeout=3600, env=_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"pull failed:\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(destination)
    return seconds, done.stdout


def _measure(ref: str, registry_host: str, workdir: Path) -> dict[str, float]:
    """Cold from the registry, then a fresh node cache's miss and its warm start, each its own process."""
    times = {"cold": _pull(ref, workdir / "pod-cold")[0]}
    port = _free_port()
    cache_dir = workdir / "node-cache"
    log = (workdir / "cache-serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "shipway", "model", "cache-serve", "--dir", str(cache_dir), "--registry", registry_host,
         "--plain-http", "--max-size", "64Gi", "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=_env())
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/healthz", server, "cache-serve")
        times["miss"], output = _pull(ref, workdir / "pod-miss", "--node-cache", url)
        assert " 0 B from the registry" in output, output
        times["warm"], output = _pull(ref, workdir / "pod-warm", "--node-cache", url)
        assert " 0 B from the registry" in output, output
        stats = requests.get(f"{url}/stats", timeout=5).json()
        assert 2 * stats["downloads"] == stats["served"], stats  # each blob downloaded once, served twice
    finally:
        server.terminate()
        server.wait(10)
        log.close()
        shutil.rmtree(cache_dir, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--registry-mib-s", type=float, nargs="+", default=[0.0, 119.0],
                        help="registry link rates to measure (0: raw loopback; 119 MiB/s is 1 Gbit/s)")
    options = parser.parse_args()
    size = int(options.size_gib * 1024 * MIB)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-node-cache-") as scratch:
        workdir = Path(scratch)
        need = 4 * size + 512 * MIB  # the registry's copy, the cache, one pod, headroom
        if shutil.disk_usage(workdir).free < need:
            sys.exit(f"needs {need / MIB:.0f} MiB free under {workdir}")
        registry, host = _start_registry(workdir, (USER, PASSWORD))
        results: dict[float, dict[str, float]] = {}
        try:
            model = workdir / "model"
            model.mkdir()
            _write_random(model / "model.safetensors", size)
            (model / "config.json").write_text(json.dumps({"model_type": "benchmark"}))
            subprocess.run([sys.executable, "-m", "shipway", "model", "push", str(model), f"oci://{host}/team/llm:1.0.0"],
                           check=True, capture_output=True, env=_env(), timeout=3600)
            shutil.rmtree(model)
            for rate in options.registry_mib_s:
                if rate <= 0:
                    results[rate] = _measure(f"oci://{host}/team/llm:1.0.0", host, workdir)
                    continue
                with PacedRelay(int(host.rpartition(":")[2]), rate) as relay:
                    relayed = f"127.0.0.1:{relay.port}"
                    results[rate] = _measure(f"oci://{relayed}/team/llm:1.0.0", relayed, workdir)
        finally:
            registry.kill()
            registry.wait()
    print(f"artifact: {size / MIB:.0f} MiB of random bytes plus config.json; registry: docker-registry on {host} "
          "with htpasswd; each start a `shipway model pull` process; cache: one `shipway model cache-serve`")
    met = True
    for rate, times in results.items():
        link = "raw loopback" if rate <= 0 else f"registry behind a {rate:g} MiB/s link"
        print(f"\n{link}\n{'start':8}{'seconds':>10}{'vs cold':>10}")
        for name in ("cold", "miss", "warm"):
            print(f"{name:8}{times[name]:10.2f}{times['cold'] / times[name]:9.1f}x")
        ratio = times["cold"] / times["warm"]
        print(f"target: warm start >= {TARGET_RATIO:g}x faster than cold: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
              f" ({ratio:.1f}x)")
        met = met and ratio >= TARGET_RATIO
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
