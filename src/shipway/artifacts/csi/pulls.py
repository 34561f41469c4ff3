"""Pulls into the node cache that outlive the publishes that asked for them, on threads of their own.

The kubelet bounds each NodePublishVolume call (csiTimeout, 2 minutes) and retries a call that ran out; a
cold pull of a 100 GB model takes longer. So a publish never pulls on its gRPC worker thread: it starts (or
joins) the one pull of its digest here and waits a bounded time for it. The pull goes on when every caller
has gone, and the next retry finds it done, or still going and says how far it got.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class PullJob:
    """One pull of a manifest digest into the node cache: how far it got, and how it ended."""

    def __init__(self, digest: str, total_bytes: int) -> None:
        self.digest = digest
        self.total_bytes = total_bytes
        self.started = False
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._layers: dict[str, int] = {}

    def progress(self, label: str, done: int, _total: int) -> None:
        """The pull's progress sink: bytes done so far of each layer."""
        self._layers[label] = done

    @property
    def bytes_done(self) -> int:
        return sum(self._layers.copy().values())

    def describe(self) -> str:
        if not self.started:
            return f"waiting for a free pull slot to pull {self.total_bytes} bytes"
        return f"pulling {self.bytes_done} of {self.total_bytes} bytes"


class Pulls:
    """At most one pull per digest at a time, each on a thread of its own (never a gRPC worker's), at most
    `workers` of them pulling at once.

    The threads are daemons: a plugin told to stop does not wait for a 100 GB pull to end (what a killed pull
    leaves is swept on the next start).
    """

    def __init__(self, workers: int) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._jobs: dict[str, PullJob] = {}
        self._lock = threading.Lock()

    def running(self, digest: str) -> PullJob | None:
        with self._lock:
            return self._jobs.get(digest)

    def join(self, digest: str, total_bytes: int, run: Callable[[PullJob], Any]) -> PullJob:
        """The pull of `digest` under way, or a new one that calls `run(job)` on a thread of its own."""
        with self._lock:
            job = self._jobs.get(digest)
            if job is None:
                job = self._jobs[digest] = PullJob(digest, total_bytes)
                threading.Thread(target=self._run, args=(job, run), name=f"csi-pull-{digest[7:19]}",
                                 daemon=True).start()
            return job

    def _run(self, job: PullJob, run: Callable[[PullJob], Any]) -> None:
        try:
            with self._slots:
                job.started = True
                run(job)
        except BaseException as error:  # noqa: BLE001 - handed to every caller waiting on the job
            job.error = error
        finally:
            with self._lock:
                if self._jobs.get(job.digest) is job:
                    del self._jobs[job.digest]
            job.finished.set()
