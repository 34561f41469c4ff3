"""Limits a registry cannot talk a transfer past: sizes, a total deadline and a minimum rate.

A read timeout alone does not bound a transfer: a registry that sends one byte a
second never lets a read time out. A watchdog thread therefore watches each
transfer's clock and, once the deadline passes or the rate stays below the
minimum for a whole window, shuts the transfer's socket down, which ends any
blocked read or write at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from shipway.artifacts.errors import ArtifactError

MIB = 1024 * 1024
GIB = 1024 * MIB
WATCH_INTERVAL_S = 0.1


class TransferLimitError(ArtifactError):
    """A transfer ran past its deadline, fell below the minimum rate, or was larger than allowed."""

    exit_code = 8


@dataclass(frozen=True)
class TransferLimits:
    """The caps every pull and push obeys; each is a command-line option."""

    max_manifest_bytes: int = 4 * MIB
    max_blob_bytes: int = 512 * GIB
    deadline_s: float = 6 * 3600.0
    min_rate_bytes_s: float = 64 * 1024.0
    rate_window_s: float = 30.0


class TransferClock:
    """Bytes moved and time spent by one transfer, and whether a limit is broken."""

    def __init__(self, limits: TransferLimits, what: str, measure_rate: bool) -> None:
        self.limits = limits
        self.what = what
        self.measure_rate = measure_rate
        self.started = time.monotonic()
        self.moved = 0
        self._mark = (self.started, 0)
        self.broken: str | None = None
        self.connection: HTTPConnection | None = None

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        """A stretch in which no bytes are expected (the registry is working): the rate is not judged."""
        measuring = self.measure_rate
        self.measure_rate = False
        try:
            yield
        finally:
            self._mark = (time.monotonic(), self.moved)
            self.measure_rate = measuring

    def advance(self, count: int) -> None:
        """Count bytes received or sent."""
        self.moved += count

    def check(self) -> str | None:
        """The broken limit, in words, or None; a broken limit stays broken."""
        if self.broken is not None:
            return self.broken
        now = time.monotonic()
        limits = self.limits
        if now - self.started > limits.deadline_s:
            self.broken = (f"{self.what} ran past its deadline of {limits.deadline_s:g} s "
                           f"after {self.moved} bytes; raise --deadline if the artifact is that large")
        elif self.measure_rate and now - self._mark[0] >= limits.rate_window_s:
            mark_time, mark_bytes = self._mark
            rate = (self.moved - mark_bytes) / (now - mark_time)
            if rate < limits.min_rate_bytes_s:
                self.broken = (f"{self.what} moved {rate:.0f} bytes/s over {now - mark_time:.1f} s, below the "
                               f"minimum of {limits.min_rate_bytes_s:.0f} bytes/s (--min-rate)")
            else:
                self._mark = (now, self.moved)
        return self.broken

    def abort(self) -> None:
        """Shut the transfer's socket down, so that a blocked read or write returns now."""
        connection = self.connection
        sock = getattr(connection, "sock", None) if connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def raise_if_broken(self) -> None:
        """Raise the broken limit as a TransferLimitError."""
        if self.check() is not None:
            raise TransferLimitError(f"{self.broken}.")


_current = threading.local()


def current_clock() -> TransferClock | None:
    """The clock of the transfer this thread is running, if any."""
    return getattr(_current, "clock", None)


@contextlib.contextmanager
def guarded(limits: TransferLimits, what: str, measure_rate: bool = True) -> Iterator[TransferClock]:
    """Run one transfer under a watchdog; a transfer inside another shares the outer one's clock."""
    outer = current_clock()
    if outer is not None:
        yield outer
        return
    clock = TransferClock(limits, what, measure_rate)
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(WATCH_INTERVAL_S):
            if clock.check() is not None:
                clock.abort()
                return

    watcher = threading.Thread(target=watch, name=f"watchdog {what}", daemon=True)
    _current.clock = clock
    watcher.start()
    try:
        yield clock
    finally:
        finished.set()
        _current.clock = None
        watcher.join()


class _TellsTheClock:
    """Mixed into urllib3's connections: each request names its connection to the running transfer's clock."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        clock = current_clock()
        if clock is not None:
            clock.connection = self  # type: ignore[assignment]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_TellsTheClock, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_TellsTheClock, HTTPSConnection):
    pass


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connections tell the running transfer's clock which socket to shut down."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}


class MeteredBody:
    """An upload body that counts what the connection reads from it, for the transfer's rate."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._offset = 0

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int = -1) -> bytes:
        """The next block; each read means the previous one was sent.

        After the end it starts over, so that a request repeated for authentication sends the body whole.
        """
        if self._offset == len(self._view):
            self._offset = 0
            return b""
        end = len(self._view) if size < 0 else min(len(self._view), self._offset + size)
        block = self._view[self._offset:end].tobytes()
        self._offset = end
        clock = current_clock()
        if clock is not None:
            clock.advance(len(block))
        return block
