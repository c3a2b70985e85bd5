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

from bot import wirejson
from bot.wirejson import InvalidPayload

Payload = dict[str, Any]


@dataclass(frozen=True)
class Ack:
    """How to answer Slack for one payload.

    Attributes:
        status: 200 to acknowledge; 400 for a payload that can never be
            taken (Slack must not send it again); 503 when the message could
            not be stored (Slack then retries it).
        body: A JSON body for the answer (the ``url_verification`` challenge).
        note: Why the payload was ignored or refused, for logs and the 4xx reason.
        error: The error code of a refused payload.
    """

    status: int = 200
    body: dict[str, Any] | None = None
    note: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether Slack may consider the payload delivered."""
        return self.status < 300

    @property
    def retry(self) -> bool:
        """Whether Slack should deliver the payload again later."""
        return self.status >= 500


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


def invalid(reason: str) -> Ack:
    """The answer to a payload that can never be taken, saying why."""
    return Ack(status=400, note=reason, error="invalid_payload")


async def check_payload(payload: Payload, next_: Handler) -> Ack:
    """Middleware: refuse a payload no store or encoder could take, before anything reads it.

    :func:`bot.wirejson.check` finds lone surrogates, NUL, deep nesting,
    huge integers and non-finite numbers; Socket Mode payloads come here
    without passing :func:`bot.wirejson.loads`.
    """
    try:
        wirejson.check(payload)
    except InvalidPayload as exc:
        return invalid(str(exc))
    return await next_(payload)
