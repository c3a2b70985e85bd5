"""Bolt-style middleware over Slack payloads, shared by both transports.

A payload is what Slack delivers, whichever way it came: the Events API body
(``url_verification`` or ``event_callback``) or an interaction payload
(``block_actions``). Each middleware gets it with the next handler and either
passes it on or answers itself, as bolt's ``async_process(req, resp, next)``
does. The HTTP adapter and Socket Mode both run the same chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Payload = dict[str, Any]


@dataclass(frozen=True)
class Ack:
    """How to answer Slack for one payload.

    Attributes:
        status: 200 to acknowledge; 503 when the message could not be stored
            (Slack then retries it).
        body: A JSON body for the answer (the ``url_verification`` challenge).
        note: Why the payload was ignored or refused, for logs.
    """

    status: int = 200
    body: dict[str, Any] | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether Slack may consider the payload delivered."""
        return self.status < 300


Handler = Callable[[Payload], Awaitable[Ack]]
Middleware = Callable[[Payload, Handler], Awaitable[Ack]]


def chain(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """Return a handler that runs ``middlewares`` in order, then ``handler``."""
    for middleware in reversed(middlewares):
        handler = _bind(middleware, handler)
    return handler


def _bind(middleware: Middleware, next_: Handler) -> Handler:
    async def run(payload: Payload) -> Ack:
        return await middleware(payload, next_)

    return run
