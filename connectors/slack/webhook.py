"""The Events API over HTTP: a thin adapter, request → payload chain → response.

``POST /events`` takes Events API bodies (JSON) and ``POST /interactions``
takes interaction payloads (form-encoded ``payload=<json>``); either path
accepts either shape, so one Request URL may serve both. The signature
middleware runs first. Slack wants an answer within 3 s: the chain only
stores the message (the turn runs later), then this answers 200, or 503 when
it could not be stored, so that Slack retries.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aiohttp import web

from bot import metrics, wirejson
from bot.errors import ChannelError
from connectors.slack.signature import signature_middleware
from connectors.slack.translate import CHANNEL

if TYPE_CHECKING:
    from connectors.slack.pipeline import Ack, Handler, Payload

_LOGGER = logging.getLogger(__name__)
FORM = "application/x-www-form-urlencoded"


def events_app(handle: Handler, signing_secret: str) -> web.Application:
    """The sub-app with the Events API and interactivity routes."""
    app = web.Application(middlewares=[signature_middleware(signing_secret)])
    view = functools.partial(receive, handle)
    app.router.add_post("/events", view)
    app.router.add_post("/interactions", view)
    return app


def parse_body(raw: bytes, content_type: str) -> Payload:
    """Read a JSON Events API body or a form-encoded interaction payload.

    The JSON is read by :func:`bot.wirejson.loads`: not UTF-8, too deep,
    huge integers, ``NaN`` or lone surrogates are refused with a reason.

    Raises:
        ChannelError: The body is not one of those, or not a JSON object.
    """
    text: bytes | str = raw
    if content_type == FORM:
        try:
            fields = parse_qs(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ChannelError(f"the body is not valid UTF-8 (byte {exc.start})") from exc
        if "payload" not in fields:
            raise ChannelError("the form has no 'payload' field")
        text = fields["payload"][0]
    data: Any = wirejson.loads(text)
    if not isinstance(data, dict):
        raise ChannelError("the payload must be a JSON object")
    return data


async def receive(handle: Handler, request: web.Request) -> web.Response:
    """Answer one Slack request once its payload is stored (or ignored)."""
    try:
        payload = parse_body(await request.read(), request.content_type)
    except ChannelError as exc:
        metrics.HTTP_ERRORS.labels(CHANNEL, "invalid_body").inc()
        body = {"error": "invalid_body", "reason": str(exc)}
        return web.json_response(body, status=400, headers={"X-Slack-No-Retry": "1"})
    retry = request.headers.get("X-Slack-Retry-Num")
    if retry is not None:
        _LOGGER.info(
            "Slack retried event %s (attempt %s, %s).",
            payload.get("event_id"),
            retry,
            request.headers.get("X-Slack-Retry-Reason", "no reason given"),
        )
    return to_response(await handle(payload))


def to_response(ack: Ack) -> web.Response:
    """The HTTP answer for an :class:`Ack`: a 4xx says why and asks Slack not to retry."""
    if ack.retry:
        body = {"error": "unavailable", "reason": ack.note}
        return web.json_response(body, status=ack.status, headers={"Retry-After": "1"})
    if not ack.ok:
        error = ack.error or "invalid_payload"
        metrics.HTTP_ERRORS.labels(CHANNEL, error).inc()
        _LOGGER.warning("Refused a Slack payload: %s.", ack.note)
        body = {"error": error, "reason": ack.note}
        return web.json_response(body, status=ack.status, headers={"X-Slack-No-Retry": "1"})
    if ack.body is not None:
        return web.json_response(ack.body)
    return web.Response(status=ack.status)
