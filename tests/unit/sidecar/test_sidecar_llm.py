"""The stream meter over vLLM-shaped server-sent events, split at every possible byte boundary."""

from __future__ import annotations

import json

import pytest

from shipway.sidecar.llm import MAX_EVENT_BYTES, StreamMeter, outcome, usage

EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": 'lo "x"'}, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": None}, "finish_reason": "length"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
]


def _stream(separators: tuple[str, str] | None) -> bytes:
    lines = [b"data: " + json.dumps(event, separators=separators).encode() + b"\r\n\r\n" for event in EVENTS]
    return b": keep-alive\n\n" + b"".join(lines) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("separators", [(",", ":"), None], ids=["compact", "spaced"])
@pytest.mark.parametrize("piece", [1, 5, 64, 10_000])
def test_tokens_gaps_usage_and_finish_reason_whatever_the_chunking(separators: tuple[str, str] | None,
                                                                   piece: int) -> None:
    meter = StreamMeter(started=0.0)
    data = _stream(separators)
    for offset in range(0, len(data), piece):
        meter.feed(data[offset : offset + piece], now=float(offset))
    # The role event and the empty final delta are not tokens; two content events are.
    assert meter.token_events == 2 and len(meter.gaps) == 1
    assert (meter.prompt_tokens, meter.completion_tokens, meter.finish_reason) == (3, 2, "length")
    assert meter.first_token is not None


def test_an_oversized_event_is_skipped_not_buffered() -> None:
    meter = StreamMeter(started=0.0)
    huge = b"data: " + json.dumps({"choices": [{"delta": {"content": "x" * (2 * MAX_EVENT_BYTES)}}]}).encode()
    for offset in range(0, len(huge), 4096):
        meter.feed(huge[offset : offset + 4096], now=1.0)
        assert len(meter._carry) <= MAX_EVENT_BYTES
    meter.feed(b"\n\ndata: " + json.dumps(EVENTS[1]).encode() + b"\n\n", now=2.0)
    assert meter.token_events == 1 and meter.first_token == 2.0


def test_a_response_that_was_not_streamed_gives_its_usage_and_outcome() -> None:
    answer = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 7, "completion_tokens": 1}}
    found = usage(answer)
    assert found is not None and (found.prompt_tokens, found.completion_tokens, found.finish_reason) == (7, 1, "stop")
    assert usage({"outputs": []}) is None
    assert [outcome(200, "stop", False, False), outcome(200, "length", False, False), outcome(429, None, False, False),
            outcome(200, None, True, False), outcome(503, None, False, False), outcome(200, None, False, True)] == [
        "success", "length", "rejected", "error", "error", "cancelled"]
