"""Middleware: a token bucket per sender, so one address cannot flood the bot.

Mail over the limit is not answered: it is marked seen, logged and counted
like the loop guard's (reason ``rate_limited``). The buckets live in memory,
per replica.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.email.translate import ParsedEmail

#: Senders remembered at most; the least recently seen are forgotten first.
MAX_SENDERS = 10_000


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` tokens per second."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> bool:
        """Take one token if there is one."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SenderRateLimit:
    """Allows each sender ``burst`` mails at once and ``per_hour`` on average.

    Args:
        burst: The bucket's capacity.
        per_hour: Its refill rate.
        clock: Seconds from a monotonic clock.
    """

    def __init__(
        self, burst: int, per_hour: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = per_hour / 3600
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, mail: ParsedEmail) -> str | None:
        """Take a token for the sender; ``rate_limited`` when there is none."""
        now = self.clock()
        bucket = self._buckets.pop(mail.sender, None) or TokenBucket(self.burst, self.rate, now)
        self._buckets[mail.sender] = bucket
        while len(self._buckets) > MAX_SENDERS:
            self._buckets.popitem(last=False)
        return None if bucket.take(now) else "rate_limited"
