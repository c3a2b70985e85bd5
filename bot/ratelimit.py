"""Token buckets: one per key, each refilled at a rate, for every rate limit.

Used by the connectors' limits (REST, widget) and by ``/v1``'s per-key limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], float]


class Bucket(BaseModel):
    """A token bucket: ``burst`` messages at once, refilled at ``per_second``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class TokenBuckets:
    """One token bucket per key, dropped once it is full again.

    Args:
        bucket: The refill rate and the burst size.
        clock: Seconds, monotonic (injectable for tests).
        max_keys: Above this many keys, full buckets are forgotten.
    """

    def __init__(self, bucket: Bucket, clock: Clock = time.monotonic, max_keys: int = 10_000):
        self._rate = bucket.per_second
        self._burst = float(bucket.burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        """Take one token for ``key``; ``False`` when its bucket is empty."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_keys:
            self._forget_full(now)
        return True

    def wait_s(self, key: str) -> float:
        """Seconds until ``key``'s bucket holds one token again (0 when it does)."""
        tokens, then = self._buckets.get(key, (self._burst, self._clock()))
        tokens = min(self._burst, tokens + (self._clock() - then) * self._rate)
        return max(0.0, (1.0 - tokens) / self._rate)

    def _forget_full(self, now: float) -> None:
        for key, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self._rate >= self._burst:
                del self._buckets[key]
