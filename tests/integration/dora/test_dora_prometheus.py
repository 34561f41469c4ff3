"""`shipway dora --prometheus`: Argo Rollouts' own events, served by a real Prometheus, fail a deployment.

The rollout_events_total series of the known history's abort (dora_history) is backfilled into a TSDB with
`promtool tsdb create-blocks-from openmetrics`, a real Prometheus serves it on 127.0.0.1, and the report
then counts ranker 4 as failed with a restore from the abort to the next RolloutCompleted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "dora"))

import dora_history as known  # noqa: E402
from shipway.dora.measure import measure  # noqa: E402
from shipway.dora.metrics import Band  # noqa: E402
from shipway.dora.rollouts import query  # noqa: E402
from net_support import free_port

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    work = tmp_path_factory.mktemp("dora-prometheus")
    (work / "events.om").write_text(known.rollout_events_openmetrics())
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(work / "events.om"),
                    str(work / "tsdb")], check=True, capture_output=True, timeout=60)
    (work / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                                f"--storage.tsdb.path={work / 'tsdb'}", "--storage.tsdb.retention.time=100y",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise AssertionError((work / "prometheus.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def gitops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return known.build(tmp_path_factory.mktemp("dora-git") / "gitops")


def test_rollout_events_come_back_at_their_times(prometheus: str) -> None:
    events = query(prometheus, known.T0, known.UNTIL)
    reasons = [(event.namespace, event.name, event.reason) for event in events]
    assert reasons == [("search-prod", "ranker", "RolloutAborted"), ("search-prod", "ranker", "RolloutCompleted")]
    aborted, completed = events
    # Each event is seen at the end of the step it was counted in.
    step = max(60.0, int((known.UNTIL - known.T0) / 10_000) + 1)
    assert known.ABORTED_AT <= aborted.time < known.ABORTED_AT + 2 * step
    assert known.COMPLETED_AT <= completed.time < known.COMPLETED_AT + 2 * step


def test_an_aborted_rollout_is_a_failed_change_restored_by_the_next_healthy_one(prometheus: str,
                                                                               gitops: Path) -> None:
    without = measure(gitops, "28d", known.UNTIL)
    report = measure(gitops, "28d", known.UNTIL, prometheus=prometheus)
    assert without.platform.failures == 2 and report.platform.failures == 3
    assert report.platform.aborts == 1 and report.platform.change_failure_rate == pytest.approx(3 / 7)
    ranker4 = next(item for item in report.deployments if (item.model, item.version) == ("ranker", "4"))
    assert ranker4.failure == "rollout RolloutAborted"
    # Restores 20m (revert), 2h (abort to completion, within a step either side), 3h (rollback): median 2h.
    assert abs(report.platform.restore_median - 2 * known.HOUR) < 600
    assert report.platform.bands["change_failure_rate"] is Band.LOW
    assert any("Argo Rollouts metrics" in source for source in report.sources)
