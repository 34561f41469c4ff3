"""`shipway dora` over a GitOps history of 10,000 promotions across 200 models (target: under 2 s).

The history is written with `git fast-import`: one commit per promotion to prod, each changing its model's
Rollout file and carrying the trailers `shipway promote` writes, one day's spread of source-to-deploy lead
times, every 25th promotion reverted and every 40th (otherwise) followed by a rollback. The timed run is the whole
`shipway dora --format json` command in a fresh process (start-up, one `git log`, parsing, the keys).

The peer is the obvious reader: list the commits, then one `git show` per commit for its trailers (what a
script calling git per commit does). It is run over the first --peer-commits commits and scaled linearly to
the whole history; the printed ratio says so.

    python benchmarks/dora_history.py [--promotions 10000] [--models 200] [--peer-commits 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
SPAN_DAYS = 90


def trailers(model: int, version: int, replaces: int | None, source_time: int) -> str:
    from datetime import UTC, datetime

    from shipway.dora import trailers as t

    name, team = f"model-{model:03d}", f"team-{model % 20:02d}"
    return t.trailer_block({
        t.MODEL: name, t.TEAM: team, t.VERSION: f"1.{version}.0", t.ENVIRONMENT: "prod",
        t.NAMESPACE: f"{team}-prod", t.REPLACES: f"1.{replaces}.0" if replaces is not None else None,
        t.SOURCE_COMMIT: f"{model:08x}{version:032x}",
        t.SOURCE_TIME: datetime.fromtimestamp(source_time, UTC).isoformat(), t.GATE: "pass",
        t.ARTIFACT: f"oci://zot.example/{team}/{name}@sha256:{model:032x}{version:032x}",
        t.ARTIFACT_DIGEST: f"sha256:{model:032x}{version:032x}",
    })


def build(repo: Path, promotions: int, models: int) -> int:
    """Write the history with git fast-import; return the number of commits."""
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    # --cat-blob-fd=1 answers get-mark on stdout, so a revert can name the sha of the commit it reverts.
    importer = subprocess.Popen(["git", "-C", str(repo), "fast-import", "--quiet", "--cat-blob-fd=1"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert importer.stdin is not None and importer.stdout is not None
    step = SPAN_DAYS * 86400 // promotions
    mark = 0
    versions = [0] * models
    now = T0

    def commit(message: str, path: str, content: str, when: int) -> int:
        nonlocal mark
        mark += 1
        data, blob = message.encode(), content.encode()
        parent = f"from :{mark - 1}\n" if mark > 1 else ""
        importer.stdin.write(  # type: ignore[union-attr]
            f"commit refs/heads/main\nmark :{mark}\ncommitter Shipway <shipway@localhost> {when} +0000\n"
            f"data {len(data)}\n".encode() + data + f"\n{parent}M 644 inline {path}\ndata {len(blob)}\n".encode()
            + blob + b"\n")
        return mark

    for index in range(promotions):
        model = index % models
        now += step
        previous = versions[model] or None
        versions[model] += 1
        version = versions[model]
        path = f"apps/prod/team-{model % 20:02d}/model-{model:03d}/rollout-model-{model:03d}.yaml"
        body = f"Promote model-{model:03d} 1.{version}.0 to prod (gate: pass)\n\n" + trailers(
            model, version, previous, now - (index % 24) * 3600)
        promoted = commit(body, path, f"version: 1.{version}.0\n", now)
        if index % 25 == 24:
            importer.stdin.write(f"get-mark :{promoted}\n".encode())
            importer.stdin.flush()
            sha = importer.stdout.readline().decode().strip()
            commit(f'Revert "Promote model-{model:03d}"\n\nThis reverts commit {sha}.\n', path,
                   f"version: 1.{previous or 0}.0\n", now + 600)
        elif index % 40 == 39 and previous is not None:
            # A rollback: the version before, promoted again 20 minutes later.
            commit(f"Promote model-{model:03d} 1.{previous}.0 to prod (gate: pass)\n\n"
                   + trailers(model, previous, version, now - 86400), path,
                   f"version: 1.{previous}.0\n", now + 1200)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    return mark


def main() -> None:
    """Build the history, time `shipway dora`, time the per-commit peer, print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--promotions", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--peer-commits", type=int, default=1_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "gitops"
        started = time.perf_counter()
        commits = build(repo, options.promotions, options.models)
        print(f"history: {commits} commits ({options.promotions} promotions, {options.models} models) written in "
              f"{time.perf_counter() - started:.1f}s")

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1] / "src"),
                                                                         os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "shipway", "dora", "--gitops-repo", str(repo), "--since", f"{SPAN_DAYS + 1}d",
                   "--until", "2026-04-02T00:00:00Z", "--format", "json"]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            best = min(best, time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
        import json

        platform = json.loads(done.stdout)["platform"]
        print(f"shipway dora: {best:.2f}s best of 3 (whole command) -> {platform['deployments']} deployments, "
              f"{len(json.loads(done.stdout)['models'])} models, change failure rate "
              f"{platform['change_failure_rate']:.3f}, {'under' if best < 2 else 'OVER'} the 2 s target")

        shas = subprocess.run(["git", "-C", str(repo), "rev-list", "main"], capture_output=True, text=True,
                              check=True).stdout.split()[: options.peer_commits]
        started = time.perf_counter()
        for sha in shas:
            subprocess.run(["git", "-C", str(repo), "show", "-s", "--format=%(trailers:only=true)", sha],
                           capture_output=True, check=True)
        peer = (time.perf_counter() - started) * commits / max(1, len(shas))
        print(f"peer (one git show per commit, {len(shas)} of {commits} timed, scaled): {peer:.1f}s; "
              f"ratio peer/shipway = {peer / best:.1f}x")


if __name__ == "__main__":
    main()
