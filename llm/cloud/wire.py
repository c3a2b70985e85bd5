"""The OpenAI Chat Completions wire format: request bodies, replies and SSE chunks.

Pure functions without I/O. Parsers raise :class:`MalformedReply` (a
``ValueError``) for anything that is not a usable reply; the provider turns
that into :class:`~bot.errors.ProviderUnavailable` at its one error boundary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm.types import ChatMessage, GenerationSettings, TokenInfo


class MalformedReply(ValueError):
    """The provider answered 2xx with something that is not a chat completion."""


@dataclass(frozen=True)
class Usage:
    """Token counts a provider reported."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Reply:
    """A parsed non-streamed chat completion."""

    text: str
    tokens: tuple[TokenInfo, ...]
    finish_reason: str
    usage: Usage | None
    model: str


@dataclass(frozen=True)
class Delta:
    """One parsed SSE chunk of a streamed chat completion."""

    text: str
    tokens: tuple[TokenInfo, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None


def build_request(
    model: str,
    messages: Sequence[ChatMessage],
    settings: GenerationSettings,
    *,
    max_tokens: int,
    stream: bool = False,
) -> dict[str, Any]:
    """Return the JSON body of a ``POST /chat/completions`` request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "logprobs": True,
    }
    if settings.stop:
        body["stop"] = list(settings.stop)
    if settings.seed is not None:
        body["seed"] = settings.seed
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReply(f"{what} is {type(value).__name__}, not an object")
    return value


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def _tokens(choice: dict[str, Any]) -> tuple[TokenInfo, ...]:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return ()
    tokens = []
    for item in content:
        if isinstance(item, dict) and isinstance(item.get("token"), str):
            logprob = item.get("logprob")
            value = float(logprob) if isinstance(logprob, int | float) else 0.0
            tokens.append(TokenInfo(text=item["token"], logprob=value))
    return tuple(tokens)


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("the reply has no choices")
    return _object(choices[0], "choices[0]")


def parse_reply(data: Any) -> Reply:
    """Parse a non-streamed chat completion.

    Raises:
        MalformedReply: No choices, no message, or no text content.
    """
    data = _object(data, "the reply")
    choice = _first_choice(data)
    message = _object(choice.get("message"), "choices[0].message")
    content = message.get("content")
    if not isinstance(content, str):
        raise MalformedReply("choices[0].message.content is not text")
    return Reply(
        text=content,
        tokens=_tokens(choice),
        finish_reason=str(choice.get("finish_reason") or "stop"),
        usage=_usage(data.get("usage")),
        model=str(data.get("model") or ""),
    )


def parse_chunk(payload: str) -> Delta:
    """Parse the ``data:`` payload of one SSE event of a streamed completion.

    A chunk with no choices but with ``usage`` is the final usage report.

    Raises:
        MalformedReply: The payload is not JSON or not a completion chunk.
    """
    data = _object(json.loads(payload), "the chunk")
    usage = _usage(data.get("usage"))
    if not data.get("choices") and usage is not None:
        return Delta(text="", usage=usage)
    choice = _first_choice(data)
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return Delta(
        text=content if isinstance(content, str) else "",
        tokens=_tokens(choice),
        finish_reason=choice.get("finish_reason") or None,
        usage=usage,
    )


class SSEDecoder:
    """Splits a byte stream of server-sent events into ``data`` payloads."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def line(self, raw: bytes) -> str | None:
        """Feed one line; return an event's joined ``data`` when a blank line ends it."""
        text = raw.decode("utf-8").rstrip("\r\n")
        if not text:
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        if text.startswith(":"):
            return None
        field, _, value = text.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))
        return None

    def end(self) -> str | None:
        """Return an event left without its closing blank line, if any."""
        data, self._data = self._data, []
        return "\n".join(data) if data else None
