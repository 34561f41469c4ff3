"""Measuring OpenAI-compatible generation as it streams past: first token, gaps between tokens, usage.

The meter reads copies of the chunks after they have been written to the client, so it never
delays a token. Server-sent events are split into lines with a bounded carry-over; an event
larger than that is skipped, not buffered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# Paths of the OpenAI-compatible generation endpoints (vLLM serves them under /v1).
GENERATION_SUFFIXES = ("/chat/completions", "/completions")
# One SSE data line of a token event is a few hundred bytes; anything longer is not metered.
MAX_EVENT_BYTES = 64 * 1024
# A chat delta's "content" or a completion's "text" holding a non-empty string, as JSON writes it.
_NON_EMPTY_TEXT = re.compile(rb'"(?:content|text)"\s*:\s*"[^"]')
_FINISH_REASON = re.compile(rb'"finish_reason"\s*:\s*"([A-Za-z_]+)"')


def is_generation(method: str, path: str) -> bool:
    """Whether the request is an OpenAI-compatible completion or chat completion."""
    return method == "POST" and path.rstrip("/").endswith(GENERATION_SUFFIXES)


@dataclass
class StreamMeter:
    """Token timing and usage of one streamed generation."""

    started: float
    first_token: float | None = None
    last_token: float | None = None
    gaps: list[float] = field(default_factory=list)
    token_events: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    _carry: bytes = b""
    _skipping: bool = False

    def feed(self, chunk: bytes, now: float) -> None:
        """Account for one chunk of the event stream, received at `now`."""
        if self._skipping:
            # The rest of an oversized line: drop it up to its newline, then read normally again.
            end = chunk.find(b"\n")
            if end < 0:
                return
            chunk, self._skipping = chunk[end + 1 :], False
        lines = (self._carry + chunk).split(b"\n") if self._carry else chunk.split(b"\n")
        # The last piece has no newline yet: carry it to the next chunk, if it is small.
        tail = lines.pop()
        for line in lines:
            self._line(line.rstrip(b"\r"), now)
        if len(tail) > MAX_EVENT_BYTES:
            self._carry, self._skipping = b"", True
        else:
            self._carry = tail

    def _line(self, line: bytes, now: float) -> None:
        if not line.startswith(b"data:"):
            return
        data = line[5:].strip()
        if not data or data == b"[DONE]":
            return
        if b'"usage"' in data and b'_tokens"' in data:
            # The (rare) event carrying usage is read in full.
            self._event(data, now)
            return
        # Token events are read by pattern, not parsed: one comes every few milliseconds per stream.
        reason = _FINISH_REASON.search(data)
        if reason is not None:
            self.finish_reason = reason.group(1).decode("ascii")
        if _NON_EMPTY_TEXT.search(data) is not None:
            self._token(now)

    def _event(self, data: bytes, now: float) -> None:
        try:
            event = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if not isinstance(event, dict):
            return
        self._usage(event.get("usage"))
        choices = event.get("choices")
        if not isinstance(choices, list):
            return
        produced = False
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if text:
                produced = True
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        if produced:
            self._token(now)

    def _token(self, now: float) -> None:
        if self.first_token is None:
            self.first_token = now
        elif self.last_token is not None:
            self.gaps.append(now - self.last_token)
        self.last_token = now
        self.token_events += 1

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int) and prompt >= 0:
                self.prompt_tokens = prompt
            if isinstance(completion, int) and completion >= 0:
                self.completion_tokens = completion


@dataclass(frozen=True)
class Usage:
    """Tokens and finish reason of a generation that was not streamed."""

    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None


def usage(document: Any) -> Usage | None:
    """The `usage` and first choice's finish reason of a chat or completion response, when present."""
    if not isinstance(document, dict):
        return None
    meter = StreamMeter(started=0.0)
    meter._usage(document.get("usage"))
    choices = document.get("choices")
    reason = None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        found = choices[0].get("finish_reason")
        reason = found if isinstance(found, str) else None
    if meter.prompt_tokens is None and meter.completion_tokens is None and reason is None:
        return None
    return Usage(meter.prompt_tokens, meter.completion_tokens, reason)


def outcome(status: int, finish_reason: str | None, broken: bool, cancelled: bool) -> str:
    """The request's outcome label: cancelled, error, rejected, length or success."""
    if cancelled:
        return "cancelled"
    if broken or status >= 500:
        return "error"
    if status >= 400:
        return "rejected"
    if finish_reason == "length":
        return "length"
    return "success"
