"""The sidecar's state stays flat over a million requests.

To keep the run short this drives the sidecar's per-request bookkeeping
(`Observer.parse` and `Observer.record`: JSON parsing, feature extraction,
drift windows, pending predictions, Prometheus metrics) in-process, without
sockets; the HTTP layer holds no per-request state of its own.
"""

from __future__ import annotations

import gc
import json

import psutil
import pytest

from shipway.sidecar.metrics import SidecarMetrics
from shipway.sidecar.observer import Observer, ObserverSettings
from sidecar_support import reference

REQUESTS = 1_000_000
WARM_UP = 100_000


@pytest.mark.slow
def test_memory_stays_flat_over_a_million_requests() -> None:
    settings = ObserverSettings(pending_limit=10_000, window_rows=2000)
    observer = Observer(SidecarMetrics("m", "v1"), reference(), settings)
    body = json.dumps({"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [[0.1, -0.2, 0.3, 1.2]]}]}).encode()
    answer = json.dumps({"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]}).encode()
    process = psutil.Process()
    baseline = 0
    for index in range(REQUESTS):
        request_id = f"req-{index}"
        observer.observe(request_id, observer.parse(body), 200 if index % 100 else 503, json.loads(answer))
        if index % 7 == 0:
            observer.feedback(request_id, [1])
        if index % 50_000 == 0:
            observer.refresh()
        if index == WARM_UP:
            gc.collect()
            baseline = process.memory_info().rss
    gc.collect()
    grown = process.memory_info().rss - baseline
    assert grown < 4 * 1024 * 1024, f"RSS grew {grown / 1e6:.1f} MB over {REQUESTS - WARM_UP} requests"
    # Full, never beyond its bound (the last request's label was just taken out).
    assert settings.pending_limit - 1 <= len(observer.pending) <= settings.pending_limit
    assert observer.window is not None and observer.window.rows <= 2000 + settings.flush_rows
    assert observer.pending.bytes <= settings.pending_bytes
