"""Middleware: per-conversation and per-IP rate limits on messages (token buckets).

The conversation is the visitor's, or the signed-in user's whatever browser
they use.

A message over either limit gets an error frame and is not stored. Buckets
live in this process, so with several replicas each enforces its own share;
the per-IP bucket stops a client that rotates visitor ids.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bot.ratelimit import Clock, TokenBuckets
from connectors.widget.translate import FrameError

if TYPE_CHECKING:
    from bot.ratelimit import Bucket
    from connectors.widget.translate import ClientMessage, Next, Peer


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
