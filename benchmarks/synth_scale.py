"""Synth wall time for each example blueprint and for a generated 50-team x 8-GPU-pool platform.

Run: python benchmarks/synth_scale.py [--teams 50] [--pools 8]
Each synth runs in a fresh interpreter (`shipway synth`), so import time is included, as a user sees it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def generated_blueprint(teams: int, pools: int) -> dict:
    """An EKS platform with `pools` GPU pools and `teams` teams spread over them."""
    node_pools = [{"name": "system", "role": "system", "instanceType": "m6i.xlarge", "minSize": 3, "maxSize": 6}]
    for index in range(pools):
        node_pools.append({"name": f"gpu-{index}", "instanceType": "g5.12xlarge",
                           "gpu": {"model": "a10g", "count": 4}, "minSize": 0, "maxSize": 20})
    return {
        "metadata": {"name": "scale", "environments": ["dev", "staging", "prod"]},
        "cluster": {"kind": "eks", "region": "eu-west-1"},
        "nodePools": node_pools,
        "gitops": {"repoUrl": "https://github.com/acme/gitops.git"},
        "teams": [{"name": f"team-{index:02d}", "quota": {"gpus": 8, "cpu": "64", "memory": "256Gi"},
                   "gpuPools": [f"gpu-{index % pools}"], "groups": [f"team-{index:02d}-engineers"]}
                  for index in range(teams)],
    }


def timed_synth(blueprint: Path, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "shipway.cli", "synth", str(blueprint), "-o", str(out), "-q"],
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    return elapsed, len(list((out / "manifests").glob("*.yaml")))


def help_time(runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "shipway.cli", "--help"], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--pools", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name in ("kind-dev", "eks-prod", "gke-prod"):
            rows.append((name, *timed_synth(ROOT / "blueprints" / f"{name}.yaml", Path(tmp) / name)))
        generated = Path(tmp) / "generated.yaml"
        generated.write_text(yaml.safe_dump(generated_blueprint(args.teams, args.pools), sort_keys=False))
        rows.append((f"generated {args.teams} teams x {args.pools} GPU pools",
                     *timed_synth(generated, Path(tmp) / "generated")))
    print(f"{'blueprint':<40} {'wall s':>8} {'k8s objects':>12}")
    for name, seconds, objects in rows:
        print(f"{name:<40} {seconds:>8.2f} {objects:>12}")
    print(f"{'shipway --help (best of 5)':<40} {help_time():>8.3f}")


if __name__ == "__main__":
    main()
