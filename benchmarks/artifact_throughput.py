"""Push and pull a large model file with Shipway and with plain chunked `requests`; print speeds and the ratio.

Run by hand: `python benchmarks/artifact_throughput.py [--size-gib 2] [--chunk-mib 32]`.
Needs Debian's `docker-registry` on PATH. Every transfer runs in its own
subprocess so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
TARGET_RATIO = 0.7
RSS_BUDGET_MIB = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_registry(workdir: Path, login: tuple[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """docker-registry on 127.0.0.1; with `login`, it asks for that user and password (htpasswd, bcrypt)."""
    import requests

    binary = shutil.which("docker-registry")
    if binary is None:
        sys.exit("needs `docker-registry` (apt: docker-registry)")
    port = _free_port()
    auth = ""
    if login is not None:
        import bcrypt

        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(f"{login[0]}:{bcrypt.hashpw(login[1].encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
        auth = f"auth:\n  htpasswd:\n    realm: bench\n    path: {htpasswd}\n"
    config = workdir / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
        f"{auth}http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                return process, f"127.0.0.1:{port}"
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    sys.exit("docker-registry did not start within 15 s")


def _write_random(path: Path, size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(2024)
    with path.open("wb") as sink:
        for offset in range(0, size, 16 * MIB):
            sink.write(rng.bytes(min(16 * MIB, size - offset)))


# --- workers: each runs in a subprocess and prints {"seconds", "peak_rss_mib"} ---


def _baseline_push(host: str, path: Path, chunk: int) -> None:
    """The plain way: POST, PATCH chunks, PUT with the digest hashed along the way."""
    import requests

    session = requests.Session()
    base = f"http://{host}"
    hasher = hashlib.sha256()
    response = session.post(f"{base}/v2/{os.environ['BENCH_REPO']}/blobs/uploads/", headers={"Content-Length": "0"})
    location = response.headers["Location"]
    offset = 0
    with path.open("rb") as stream:
        while block := stream.read(chunk):
            hasher.update(block)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(block) - 1}",
            }
            response = session.patch(location if location.startswith("http") else base + location, data=block, headers=headers)
            response.raise_for_status()
            location = response.headers["Location"]
            offset += len(block)
    url = location if location.startswith("http") else base + location
    separator = "&" if "?" in url else "?"
    session.put(f"{url}{separator}digest=sha256:{hasher.hexdigest()}").raise_for_status()


def _baseline_pull(host: str, digest: str, target: Path) -> None:
    import requests

    with requests.get(f"http://{host}/v2/{os.environ['BENCH_REPO']}/blobs/{digest}", stream=True) as response, target.open("wb") as sink:
        response.raise_for_status()
        for block in response.iter_content(MIB):
            sink.write(block)


def _worker(argv: list[str]) -> None:
    kind, host, path, extra = argv[0], argv[1], Path(argv[2]), argv[3]
    started = time.perf_counter()
    result: dict[str, object] = {}
    if kind == "baseline-push":
        _baseline_push(host, path, int(extra))
    elif kind == "baseline-pull":
        _baseline_pull(host, extra, path)
    elif kind == "shipway-push":
        from shipway.artifacts.push import push

        pushed = push(path, f"oci://{host}/{os.environ['BENCH_REPO']}:1", plain_http=True, chunk_bytes=int(extra))
        assert pushed.bytes_uploaded >= path.stat().st_size, "a benchmark push must send the whole file"
    elif kind == "shipway-pull":
        from shipway.artifacts.pull import pull

        pull(f"oci://{host}/{os.environ['BENCH_REPO']}:1", path, plain_http=True)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _run(repository: str, *args: str) -> dict[str, float | str]:
    # Start every transfer with no dirty pages from the last one, or write-back skews whoever runs second.
    os.sync()
    output = subprocess.run(
        [sys.executable, __file__, "_worker", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_REPO": repository},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


NAMES = ("baseline-push", "shipway-push", "baseline-pull", "shipway-pull")


def _transfer(name: str, repeat: int, host: str, workdir: Path, source: Path, chunk: int,
              pull_dir: Path) -> dict[str, float | str]:
    """Run one transfer in a subprocess and clean up what it wrote.

    Each repeat pushes to fresh repositories, so the registry never already has the blob.
    """
    repository = f"bench/{name.split('-')[0]}-{repeat}"
    target = pull_dir / "pulled"
    if name.endswith("push"):
        result = _run(repository, name, host, str(source), str(chunk))
    else:
        with source.open("rb") as stream:
            digest = f"sha256:{hashlib.file_digest(stream, 'sha256').hexdigest()}"
        result = _run(repository, name, host, str(target), digest)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        _worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--chunk-mib", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each transfer; the best is reported")
    parser.add_argument(
        "--pull-dir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where both pulls write (default /dev/shm): on disk, write-back and discards of the previous "
             "run's files swing either pull's figure by a factor of several",
    )
    options = parser.parse_args()
    size = int(options.size_gib * 1024 * MIB)
    chunk = options.chunk_mib * MIB

    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as scratch, \
            tempfile.TemporaryDirectory(prefix="shipway-bench-pull-", dir=options.pull_dir) as pull_scratch:
        workdir, pull_dir = Path(scratch), Path(pull_scratch)
        registry, host = _start_registry(workdir)
        try:
            source = workdir / "model.safetensors"
            _write_random(source, size)
            runs: dict[str, list[dict[str, float | str]]] = {name: [] for name in NAMES}
            for repeat in range(options.repeats):
                # Alternate who goes first, so neither always meets a warmer cache.
                order = NAMES if repeat % 2 == 0 else ("shipway-push", "baseline-push", "shipway-pull", "baseline-pull")
                for name in order:
                    runs[name].append(_transfer(name, repeat, host, workdir, source, chunk, pull_dir))
            best = {name: min(results, key=lambda r: float(r["seconds"])) for name, results in runs.items()}
            baseline_push, shipway_push, baseline_pull, shipway_pull = (best[name] for name in NAMES)
        finally:
            registry.kill()
            registry.wait()

    def rate(result: dict[str, float | str]) -> float:
        return size / float(result["seconds"]) / 1e6

    print(
        f"file: {size / MIB:.0f} MiB, chunk: {options.chunk_mib} MiB, best of {options.repeats}, "
        f"registry: docker-registry on {host}, pulls written under {options.pull_dir or tempfile.gettempdir()}"
    )
    print(f"{'':10}{'requests MB/s':>15}{'shipway MB/s':>15}{'ratio':>8}{'shipway peak RSS':>20}")
    worst_ratio, worst_rss = 1.0, 0.0
    for name, plain, ours in (("push", baseline_push, shipway_push), ("pull", baseline_pull, shipway_pull)):
        ratio = rate(ours) / rate(plain)
        worst_ratio, worst_rss = min(worst_ratio, ratio), max(worst_rss, float(ours["peak_rss_mib"]))
        print(f"{name:10}{rate(plain):15.0f}{rate(ours):15.0f}{ratio:8.2f}{float(ours['peak_rss_mib']):16.0f} MiB")
    print(f"baseline peak RSS: push {float(baseline_push['peak_rss_mib']):.0f} MiB, pull {float(baseline_pull['peak_rss_mib']):.0f} MiB")
    verdict = worst_ratio >= TARGET_RATIO and worst_rss < RSS_BUDGET_MIB
    print(f"target ratio >= {TARGET_RATIO} and RSS < {RSS_BUDGET_MIB} MiB: {'met' if verdict else 'NOT met'}")
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
