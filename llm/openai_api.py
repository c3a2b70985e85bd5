"""An OpenAI-compatible Chat Completions endpoint for the local model.

:class:`OpenAIEndpoint` holds a sub-application with the routes ``/chat/completions``
and ``/models``; it is mounted at ``/v1`` (on the app's own listener, on the main port,
or in a ``helpline serve-model`` worker), so the official clients work with
``base_url=".../v1"``. Streaming answers are server-sent events that end with
``data: [DONE]``.

Bodies are decoded by :func:`bot.wirejson.loads` and checked by
:mod:`llm.openai_request`; anything malformed is a 400 with an OpenAI-style error
body, as is a prompt that, with the asked ``max_tokens``, does not fit the context.
A client that goes away stops its generation at the next token, streamed or not.
:meth:`OpenAIEndpoint.drain` refuses new requests and ends those still running at
its deadline: a stream with an error event and ``data: [DONE]``, a pending answer
with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from aiohttp import web

from bot import wirejson
from bot.errors import LLMError, ProviderUnavailable
from llm.api_access import PRIORITY, ApiAccess
from llm.openai_errors import error_response
from llm.openai_request import ChatRequest, InvalidRequest, Limits, parse_request
from llm.types import RequestRefused

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.settings import ApiSettings
    from llm.types import ChatMessage, LocalChatModel, Priority, TokenInfo

__all__ = ["ENDPOINT", "RETRY_AFTER_S", "OpenAIEndpoint", "create_openai_app", "error_response"]

_LOGGER = logging.getLogger(__name__)

RETRY_AFTER_S = 2
#: How long the last event of a stream cut short at the drain deadline may take to send.
FINAL_WRITE_S = 1.0


@runtime_checkable
class _PromptMeter(Protocol):
    """Models that can measure a prompt (the local model): exact context checks and usage."""

    @property
    def context_length(self) -> int | None: ...

    async def measure_prompt(self, messages: Sequence[ChatMessage]) -> int | None: ...


class _ClientGone(Exception):
    """The client closed the connection; the answer is dropped."""


class _Answer:
    """One request being answered: the request, its stream once started, its prompt size."""

    def __init__(self, request: web.Request, chat: ChatRequest) -> None:
        self.request = request
        self.chat = chat
        self.prompt_tokens = 0
        self.stream: _SseStream | None = None

    def gone(self) -> bool:
        """Whether the client has closed the connection."""
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def check(self, _text: str = "") -> None:
        """Raise :class:`_ClientGone` when the client has left (called at each token)."""
        if self.gone():
            raise _ClientGone

    async def fail(self, status: int, message: str, kind: str, code: str) -> web.StreamResponse:
        """End the answer with an error: a JSON body, or an error event once streaming."""
        error = {"message": message, "type": kind, "param": None, "code": code}
        if self.stream is None:
            response = error_response(status, message, kind=kind, code=code)
            if status in (429, 503):
                response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            async with asyncio.timeout(FINAL_WRITE_S):
                await self.stream.write({"error": error})
                await self.stream.done()
        return self.stream.response


class OpenAIEndpoint:
    """The ``/v1`` sub-application serving ``model`` as ``model_name``, and its drain.

    Args:
        model: The model to serve (the local model or its proxy).
        model_name: The id clients pass as ``model`` and ``GET /models`` lists.
        limits: What a request may ask for.
        access: The ``llm.api`` settings for keys and rate limits; ``None`` serves
            everyone (tests, embedding).
    """

    def __init__(
        self,
        model: LocalChatModel,
        model_name: str,
        *,
        limits: Limits | None = None,
        access: ApiSettings | None = None,
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.limits = limits or Limits()
        self.draining = False
        self._deadline: float | None = None
        self._active: set[asyncio.Timeout] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        middlewares = [ApiAccess(access).middleware] if access is not None else []
        self.app = web.Application(middlewares=middlewares)
        self.app[ENDPOINT] = self
        self.app.router.add_post("/chat/completions", self.chat_completions)
        self.app.router.add_get("/models", self.models)

    @property
    def in_flight(self) -> int:
        """Chat requests being answered now."""
        return len(self._active)

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new requests; end those in flight after ``timeout_s``.

        Returns:
            Whether every request had ended by the deadline's last writes.
        """
        self.draining = True
        self._deadline = asyncio.get_running_loop().time() + timeout_s
        for timeout in self._active:
            timeout.reschedule(self._deadline)
        _LOGGER.info("/v1 drains: %d request(s) in flight get %g s.", self.in_flight, timeout_s)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s + FINAL_WRITE_S + 1.0)
        except TimeoutError:
            _LOGGER.warning("/v1: %d request(s) did not end in time.", self.in_flight)
            return False
        return True

    async def models(self, request: web.Request) -> web.Response:
        """``GET /models``: the one model served."""
        entry = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "helpline"}
        return web.json_response({"object": "list", "data": [entry]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/completions``: answer in one JSON body or as server-sent events."""
        if self.draining:
            refusal = error_response(
                503, "The server is shutting down.", kind="server_error", code="model_busy"
            )
            refusal.headers["Retry-After"] = str(RETRY_AFTER_S)
            return refusal
        try:
            body = wirejson.loads(await request.read())
            chat = parse_request(body, self.model_name, self.limits)
        except wirejson.InvalidPayload as exc:
            return error_response(400, f"Invalid body: {exc}.", kind="invalid_request_error")
        except InvalidRequest as exc:
            return _invalid(exc)
        priority = cast("Priority", request.get(PRIORITY, "api"))
        return await self._tracked(_Answer(request, chat.with_priority(priority)))

    async def _tracked(self, answer: _Answer) -> web.StreamResponse:
        """Answer under the drain's deadline (none until the server drains)."""
        timeout = asyncio.timeout(self._deadline)
        self._active.add(timeout)
        self._idle.clear()
        try:
            async with timeout:
                return await self._answer(answer)
        except TimeoutError:
            if not timeout.expired():
                raise
            _LOGGER.info("/v1: an answer was cut short by the drain deadline.")
            return await answer.fail(
                503,
                "The server is shutting down; the answer was cut short.",
                "server_error",
                "server_shutting_down",
            )
        finally:
            self._active.discard(timeout)
            if not self._active:
                self._idle.set()

    async def _answer(self, answer: _Answer) -> web.StreamResponse:
        """Fit the request to the context and answer it; map the model's errors."""
        try:
            answer.chat = await self._fit(answer)
            if answer.chat.stream:
                return await self._stream(answer)
            return await self._complete(answer)
        except InvalidRequest as exc:
            return _invalid(exc)
        except _ClientGone:
            _LOGGER.info("The /v1 client left before its answer; generation stopped.")
            return web.Response(status=499)
        except RequestRefused as exc:
            return await answer.fail(400, str(exc), "invalid_request_error", "invalid_request")
        except ProviderUnavailable as exc:  # ModelBusy, a worker pool without a free worker
            return await answer.fail(503, str(exc), "server_error", "model_busy")
        except LLMError as exc:
            _LOGGER.warning("The local model failed: %s", exc)
            return await answer.fail(500, str(exc), "server_error", "model_error")

    async def _fit(self, answer: _Answer) -> ChatRequest:
        """Refuse a prompt and ``max_tokens`` that do not fit the context (as vLLM does).

        Without ``max_tokens`` the answer gets what the context leaves, up to the default.
        """
        chat, model = answer.chat, self.model
        if not isinstance(model, _PromptMeter):
            return chat
        prompt = await model.measure_prompt(chat.messages)
        context = model.context_length
        if prompt is None or context is None:
            return chat
        answer.prompt_tokens = prompt
        wanted = chat.settings.max_new_tokens
        if prompt >= context or (chat.max_tokens_set and prompt + wanted > context):
            raise InvalidRequest(
                f"This model's maximum context length is {context} tokens. However, you "
                f"requested {prompt + wanted} tokens ({prompt} in the messages, {wanted} in "
                "the completion). Please reduce the length of the messages or completion.",
                "messages",
                "context_length_exceeded",
            )
        return chat.with_max_tokens(min(wanted, context - prompt))

    def _header(self) -> dict[str, Any]:
        """The fields every response and chunk shares."""
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": self.model_name,
        }

    async def _complete(self, answer: _Answer) -> web.Response:
        """Answer in one JSON body; a client that leaves stops the generation."""
        chat = answer.chat
        completion = await self.model.complete(chat.messages, chat.settings, on_token=answer.check)
        answer.check()
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": completion.text},
            "finish_reason": _finish_reason(completion.finish_reason),
            "logprobs": None,
        }
        if chat.logprobs:
            choice["logprobs"] = {"content": _logprob_entries(completion.tokens), "refusal": None}
        usage = _usage(completion.prompt_tokens, completion.completion_tokens)
        body = {**self._header(), "object": "chat.completion", "choices": [choice], "usage": usage}
        return web.json_response(body)

    async def _stream(self, answer: _Answer) -> web.StreamResponse:
        """Answer as server-sent events; a vanished client closes the model's stream."""
        chat = answer.chat
        tokens = self.model.stream(chat.messages, chat.settings)
        try:
            first = await anext(aiter(tokens), None)  # Errors (busy) come before the headers.
            answer.check()
            stream = answer.stream = await _SseStream.start(
                answer.request, self._header(), chat.logprobs
            )
            await stream.send({"role": "assistant", "content": ""})
            count, item = 0, first
            while item is not None:
                count += item.token_id >= 0
                await stream.send({"content": item.text}, item)
                item = await anext(tokens, None)
            finish = "length" if count >= chat.settings.max_new_tokens else "stop"
            await stream.send({}, finish_reason=finish)
            if chat.include_usage:
                await stream.write({"choices": [], "usage": _usage(answer.prompt_tokens, count)})
            await stream.done()
        except ConnectionResetError as exc:
            raise _ClientGone from exc
        finally:
            aclose = getattr(tokens, "aclose", None)
            if aclose is not None:
                await aclose()
        return stream.response


def _invalid(exc: InvalidRequest) -> web.Response:
    """The 400 of a request that :mod:`llm.openai_request` (or the context check) refused."""
    return error_response(
        400, str(exc), kind="invalid_request_error", param=exc.param, code=exc.code
    )


def _logprob_entries(tokens: Sequence[TokenInfo]) -> list[dict[str, Any]]:
    """Per-token log-probabilities in OpenAI's ``logprobs.content`` shape."""
    return [
        {
            "token": token.text,
            "logprob": token.logprob,
            "bytes": list(token.text.encode("utf-8")),
            "top_logprobs": [],
        }
        for token in tokens
        if token.token_id >= 0
    ]


class _SseStream:
    """Writes ``chat.completion.chunk`` events."""

    def __init__(
        self, response: web.StreamResponse, header: dict[str, Any], logprobs: bool
    ) -> None:
        self.response = response
        self.header = {**header, "object": "chat.completion.chunk"}
        self.logprobs = logprobs

    @classmethod
    async def start(
        cls, request: web.Request, header: dict[str, Any], logprobs: bool
    ) -> _SseStream:
        """Send the headers of an event stream."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        return cls(response, header, logprobs)

    async def send(
        self,
        delta: dict[str, Any],
        token: TokenInfo | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """Send one chunk with ``delta`` (and the token's log-probability when asked)."""
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if self.logprobs and token is not None:
            choice["logprobs"] = {"content": _logprob_entries([token]), "refusal": None}
        await self.write({"choices": [choice]})

    async def write(self, payload: dict[str, Any]) -> None:
        """Send one event: the chunk header with ``payload`` (an error event as it is)."""
        event = payload if "error" in payload else {**self.header, **payload}
        data = json.dumps(event, ensure_ascii=False)
        await self.response.write(f"data: {data}\n\n".encode())

    async def done(self) -> None:
        """Send ``data: [DONE]``."""
        await self.response.write(b"data: [DONE]\n\n")


def _finish_reason(reason: str) -> str:
    """OpenAI's finish reasons: ``stop`` or ``length`` (a cancelled answer stopped)."""
    return "length" if reason == "length" else "stop"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


#: The endpoint that a ``/v1`` sub-application belongs to (for its drain).
ENDPOINT = web.AppKey("openai_endpoint", OpenAIEndpoint)


def create_openai_app(
    model: LocalChatModel,
    model_name: str,
    *,
    default_max_tokens: int = 192,
    max_tokens: int = 512,
    access: ApiSettings | None = None,
) -> web.Application:
    """A sub-application serving ``model`` as ``model_name``; mount it at ``/v1``.

    Args:
        model: The model to serve (usually the local model).
        model_name: The id clients pass as ``model`` and ``GET /models`` lists.
        default_max_tokens: The answer length when the request sets none.
        max_tokens: The most a request may ask for.
        access: The ``llm.api`` settings (keys, rate limits); ``None`` serves everyone.
    """
    limits = Limits(default_max_tokens=default_max_tokens, max_tokens=max_tokens)
    if access is not None:
        limits = Limits(default_max_tokens, access.max_tokens, access.max_messages)
    return OpenAIEndpoint(model, model_name, limits=limits, access=access).app
