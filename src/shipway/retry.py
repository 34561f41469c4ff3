"""How Shipway's clients retry a transient failure: the registry client and the retraining trigger share it."""

from __future__ import annotations

from dataclasses import dataclass

# Answers worth another try: timeout, rate limit, and the server-side failures that pass. Every other 4xx is final.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure."""

    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay_s(self, attempt: int) -> float:
        """Exponential backoff for the given zero-based attempt, capped."""
        return min(self.max_delay_s, self.first_delay_s * 2**attempt)
