"""Synth with every release rendered through its pinned chart, against synth without charts.

Run: python benchmarks/render_charts.py [--charts DIR] [--runs 3] [kind-dev eks-prod gke-prod]

Each synth runs in a fresh interpreter (`shipway synth`), as a user runs it. For each example it times
synth without charts (the peer), synth with charts and an empty parse cache (cold), and again with the
parse cache that run left (warm: the charts' unchanged output, CRDs above all, is read as JSON instead of
parsed as YAML). Runs alternate and the best of each is kept, since the machine is shared. Prints the
seconds, the ratio to the peer, and the objects the charts render; the target is a full kind-dev render
in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0


def timed(blueprint: Path, out: Path, env: dict[str, str], *flags: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "shipway", "synth", str(blueprint), "-o", str(out), "-q", *flags],
                   check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("examples", nargs="*", default=["kind-dev", "eks-prod", "gke-prod"])
    parser.add_argument("--charts", type=Path, default=Path(os.environ.get("SHIPWAY_CHARTS", ROOT.parent / "shared" / "charts")))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("SHIPWAY_CHARTS", None)
    print(f"chart cache: {args.charts}")
    print(f"{'example':10} {'no charts':>10} {'cold':>8} {'warm':>8} {'warm/peer':>10} {'releases':>9} {'objects':>8} missing")
    worst = 0.0
    for name in args.examples:
        blueprint = ROOT / "blueprints" / f"{name}.yaml"
        best = {"peer": float("inf"), "cold": float("inf"), "warm": float("inf")}
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                cache_home = Path(tmp) / f"xdg-{run}"  # a fresh parse cache for each cold run
                charted = {**env, "XDG_CACHE_HOME": str(cache_home)}
                best["peer"] = min(best["peer"], timed(blueprint, Path(tmp) / "peer", env, "--no-charts"))
                best["cold"] = min(best["cold"], timed(blueprint, Path(tmp) / "out", charted, "--charts", str(args.charts)))
                best["warm"] = min(best["warm"], timed(blueprint, Path(tmp) / "out", charted, "--charts", str(args.charts)))
            plan = json.loads((Path(tmp) / "out" / "plan.json").read_text())["charts"]
        worst = max(worst, best["cold"]) if name == "kind-dev" else worst
        print(f"{name:10} {best['peer']:9.2f}s {best['cold']:7.2f}s {best['warm']:7.2f}s "
              f"{best['warm'] / best['peer']:9.2f}x {len(plan['releases']):9d} {plan['objects']:8d} "
              f"{len(plan['missingCharts'])}")
    if "kind-dev" in args.examples:
        verdict = "meets" if worst < TARGET_SECONDS else "misses"
        print(f"kind-dev full render, cold: {worst:.2f} s, {verdict} the {TARGET_SECONDS:.0f} s target")


if __name__ == "__main__":
    main()
