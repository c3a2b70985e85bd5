"""The types shared by local and cloud models, retrieval and the answerer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.errors import LLMError

#: Who waits for the model first: customers' turns go before ``/v1`` API calls.
Priority = Literal["customer", "api"]


class RequestRefused(LLMError):
    """The model cannot take this request as it stands (a prompt longer than its context).

    Retrying cannot help: the ``/v1`` endpoint answers it with 400, and a worker's
    400 reaches the pool's caller as this error.
    """


@dataclass(frozen=True)
class ChatMessage:
    """One chat message: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True)
class TokenInfo:
    """One generated token: its text and log-probability (0.0 when unknown)."""

    text: str
    logprob: float = 0.0
    token_id: int = -1


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate: length, sampling, stop strings and the queue priority."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    priority: Priority = "customer"


@dataclass(frozen=True)
class Completion:
    """A finished answer from a local or cloud model.

    Attributes:
        text: The answer text (stop strings removed).
        tokens: Per-token text and log-probabilities, when the model gives them.
        finish_reason: ``stop``, ``length`` or ``cancelled``.
        prompt_tokens: Tokens in the prompt.
        completion_tokens: Tokens generated.
        model: The model name.
        provider: ``local`` or the cloud provider's name.
        cost_usd: What the call cost.
        latency_ms: Wall time of the call.
        ttft_ms: Time to the first token, when streamed.
    """

    text: str
    tokens: tuple[TokenInfo, ...] = ()
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    provider: str = "local"
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float = 0.0


@dataclass(frozen=True)
class Passage:
    """A knowledge-base passage found for a question.

    ``id`` is a stable citation key such as ``returns-policy.md#2``.
    """

    id: str
    title: str
    text: str
    score: float = 0.0
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class ChatModel(Protocol):
    """Anything that completes chat messages: the local model or a cloud chain."""

    name: str

    async def complete(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> Completion:
        """Answer the conversation in one piece."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncIterator[TokenInfo]:
        """Answer token by token; closing the iterator cancels generation."""
        ...


class LocalChatModel(ChatModel, Protocol):
    """The local model: it can also pass each token's text on as it is generated."""

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        """Answer the conversation, calling ``on_token`` with each token's text."""
        ...


async def tokens_only(events: AsyncGenerator[object, None]) -> AsyncGenerator[TokenInfo, None]:
    """Relay the :class:`TokenInfo` items of ``events``, closing it when the caller stops.

    A backend's event stream interleaves tokens with its own bookkeeping (the
    final usage, the completion); a ``stream()`` exposes only the tokens, and
    closing it closes ``events``, which stops the generation or drops the request.
    """
    async with contextlib.aclosing(events) as items:
        async for item in items:
            if isinstance(item, TokenInfo):
                yield item
