"""A local Slack: the Web API methods the connector calls, and a Socket Mode endpoint.

The tests and ``helpline bench load`` run it (it is not used in production).
It speaks the real wire protocol (HTTP JSON/form calls with a bearer token,
Socket Mode envelopes over a WebSocket), records every call, and can be told
to fail the next calls with 429 + Retry-After or 500.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-1111-2222-helplinetest"
APP_TOKEN = "xapp-1-A0HELPLINE-3333-helplinetest"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID = "T0001HELP"
BOT_USER_ID = "U0HELPBOT"
BOT_ID = "B0HELPBOT"
#: Channels that are gone, with the error Slack gives for them.
GONE_CHANNELS = {"C0ARCHIVED": "is_archived", "C0GONE": "channel_not_found"}


@dataclass
class Call:
    """One Web API call as the fake saw it."""

    method: str
    token: str | None
    params: dict[str, Any]
    status: int = 200
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    #: The call was carried out, but the connection was cut before the answer.
    answer_lost: bool = False

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.status == 200 and self.error is None


@dataclass
class Failure:
    """A failure the fake is told to answer with."""

    status: int
    retry_after: int | None = None
    method: str | None = None


@dataclass
class FakeSlack:
    """The fake's state; ``app`` is the aiohttp application serving it."""

    api_url: str = ""
    calls: list[Call] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    failures: deque[Failure] = field(default_factory=deque)
    #: How many more chat.postMessage calls post, then cut the connection unanswered.
    lose_answers: int = 0
    #: The bot's posted messages per channel, oldest first.
    posted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Called with every Web API call once it is answered (the bench's hook).
    on_call: Callable[[Call], None] | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1700009000))

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_get("/api/{method}", self._api)
        self.app.router.add_get("/link/", self._link)
        self.app.on_shutdown.append(self._close_sockets)

    # -- control --------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 500, retry_after: int | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``n`` calls of ``method`` (default: all but auth.test) with a status."""
        self.failures.extend(Failure(status, retry_after, method) for _ in range(n))

    def successful(self, method: str, **match: Any) -> list[Call]:
        """The successful calls of ``method`` whose params match ``match``."""
        return [
            c
            for c in self.calls
            if c.method == method and c.ok and all(c.params.get(k) == v for k, v in match.items())
        ]

    async def wait_for(self, method: str, count: int = 1, **match: Any) -> list[Call]:
        """Wait (bounded) until ``count`` successful calls of ``method`` matching ``match``."""
        async with asyncio.timeout(15), self._changed:
            await self._changed.wait_for(lambda: len(self.successful(method, **match)) >= count)
        return self.successful(method, **match)

    async def wait_until(self, predicate: Any) -> None:
        """Wait (bounded) until ``predicate()`` holds."""
        async with asyncio.timeout(15), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- Web API --------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        call = Call(method, token, params)
        self.calls.append(call)
        try:
            response = self._answer(call, request)
            if call.method == "chat.postMessage" and call.ok and self.lose_answers > 0:
                # As a timeout after Slack took the message: posted, answer lost.
                self.lose_answers -= 1
                call.answer_lost = True
                if request.transport is not None:
                    request.transport.abort()
            return response
        finally:
            if self.on_call is not None:
                self.on_call(call)
            await self._notify()

    def _answer(self, call: Call, request: web.Request) -> web.Response:
        if self.failures and self._fails(self.failures[0], call.method):
            failure = self.failures.popleft()
            call.status, call.error = failure.status, "failed on purpose"
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            error = "ratelimited" if failure.status == 429 else "internal_error"
            return web.json_response(
                {"ok": False, "error": error}, status=failure.status, headers=headers
            )
        expected = APP_TOKEN if call.method == "apps.connections.open" else BOT_TOKEN
        if call.token != expected:
            return self._error(call, "invalid_auth" if call.token else "not_authed")
        handler = getattr(self, "_" + call.method.replace(".", "_"), None)
        if handler is None:
            return self._error(call, "unknown_method")
        result: dict[str, Any] | str = handler(call.params, request)
        if isinstance(result, str):
            return self._error(call, result)
        call.response = {"ok": True, **result}
        return web.json_response(call.response)

    @staticmethod
    def _fails(failure: Failure, method: str) -> bool:
        if failure.method is None:
            return method != "auth.test"
        return failure.method == method

    @staticmethod
    def _error(call: Call, error: str) -> web.Response:
        call.error = error
        return web.json_response({"ok": False, "error": error})

    def _auth_test(self, params: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return {
            "url": "https://helpline-test.slack.com/",
            "team": "Helpline Test",
            "user": "helpline",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any] | str:
        channel = params.get("channel")
        if not channel:
            return "channel_not_found"
        if channel in GONE_CHANNELS:
            return GONE_CHANNELS[channel]
        if not params.get("text") and not params.get("blocks"):
            return "no_text"
        ts = f"{next(self._ts)}.000100"
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts, **params}
        message.pop("channel", None)
        self.posted.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": ts, "message": message}

    def _conversations_history(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any] | str:
        """The channel's bot messages, newest first (top level and threads alike)."""
        if request.method != "GET":
            return "invalid_arguments"  # Slack takes read arguments as a query or form
        found = self._listed(params, list(reversed(self.posted.get(params.get("channel", ""), []))))
        return found if isinstance(found, str) else {"messages": found, "has_more": False}

    def _conversations_replies(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any] | str:
        """The bot's messages in thread ``ts``, oldest first."""
        if request.method != "GET":
            return "invalid_arguments"
        if not params.get("ts"):
            return "thread_not_found"
        messages = self.posted.get(params.get("channel", ""), [])
        in_thread = [m for m in messages if m.get("thread_ts") == params["ts"]]
        found = self._listed(params, in_thread)
        return found if isinstance(found, str) else {"messages": found, "has_more": False}

    def _listed(
        self, params: dict[str, Any], messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | str:
        channel = params.get("channel")
        if not channel:
            return "channel_not_found"
        if channel in GONE_CHANNELS:
            return GONE_CHANNELS[channel]
        oldest = float(params.get("oldest") or 0)
        messages = [m for m in messages if float(m["ts"]) > oldest]
        limit = int(params.get("limit") or 100)
        with_metadata = str(params.get("include_all_metadata")).lower() in {"true", "1"}
        return [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in messages[:limit]
        ]

    def _chat_update(self, params: dict[str, Any], request: web.Request) -> dict[str, Any] | str:
        if not params.get("channel") or not params.get("ts"):
            return "message_not_found"
        return {"channel": params["channel"], "ts": params["ts"], "text": params.get("text", "")}

    def _chat_postEphemeral(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any] | str:
        """A message only ``user`` sees; Slack answers with a ``message_ts``."""
        channel = params.get("channel")
        if not channel or channel in GONE_CHANNELS:
            return GONE_CHANNELS.get(channel or "", "channel_not_found")
        if not params.get("user"):
            return "user_not_in_channel"
        if not params.get("text") and not params.get("blocks"):
            return "no_text"
        return {"message_ts": f"{next(self._ts)}.000200"}

    def _apps_connections_open(
        self, params: dict[str, Any], request: web.Request
    ) -> dict[str, Any]:
        url = request.url.with_scheme("ws").with_path("/link/").with_query(ticket=str(uuid.uuid4()))
        return {"url": str(url)}

    # -- Socket Mode ----------------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0HELPLINE"},
            }
        )
        await self._notify()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.acks.append(data["envelope_id"])
                    await self._notify()
        await self._notify()
        return ws

    @property
    def live_sockets(self) -> list[web.WebSocketResponse]:
        """The Socket Mode connections still open."""
        return [ws for ws in self.sockets if not ws.closed]

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], retry_attempt: int = 0
    ) -> str:
        """Send an ``events_api`` or ``interactive`` envelope on the live connection."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "payload": payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason="")
        await self.live_sockets[-1].send_json(envelope)
        return envelope_id

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell the live connection to reconnect."""
        await self.live_sockets[-1].send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in self.live_sockets:
            await ws.close()


async def _params(request: web.Request) -> dict[str, Any]:
    """The call's arguments, from the query and a JSON or form body."""
    params: dict[str, Any] = dict(request.query)
    raw = await request.read()
    if not raw:
        return params
    if request.content_type == "application/json":
        params.update(json.loads(raw))
    else:
        params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
    return params
