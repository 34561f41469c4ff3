"""The real sidecar process stays under its rendered memory limit in every memory attack of issue #15.

Finding 2: four concurrent 120 MiB requests peaked at 1,091 MiB, three 200 MiB responses at
1,910 MiB, one 69 MB /feedback body took 963 MiB, a refused 257 MiB body left 423 MiB resident;
finding 3: 20,000 requests with 8 KB ids added 164 MiB. The attacks are benchmarks/sidecar_attacks.py's,
at the issue's body sizes; the id attack runs 4,000 requests here to stay short (the benchmark runs
20,000, and test_sidecar_hardening checks the byte bound of pending predictions over 20,000 ids).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _attacks():  # noqa: ANN202 - the benchmark module, loaded from its file
    spec = importlib.util.spec_from_file_location("sidecar_attacks", ROOT / "benchmarks" / "sidecar_attacks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up by name while the module runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_attack_leaves_the_sidecar_below_its_rendered_memory_limit() -> None:
    attacks = _attacks()
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak RSS is read from /proc (Linux)")
    limit = attacks.rendered_sidecar_limit()
    results = asyncio.run(asyncio.wait_for(attacks.run(id_requests=4000, scale=1.0), timeout=300))
    assert set(results.peaks) == {"4 x 120 MiB requests", "3 x 200 MiB responses", "69 MB /feedback",
                                  "257 MiB request", "4000 requests with 8 KB ids"}
    for name, peak in results.peaks.items():
        assert peak < limit, f"{name}: peak RSS {peak / 2**20:.0f} MiB over the {limit / 2**20:.0f} MiB limit"
    # Bodies went through (never refused), the oversized feedback was refused, every long id was served.
    assert results.statuses["4 x 120 MiB requests"] == [200] * 4
    assert results.statuses["3 x 200 MiB responses"] == [200] * 3
    assert results.statuses["257 MiB request"] == [200]
    assert 413 in results.statuses["69 MB /feedback"]
    assert set(results.statuses["4000 requests with 8 KB ids"]) == {200}
    # Nothing held the whole of any body: the peak stays within a fraction of the largest one.
    assert max(results.peaks.values()) - results.baseline < 120 * 2**20
