"""The cloud fallback: an ordered chain of OpenAI-compatible providers.

:class:`CloudChain` is a :class:`~llm.types.ChatModel`. For each call it

1. refuses with :class:`~bot.errors.BudgetExhausted`, before sending
   anything, when the month's recorded cost has reached the budget;
2. redacts PII from every message (:class:`~llm.pii.Redactor`), so no
   e-mail, phone, card number or order id leaves the machine;
3. tries the providers in order, skipping those without their API key and
   those whose circuit is open, each with its own timeout and retries, all
   within one deadline (``deadline_s``): a request's timeout is at most the
   time left, no backoff wait runs past it and no provider is tried after it;
4. restores the placeholders in the reply, prices the call from the
   provider's price table and records it in the usage ledger, with the
   conversation of the turn (the ``conversation_id`` argument, else
   :data:`~bot.dialogue.answer.TURN_CONVERSATION`).

When every provider failed, or the deadline passed, it raises
:class:`~bot.errors.ProviderUnavailable` (:class:`~bot.errors.RateLimited`
when they all refused for rate limits). While the chain is started,
``helpline_llm_circuit_state`` shows each provider's circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp

from bot import metrics
from bot.dialogue.answer import TURN_CONVERSATION
from bot.errors import BudgetExhausted, LLMError, ProviderUnavailable, RateLimited, StorageError
from bot.lifecycle import Service
from llm.cloud.backoff import CircuitBreaker
from llm.cloud.ledger import MemoryLedger, UsageLedger, cost_usd, month_of
from llm.cloud.provider import Provider
from llm.cloud.wire import Reply, Usage, build_request
from llm.pii import Mapping, Redactor, StreamRestorer
from llm.settings import PIISettings
from llm.types import ChatMessage, Completion, GenerationSettings, TokenInfo

if TYPE_CHECKING:
    from llm.settings import CloudSettings

_LOGGER = logging.getLogger(__name__)

# The breaker each provider name's circuit gauge reads, so that a chain that
# stops removes only the gauges it set.
_GAUGED: dict[str, CircuitBreaker] = {}


def estimate_tokens(text: str) -> int:
    """Estimate the tokens of ``text`` when a provider reports no usage (4 chars each)."""
    return (len(text) + 3) // 4


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """Estimate the prompt tokens of ``messages``, with 4 tokens of framing each."""
    return sum(estimate_tokens(m.content) + 4 for m in messages)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Collected:
    """What one streamed reply produced, for pricing it afterwards."""

    text: list[str] = field(default_factory=list)
    tokens: int = 0
    usage: Usage | None = None
    yielded: bool = False


class CloudChain(Service):
    """Answers with the first cloud provider that can, within the monthly budget.

    Args:
        settings: Providers in order, the monthly budget and the token cap.
        pii: What to redact; ``None`` means the defaults (redaction on).
        ledger: Where usage is recorded and the month's cost is read; the
            store in production, a :class:`MemoryLedger` by default.
        session: An HTTP session to use instead of one the chain opens.
        now: The clock that picks the budget month (UTC).
        stall_timeout_s: Longest silence inside a stream (default: each
            provider's ``timeout_s``).
    """

    name = "cloud"

    def __init__(
        self,
        settings: CloudSettings,
        *,
        pii: PIISettings | None = None,
        ledger: UsageLedger | None = None,
        session: aiohttp.ClientSession | None = None,
        now: Callable[[], datetime] = _utcnow,
        stall_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.redactor = Redactor(pii if pii is not None else PIISettings())
        self.ledger: UsageLedger = ledger if ledger is not None else MemoryLedger()
        self.providers = [Provider(p, stall_timeout_s=stall_timeout_s) for p in settings.providers]
        self._session = session
        self._owns_session = session is None
        self._now = now

    async def start(self) -> None:
        """Open the shared HTTP session and show the circuits' gauges; idempotent."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        for provider in self.providers:
            metrics.LLM_CIRCUIT_STATE.labels(provider.name).set_function(provider.breaker.level)
            _GAUGED[provider.name] = provider.breaker

    async def stop(self) -> None:
        """Close the HTTP session if the chain opened it and drop its gauges; idempotent."""
        for provider in self.providers:
            if _GAUGED.get(provider.name) is provider.breaker:
                del _GAUGED[provider.name]
                metrics.LLM_CIRCUIT_STATE.remove(provider.name)
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def budget_left(self) -> float | None:
        """Return the USD left this month, or ``None`` without a budget."""
        budget = self.settings.monthly_budget_usd
        if budget is None:
            return None
        return budget - await self.ledger.month_cost(month_of(self._now()))

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        conversation_id: int | None = None,
    ) -> Completion:
        """Answer with the first provider that can; PII never leaves the machine.

        Raises:
            BudgetExhausted: The month's budget is spent; nothing was sent.
            ProviderUnavailable: Every provider failed or has an open circuit,
                or the deadline passed.
        """
        deadline = self._deadline()
        session = await self._prepare()
        redacted, mapping = self.redactor.redact_messages(messages)
        errors: list[ProviderUnavailable] = []
        for provider in self._candidates():
            if self._past(deadline, provider, errors):
                break
            body = build_request(provider.model, redacted, settings, max_tokens=self._cap(settings))
            began = time.perf_counter()
            try:
                reply = await provider.complete(session, body, deadline=deadline)
            except ProviderUnavailable as exc:
                self._failed(provider, exc, errors)
                continue
            completion = self._completion(provider, reply, redacted, mapping, began)
            await self._record(completion, conversation_id)
            return completion
        raise _all_failed(errors) from (errors[-1] if errors else None)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        conversation_id: int | None = None,
    ) -> AsyncGenerator[TokenInfo, None]:
        """Stream the answer of the first provider that starts one.

        A provider that fails before anything was yielded is replaced by the
        next one; once text was yielded, a stall, a cut or the deadline ends
        the stream with ProviderUnavailable. Each piece is restored text; its
        ``logprob`` is the sum over the provider tokens it covers.

        Raises:
            BudgetExhausted: The month's budget is spent; nothing was sent.
            ProviderUnavailable: No provider could stream the answer in time.
        """
        deadline = self._deadline()
        session = await self._prepare()
        redacted, mapping = self.redactor.redact_messages(messages)
        errors: list[ProviderUnavailable] = []
        for provider in self._candidates():
            if self._past(deadline, provider, errors):
                break
            body = build_request(
                provider.model, redacted, settings, max_tokens=self._cap(settings), stream=True
            )
            collected = _Collected()
            try:
                pieces = self._stream_one(provider, session, body, mapping, collected, deadline)
                async with contextlib.aclosing(pieces):
                    async for piece in pieces:
                        yield piece
            except ProviderUnavailable as exc:
                if collected.yielded:
                    raise
                self._failed(provider, exc, errors)
                continue
            await self._record_stream(provider, redacted, collected, conversation_id)
            return
        raise _all_failed(errors) from (errors[-1] if errors else None)

    async def _stream_one(
        self,
        provider: Provider,
        session: aiohttp.ClientSession,
        body: dict[str, object],
        mapping: Mapping,
        collected: _Collected,
        deadline: float,
    ) -> AsyncGenerator[TokenInfo, None]:
        """Yield one provider's restored stream, collecting its text and usage."""
        restorer = StreamRestorer(mapping)
        pending = 0.0
        deltas = provider.stream(session, body, deadline=deadline)
        async with contextlib.aclosing(deltas):
            async for delta in deltas:
                collected.usage = delta.usage or collected.usage
                collected.tokens += len(delta.tokens)
                pending += sum(t.logprob for t in delta.tokens)
                piece = restorer.feed(delta.text)
                if piece:
                    collected.text.append(piece)
                    collected.yielded = True
                    yield TokenInfo(text=piece, logprob=pending)
                    pending = 0.0
        tail = restorer.flush()
        if tail:
            collected.text.append(tail)
            collected.yielded = True
            yield TokenInfo(text=tail, logprob=pending)

    def _completion(
        self,
        provider: Provider,
        reply: Reply,
        prompt: Sequence[ChatMessage],
        mapping: Mapping,
        began: float,
    ) -> Completion:
        """Turn a provider's reply into a restored, priced Completion."""
        usage = reply.usage or Usage(estimate_prompt_tokens(prompt), estimate_tokens(reply.text))
        return Completion(
            text=self.redactor.restore(reply.text, mapping),
            tokens=reply.tokens,
            finish_reason=reply.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            model=reply.model or provider.model,
            provider=provider.name,
            cost_usd=self._cost(provider, usage),
            latency_ms=(time.perf_counter() - began) * 1000.0,
        )

    async def _record_stream(
        self,
        provider: Provider,
        prompt: Sequence[ChatMessage],
        collected: _Collected,
        conversation_id: int | None,
    ) -> None:
        """Price and record a finished stream, estimating what the provider did not report."""
        text = "".join(collected.text)
        usage = collected.usage or Usage(
            estimate_prompt_tokens(prompt), collected.tokens or estimate_tokens(text)
        )
        completion = Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            model=provider.model,
            provider=provider.name,
            cost_usd=self._cost(provider, usage),
        )
        await self._record(completion, conversation_id)

    async def _prepare(self) -> aiohttp.ClientSession:
        """Check the chain is started and the budget not spent; return the session."""
        if self._session is None:
            raise LLMError("the cloud chain is not started")
        left = await self.budget_left()
        if left is not None and left <= 0:
            raise BudgetExhausted(
                f"the monthly cloud budget of {self.settings.monthly_budget_usd:g} USD is spent"
            )
        return self._session

    def _deadline(self) -> float:
        """Return when this call must end, on the event loop's clock."""
        return asyncio.get_running_loop().time() + self.settings.deadline_s

    def _past(self, deadline: float, provider: Provider, errors: list[ProviderUnavailable]) -> bool:
        """Return whether ``deadline`` has passed, noting why ``provider`` was not tried."""
        if asyncio.get_running_loop().time() < deadline:
            return False
        errors.append(
            ProviderUnavailable(
                f"the cloud deadline of {self.settings.deadline_s:g} s passed"
                f" before {provider.name} was tried"
            )
        )
        return True

    def _candidates(self) -> list[Provider]:
        return [p for p in self.providers if p.available]

    def _cap(self, settings: GenerationSettings) -> int:
        return min(settings.max_new_tokens, self.settings.max_new_tokens)

    @staticmethod
    def _cost(provider: Provider, usage: Usage) -> float:
        return cost_usd(
            usage.prompt_tokens,
            usage.completion_tokens,
            provider.settings.price_in_per_m,
            provider.settings.price_out_per_m,
        )

    @staticmethod
    def _failed(
        provider: Provider, exc: ProviderUnavailable, errors: list[ProviderUnavailable]
    ) -> None:
        _LOGGER.warning("Cloud provider %s failed; trying the next one: %s", provider.name, exc)
        errors.append(exc)

    async def _record(self, completion: Completion, conversation_id: int | None) -> None:
        """Record the call in the ledger; a ledger outage only logs (the answer is paid).

        The row's conversation is ``conversation_id``, else the turn's
        :data:`~bot.dialogue.answer.TURN_CONVERSATION`.
        """
        if conversation_id is None:
            conversation_id = TURN_CONVERSATION.get()
        usage = {
            "month": month_of(self._now()),
            "provider": completion.provider,
            "model": completion.model,
            "tokens_in": completion.prompt_tokens,
            "tokens_out": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "conversation_id": conversation_id,
        }
        try:
            await self.ledger.add_usage(usage)
        except StorageError as exc:
            _LOGGER.warning("Cloud usage could not be recorded: %s", exc)


def _all_failed(errors: list[ProviderUnavailable]) -> ProviderUnavailable:
    """Return the error for a call that no provider could answer."""
    if not errors:
        return ProviderUnavailable("no cloud provider is configured and available")
    summary = "; ".join(str(e) for e in errors)
    if all(isinstance(e, RateLimited) for e in errors):
        waits = [e.retry_after for e in errors if isinstance(e, RateLimited) and e.retry_after]
        return RateLimited(
            f"every cloud provider is rate limited: {summary}", min(waits, default=None)
        )
    return ProviderUnavailable(f"every cloud provider failed: {summary}")
