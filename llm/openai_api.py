"""An OpenAI-compatible Chat Completions endpoint for any :class:`~llm.types.ChatModel`.

:func:`create_openai_app` returns a sub-application with the routes ``/chat/completions``
and ``/models``; the server mounts it with ``app.add_subapp("/v1", ...)``, so the official
clients work with ``base_url=".../v1"``. Streaming answers are server-sent events that
end with ``data: [DONE]``; a client that goes away closes the model's token stream, which
stops generation at the next token.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp import web

from bot.errors import LLMError, ModelBusy
from llm.types import ChatMessage, GenerationSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.types import ChatModel, TokenInfo

_LOGGER = logging.getLogger(__name__)

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
RETRY_AFTER_S = 2


@runtime_checkable
class _PromptCounter(Protocol):
    """Models that can count their prompt (the local model) get exact streamed usage."""

    def render_prompt(self, messages: Sequence[ChatMessage]) -> str: ...

    def count_tokens(self, text: str) -> int: ...


class InvalidRequest(Exception):
    """A request body that the endpoint refuses with 400.

    Attributes:
        param: The offending parameter, when one is to blame.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """A validated Chat Completions request."""

    messages: tuple[ChatMessage, ...]
    settings: GenerationSettings
    stream: bool
    logprobs: bool
    include_usage: bool


def error_response(
    status: int, message: str, *, kind: str, param: str | None = None, code: str | None = None
) -> web.Response:
    """An OpenAI-style error body."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def _content(raw: object, index: int) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in raw
    ):
        return "".join(p["text"] for p in raw)
    raise InvalidRequest("Message content must be a string or text parts.", f"messages[{index}]")


def _messages(raw: object) -> tuple[ChatMessage, ...]:
    """Validate ``messages``."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty array.", "messages")
    result = []
    for index, item in enumerate(raw):
        role = item.get("role") if isinstance(item, dict) else None
        if role not in _ROLES:
            raise InvalidRequest(f"Unsupported role {role!r}.", f"messages[{index}].role")
        result.append(ChatMessage(_ROLES[role], _content(item.get("content"), index)))
    return tuple(result)


def _number(body: dict[str, Any], key: str, low: float, high: float, default: float) -> float:
    """An optional number within ``[low, high]``."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be a number from {low:g} to {high:g}.", key)
    return float(value)


def _max_tokens(body: dict[str, Any], default: int) -> int:
    """``max_completion_tokens`` or the older ``max_tokens``."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{key}' must be a positive integer.", key)
        return value
    return default


def _stop(raw: object) -> tuple[str, ...]:
    """``stop``: absent, one string or up to four strings."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and len(raw) <= 4 and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    raise InvalidRequest("'stop' must be a string or an array of up to 4 strings.", "stop")


def parse_request(body: object, model_name: str, default_max_tokens: int) -> ChatRequest:
    """Validate a Chat Completions body.

    Raises:
        InvalidRequest: What is wrong, naming the parameter.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    if body.get("model") not in (None, model_name):
        raise InvalidRequest(f"The model {body.get('model')!r} does not exist.", "model")
    if body.get("n", 1) != 1:
        raise InvalidRequest("Only n=1 is supported.", "n")
    if body.get("top_logprobs"):
        raise InvalidRequest("'top_logprobs' is not supported.", "top_logprobs")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest("'seed' must be an integer.", "seed")
    options = body.get("stream_options") or {}
    settings = GenerationSettings(
        max_new_tokens=_max_tokens(body, default_max_tokens),
        temperature=_number(body, "temperature", 0.0, 2.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0, 1.0),
        stop=_stop(body.get("stop")),
        seed=seed,
    )
    return ChatRequest(
        messages=_messages(body.get("messages")),
        settings=settings,
        stream=bool(body.get("stream", False)),
        logprobs=bool(body.get("logprobs", False)),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
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


class _Handlers:
    """The endpoint's request handlers, bound to one model."""

    def __init__(self, model: ChatModel, model_name: str, default_max_tokens: int) -> None:
        self.model = model
        self.model_name = model_name
        self.default_max_tokens = default_max_tokens

    async def models(self, request: web.Request) -> web.Response:
        """``GET /models``: the one model served."""
        entry = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "helpline"}
        return web.json_response({"object": "list", "data": [entry]})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /chat/completions``: answer in one JSON body or as server-sent events."""
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "The body is not valid JSON.", kind="invalid_request_error")
        try:
            chat = parse_request(body, self.model_name, self.default_max_tokens)
        except InvalidRequest as exc:
            return error_response(400, str(exc), kind="invalid_request_error", param=exc.param)
        try:
            if chat.stream:
                return await self._stream(request, chat)
            return await self._complete(chat)
        except ModelBusy as exc:
            response = error_response(503, str(exc), kind="server_error", code="model_busy")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        except LLMError as exc:
            _LOGGER.warning("The local model failed: %s", exc)
            return error_response(500, str(exc), kind="server_error")

    def _header(self) -> dict[str, Any]:
        """The fields every response and chunk shares."""
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": self.model_name,
        }

    async def _complete(self, chat: ChatRequest) -> web.Response:
        """Answer in one JSON body."""
        completion = await self.model.complete(chat.messages, chat.settings)
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

    async def _stream(self, request: web.Request, chat: ChatRequest) -> web.StreamResponse:
        """Answer as server-sent events; a vanished client closes the model's stream."""
        tokens = self.model.stream(chat.messages, chat.settings)
        first = await anext(aiter(tokens), None)  # Errors (busy) come before the headers.
        stream = _SseStream(await _start_sse(request), self._header(), chat.logprobs)
        count = 0
        try:
            await stream.send({"role": "assistant", "content": ""})
            item = first
            while item is not None:
                count += item.token_id >= 0
                await stream.send({"content": item.text}, item)
                item = await anext(tokens, None)
            finish = "length" if count >= chat.settings.max_new_tokens else "stop"
            await stream.send({}, finish_reason=finish)
            if chat.include_usage:
                prompt = self._prompt_tokens(chat.messages)
                await stream.send_usage(_usage(prompt, count))
            await stream.response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, OSError) as exc:
            _LOGGER.info("The client left mid-stream; generation stops: %s", exc)
        finally:
            aclose = getattr(tokens, "aclose", None)
            if aclose is not None:
                await aclose()
        return stream.response

    def _prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """The prompt's token count, when the model can tell it."""
        if isinstance(self.model, _PromptCounter):
            return self.model.count_tokens(self.model.render_prompt(messages))
        return 0


async def _start_sse(request: web.Request) -> web.StreamResponse:
    """Send the headers of an event stream."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


class _SseStream:
    """Writes ``chat.completion.chunk`` events."""

    def __init__(
        self, response: web.StreamResponse, header: dict[str, Any], logprobs: bool
    ) -> None:
        self.response = response
        self.header = {**header, "object": "chat.completion.chunk"}
        self.logprobs = logprobs

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
        await self._write({**self.header, "choices": [choice]})

    async def send_usage(self, usage: dict[str, int]) -> None:
        """Send the final usage chunk (``stream_options.include_usage``)."""
        await self._write({**self.header, "choices": [], "usage": usage})

    async def _write(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False)
        await self.response.write(f"data: {data}\n\n".encode())


def _finish_reason(reason: str) -> str:
    """OpenAI's finish reasons: ``stop`` or ``length`` (a cancelled answer stopped)."""
    return "length" if reason == "length" else "stop"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def create_openai_app(
    model: ChatModel, model_name: str, *, default_max_tokens: int = 512
) -> web.Application:
    """A sub-application serving ``model`` as ``model_name``; mount it at ``/v1``.

    Args:
        model: The model to serve (usually the local model).
        model_name: The id clients pass as ``model`` and ``GET /models`` lists.
        default_max_tokens: The answer length when the request sets none.
    """
    app = web.Application()
    handlers = _Handlers(model, model_name, default_max_tokens)
    app.router.add_post("/chat/completions", handlers.chat_completions)
    app.router.add_get("/models", handlers.models)
    return app
