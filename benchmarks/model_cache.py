"""Cold and warm model starts through the node cache, against a local registry; print the times and the ratio.

Run by hand: `python benchmarks/model_cache.py [--size-gib 2]`. Needs Debian's `docker-registry` on PATH.

A start is what a model pod's init container runs: `shipway model pull REF DEST --cache CACHE`, each in
its own process. Cold: an empty node cache, so every blob is downloaded and verified. Warm: a second pod
on the node, whose model folder the cache already holds. Relink: the model folder was evicted but its
verified blobs are still on the node, so the pod's files are linked from them and nothing is downloaded.
The peer is the cold start; the target is warm (and relink) at least 10 times faster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from artifact_throughput import MIB, _start_registry, _write_random  # noqa: E402

TARGET_RATIO = 10.0


def _shipway(*args: str) -> tuple[float, str]:
    """Seconds one `shipway model ...` process takes, start-up included, and its output."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shipway", "model", *args], capture_output=True, text=True,
                          timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"shipway model {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=2, help="cold/warm pairs; the best of each is reported")
    options = parser.parse_args()
    size = int(options.size_gib * 1024 * MIB)
    need = 4 * size + 512 * MIB  # the file, the registry's copy, the cache, headroom
    with tempfile.TemporaryDirectory(prefix="shipway-bench-cache-") as scratch:
        workdir = Path(scratch)
        if shutil.disk_usage(workdir).free < need:
            sys.exit(f"needs {need / MIB:.0f} MiB free under {workdir}")
        registry, host = _start_registry(workdir)
        try:
            model = workdir / "model"
            model.mkdir()
            _write_random(model / "model.safetensors", size)
            (model / "config.json").write_text(json.dumps({"model_type": "benchmark"}))
            ref = f"oci://{host}/team/llm:1.0.0"
            _shipway("push", str(model), ref, "--plain-http")
            shutil.rmtree(model)
            times: dict[str, list[float]] = {"cold": [], "warm": [], "relink": []}
            for repeat in range(options.repeats):
                cache = workdir / f"cache-{repeat}"
                pull = ["pull", ref, "--plain-http", "--cache", str(cache), "--cache-max-size", "64Gi"]
                seconds, output = _shipway(*pull[:2], str(cache / "models" / "pod-a"), *pull[2:])
                times["cold"].append(seconds)
                seconds, output = _shipway(*pull[:2], str(cache / "models" / "pod-a"), *pull[2:])
                assert "up to date" in output, output
                times["warm"].append(seconds)
                shutil.rmtree(cache / "models" / "pod-a")
                seconds, output = _shipway(*pull[:2], str(cache / "models" / "pod-b"), *pull[2:])
                assert " 0 B in " in output, output
                times["relink"].append(seconds)
                shutil.rmtree(cache)
        finally:
            registry.kill()
            registry.wait()
    best = {name: min(values) for name, values in times.items()}
    print(f"artifact: {size / MIB:.0f} MiB of random bytes plus config.json, registry: docker-registry on {host}, "
          f"best of {options.repeats}, each start a `shipway model pull --cache` process")
    print(f"{'start':10}{'seconds':>10}{'vs cold':>10}")
    for name in ("cold", "warm", "relink"):
        print(f"{name:10}{best[name]:10.2f}{best['cold'] / best[name]:9.1f}x")
    worst = min(best["cold"] / best["warm"], best["cold"] / best["relink"])
    print(f"target: warm and relink starts >= {TARGET_RATIO:g}x faster than cold: "
          f"{'met' if worst >= TARGET_RATIO else 'NOT met'}")
    sys.exit(0 if worst >= TARGET_RATIO else 1)


if __name__ == "__main__":
    main()
