"""Middleware: per-conversation and per-IP rate limits on messages (token buckets).

The conversation is the visitor's, or the signed-in user's whatever browser
they use.

A message over either limit gets an error frame and is not stored. Buckets
live in this process, so with several replicas each enforces its own share;
the per-IP bucket stops a client that rotates visitor ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from connectors.widget.translate import FrameError

if TYPE_CHECKING:
    from connectors.widget.config import Bucket
    from connectors.widget.translate import ClientMessage, Next, Peer

Clock = Callable[[], float]


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

    def _forget_full(self, now: float) -> None:
        for key, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self._rate >= self._burst:
                del self._buckets[key]


class RateLimit:
    """The frame middleware: refuses a message over the visitor's or the IP's limit."""

    def __init__(self, visitor: Bucket, ip: Bucket, clock: Clock = time.monotonic) -> None:
        self.visitors = TokenBuckets(visitor, clock)
        self.ips = TokenBuckets(ip, clock)

    async def __call__(self, message: ClientMessage, peer: Peer, call_next: Next) -> None:
        """Pass ``message`` on when both buckets have a token.

        Raises:
            FrameError: ``rate_limited``; the message is not stored.
        """
        if not self.ips.take(peer.ip) or not self.visitors.take(peer.key or peer.visitor):
            raise FrameError(
                "rate_limited",
                "too many messages; wait a moment and send it again",
                message.client_id,
            )
        await call_next()
