"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, with scripted replies.

Usage::

    async with FakeOpenAI() as server:          # or the ``fake_openai`` fixture
        server.script(status(429, retry_after=0.2), ok("Hello!", usage=(12, 3)))
        ...  # point a client at server.base_url (".../v1")
        assert server.requests[1].body["model"] == "m"

Each ``POST /v1/chat/completions`` takes the next scripted :class:`Action`
(``default`` once the script is used up) and records the request. ``GET
/v1/models`` lists ``model_ids``. Actions: :func:`ok`, :func:`status`,
:func:`malformed_json`, :func:`no_choices`, :func:`sleep`, :func:`hang`,
:func:`drop` and :func:`stream`.
``ok`` and ``stream`` answer a streamed request (``"stream": true``) and a
plain one alike, as SSE or as one JSON body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

from aiohttp import web

#: Text of a reply, or a function of the request body that returns it.
TextSource = str | Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Action:
    """What the server does with one request; build it with the helpers below."""

    kind: str = "ok"
    text: TextSource = "OK"
    chunks: tuple[str, ...] | None = None
    usage: tuple[int, int] | None = (10, 5)
    logprobs: tuple[tuple[str, float], ...] | None = None
    finish_reason: str = "stop"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    delay_s: float = 0.0
    stall_after: int | None = None
    chunk_logprobs: tuple[tuple[tuple[str, float], ...], ...] | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received; ``at`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    raw: str
    body: Any
    at: float


def ok(
    text: TextSource = "OK",
    *,
    usage: tuple[int, int] | None = (10, 5),
    logprobs: Sequence[tuple[str, float]] | None = None,
    finish_reason: str = "stop",
) -> Action:
    """Answer with ``text``; ``usage`` is ``(prompt, completion)`` tokens or None to omit it."""
    return Action(
        text=text,
        usage=usage,
        logprobs=tuple(logprobs) if logprobs is not None else None,
        finish_reason=finish_reason,
    )


def status(code: int, *, retry_after: float | str | None = None, body: str = "") -> Action:
    """Answer with HTTP ``code``, optionally with a ``Retry-After`` header."""
    headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
    payload = body or json.dumps({"error": {"message": f"scripted {code}", "code": code}})
    return Action(kind="status", status=code, headers=headers, body=payload)


def malformed_json(body: str = '{"choices": [{"message": ') -> Action:
    """Answer 200 with a body that is not valid JSON."""
    return Action(kind="raw", body=body)


def no_choices() -> Action:
    """Answer 200 with valid JSON that has no choices."""
    return Action(kind="raw", body=json.dumps({"id": "x", "object": "chat.completion"}))


def sleep(seconds: float, then: Action | None = None) -> Action:
    """Wait ``seconds`` before doing ``then`` (default :func:`ok`)."""
    return replace(then or ok(), delay_s=seconds)


def hang() -> Action:
    """Never answer: the request waits until the client goes away or the server closes."""
    return sleep(3600.0)


def drop() -> Action:
    """Close the connection without answering, as a crashed or restarted server does."""
    return Action(kind="drop")


def stream(
    chunks: Sequence[str],
    *,
    stall_after: int | None = None,
    usage: tuple[int, int] | None = (10, 5),
    logprobs: Sequence[Sequence[tuple[str, float]]] | None = None,
    finish_reason: str = "stop",
) -> Action:
    """Stream ``chunks`` as SSE; ``stall_after=n`` goes silent after ``n`` chunks.

    ``logprobs`` gives each chunk its tokens (one list per chunk); a stalled
    stream stays open until the client goes away or the server closes.
    """
    groups = tuple(tuple(group) for group in logprobs) if logprobs is not None else None
    return Action(
        kind="stream",
        text="".join(chunks),
        chunks=tuple(chunks),
        usage=usage,
        chunk_logprobs=groups,
        finish_reason=finish_reason,
        stall_after=stall_after,
    )


def _logprobs(pairs: Sequence[tuple[str, float]] | None) -> dict[str, Any] | None:
    if pairs is None:
        return None
    content: list[dict[str, Any]] = [
        {"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in pairs
    ]
    return {"content": content}


def _usage(usage: tuple[int, int] | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


class FakeOpenAI:
    """An OpenAI-compatible server with a script of replies and a request log.

    Args:
        default: What to do once the script is used up (default :func:`ok`).
        model_ids: What ``GET /v1/models`` lists.

    Attributes:
        requests: Every request received, in order.
    """

    def __init__(
        self, *, default: Action | None = None, model_ids: Sequence[str] = ("fake-model",)
    ) -> None:
        self.default = default or ok()
        self.model_ids = tuple(model_ids)
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Action] = deque()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._port = 0

    @property
    def base_url(self) -> str:
        """The URL to configure as a provider's ``base_url`` (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests received."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def pending(self) -> int:
        """How many scripted actions are still waiting for a request."""
        return len(self._queue)

    def script(self, *actions: Action) -> None:
        """Append ``actions`` to the script; each answers one chat request."""
        self._queue.extend(actions)

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, shutdown_timeout=1.0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Wake stalled or sleeping handlers and stop the server."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when the server closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            request.method, request.path, dict(request.headers), raw, body, time.monotonic()
        )
        self.requests.append(recorded)
        return recorded

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.model_ids]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        action = self._queue.popleft() if self._queue else self.default
        if action.delay_s:
            await self._wait(action.delay_s)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        if action.kind == "drop":
            return await self._drop(request)
        if action.kind == "status":
            return web.Response(
                status=action.status,
                text=action.body,
                headers=dict(action.headers),
                content_type="application/json",
            )
        if action.kind == "raw":
            return web.Response(text=action.body, content_type="application/json")
        if body.get("stream"):
            return await self._stream(request, action, body)
        return web.json_response(self._completion(action, body))

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Abort the connection with no reply; the returned response is never sent."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    @staticmethod
    def _completion(action: Action, body: dict[str, Any]) -> dict[str, Any]:
        text = action.text(body) if callable(action.text) else action.text
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": _logprobs(action.logprobs),
            "finish_reason": action.finish_reason,
        }
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [choice],
        }
        if action.usage is not None:
            reply["usage"] = _usage(action.usage)
        return reply

    @staticmethod
    def _stream_events(action: Action, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the SSE events of a streamed reply: chunks, finish, then usage."""
        text = action.text(body) if callable(action.text) else action.text
        chunks = list(action.chunks) if action.chunks is not None else [text]
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "model": body.get("model", "fake-model"),
        }
        groups = action.chunk_logprobs
        if groups is None and action.logprobs is not None:
            groups = (action.logprobs,)
        events: list[dict[str, Any]] = []
        for index, chunk in enumerate(chunks):
            mine = groups[index] if groups is not None and index < len(groups) else None
            delta = {"role": "assistant", "content": chunk} if index == 0 else {"content": chunk}
            choice = {
                "index": 0,
                "delta": delta,
                "logprobs": _logprobs(mine),
                "finish_reason": None,
            }
            events.append({**base, "choices": [choice]})
        done = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": action.finish_reason}
        events.append({**base, "choices": [done]})
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage and action.usage is not None:
            events.append({**base, "choices": [], "usage": _usage(action.usage)})
        return events

    async def _stream(
        self, request: web.Request, action: Action, body: dict[str, Any]
    ) -> web.StreamResponse:
        """Send the events as SSE, going silent at ``stall_after`` if it is set."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for index, event in enumerate(self._stream_events(action, body)):
                if action.stall_after is not None and index >= action.stall_after:
                    await self._wait(60.0)
                    return response
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        return response
