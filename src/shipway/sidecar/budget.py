"""One byte budget for everything the sidecar holds of the traffic it proxies.

Bodies stream through; only copies kept for reading (features, predictions, token usage) are
held, and all of them together stay within the budget. A copy that does not fit is never
made: its exchange passes through unread and is counted as unparsed.
"""

from __future__ import annotations

import threading


class ByteBudget:
    """A thread-safe count of bytes held, refusing any claim that would pass the limit."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a byte budget is 0 or more, got {limit}")
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """Bytes claimed and not yet released."""
        return self._held

    def claim(self, size: int) -> bool:
        """Claim `size` bytes; False, claiming nothing, when they would not fit."""
        with self._lock:
            if self._held + size > self.limit:
                return False
            self._held += size
            return True

    def release(self, size: int) -> None:
        """Give back bytes claimed earlier."""
        with self._lock:
            self._held -= size


class Capture:
    """A bounded copy of one body for reading: kept whole when it fits, dropped (and released) when not.

    `limit` bounds this body; the shared budget bounds all bodies in flight together.
    """

    def __init__(self, budget: ByteBudget, limit: int) -> None:
        self._budget = budget
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.overflowed = False

    def add(self, chunk: bytes) -> None:
        """Keep a copy of the chunk, or drop the whole copy if this body grows past a bound."""
        if self.overflowed or not chunk:
            return
        if self._size + len(chunk) > self._limit or not self._budget.claim(len(chunk)):
            self.drop()
            return
        self._chunks.append(chunk)
        self._size += len(chunk)

    def drop(self) -> None:
        """Forget the copy and release its bytes: this body will not be read."""
        self.overflowed = True
        self._chunks = []
        self._budget.release(self._size)
        self._size = 0

    def take(self) -> tuple[bytes | None, int]:
        """The whole body (None when it overflowed) and the bytes to release once it has been read."""
        if self.overflowed:
            return None, 0
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        return body, self._size
