"""Validation of Chat Completions request bodies for the ``/v1`` endpoint.

:func:`parse_request` turns a decoded body (from :func:`bot.wirejson.loads`, which
already refused deep nesting, huge integers and lone surrogates) into a
:class:`ChatRequest`, or raises :class:`InvalidRequest` naming the parameter, which
the endpoint answers with 400 and an OpenAI-style error body. Types are checked
strictly, as OpenAI does: ``"stream": "false"`` is an error, not a truthy string.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from llm.types import ChatMessage, GenerationSettings, Priority

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_MAX_SEED = 2**63 - 1


class InvalidRequest(Exception):
    """A request body that the endpoint refuses with 400.

    Attributes:
        param: The offending parameter, when one is to blame.
        code: OpenAI's error code, when one applies (``context_length_exceeded``).
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Limits:
    """What a request may ask for.

    Attributes:
        default_max_tokens: The answer length when the request sets none.
        max_tokens: The most a request may set (more is a 400, as vLLM answers).
        max_messages: The most messages in one request.
    """

    default_max_tokens: int = 192
    max_tokens: int = 512
    max_messages: int = 2048


@dataclass(frozen=True)
class ChatRequest:
    """A validated Chat Completions request.

    Attributes:
        max_tokens_set: Whether the client chose the length (then it must fit the context).
    """

    messages: tuple[ChatMessage, ...]
    settings: GenerationSettings
    stream: bool
    logprobs: bool
    include_usage: bool
    max_tokens_set: bool = False

    def with_priority(self, priority: Priority) -> ChatRequest:
        """The same request, queued for the model with ``priority``."""
        return replace(self, settings=replace(self.settings, priority=priority))

    def with_max_tokens(self, max_tokens: int) -> ChatRequest:
        """The same request with another answer length."""
        return replace(self, settings=replace(self.settings, max_new_tokens=max_tokens))


def _short(value: object) -> str:
    """A value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _content(raw: object, index: int) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in raw
    ):
        return "".join(p["text"] for p in raw)
    raise InvalidRequest(
        "Message content must be a string or text parts.", f"messages[{index}].content"
    )


def _messages(raw: object, limit: int) -> tuple[ChatMessage, ...]:
    """Validate ``messages``."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty array.", "messages")
    if len(raw) > limit:
        raise InvalidRequest(
            f"'messages' has {len(raw)} items; at most {limit} are allowed.", "messages"
        )
    result = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest("Each message must be an object.", f"messages[{index}]")
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest(f"Unsupported role {_short(role)}.", f"messages[{index}].role")
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


def _flag(body: dict[str, Any], key: str) -> bool:
    """An optional boolean (``null`` or absent is ``False``); strings are refused."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be a boolean, not {_short(value)}.", key)
    return value


def _max_tokens(body: dict[str, Any], limits: Limits) -> int | None:
    """``max_completion_tokens`` or the older ``max_tokens``; ``None`` when neither is set."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{key}' must be a positive integer.", key)
        if value > limits.max_tokens:
            raise InvalidRequest(
                f"'{key}' is {value}; this server allows at most {limits.max_tokens}.", key
            )
        return value
    return None


def _stop(raw: object) -> tuple[str, ...]:
    """``stop``: absent, one string or up to four strings."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and len(raw) <= 4 and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    raise InvalidRequest("'stop' must be a string or an array of up to 4 strings.", "stop")


def _seed(raw: object) -> int | None:
    """``seed``: absent or an integer from 0 to 2**63 - 1."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= _MAX_SEED:
        raise InvalidRequest("'seed' must be an integer from 0 to 2**63 - 1.", "seed")
    return raw


def _include_usage(raw: object) -> bool:
    """``stream_options.include_usage``."""
    if raw is None:
        return False
    if not isinstance(raw, dict):
        raise InvalidRequest("'stream_options' must be an object.", "stream_options")
    return _flag(raw, "include_usage")


def _check_options(body: dict[str, Any], model_name: str) -> None:
    """The options that are only checked: ``model``, ``n`` and ``top_logprobs``."""
    model = body.get("model")
    if model is not None and model != model_name:
        raise InvalidRequest(
            f"The model {_short(model)} does not exist.", "model", "model_not_found"
        )
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise InvalidRequest("Only n=1 is supported.", "n")
    if body.get("top_logprobs"):
        raise InvalidRequest("'top_logprobs' is not supported.", "top_logprobs")


def parse_request(body: object, model_name: str, limits: Limits) -> ChatRequest:
    """Validate a Chat Completions body.

    Raises:
        InvalidRequest: What is wrong, naming the parameter.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    _check_options(body, model_name)
    max_tokens = _max_tokens(body, limits)
    settings = GenerationSettings(
        max_new_tokens=max_tokens or min(limits.default_max_tokens, limits.max_tokens),
        temperature=_number(body, "temperature", 0.0, 2.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0, 1.0),
        stop=_stop(body.get("stop")),
        seed=_seed(body.get("seed")),
        priority="api",
    )
    return ChatRequest(
        messages=_messages(body.get("messages"), limits.max_messages),
        settings=settings,
        stream=_flag(body, "stream"),
        logprobs=_flag(body, "logprobs"),
        include_usage=_include_usage(body.get("stream_options")),
        max_tokens_set=max_tokens is not None,
    )
