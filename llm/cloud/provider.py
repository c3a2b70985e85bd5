"""One OpenAI-compatible provider: HTTP calls, retries, and its circuit breaker.

This module is the one boundary where aiohttp, timeout and JSON errors become
:class:`~bot.errors.ProviderUnavailable` or :class:`~bot.errors.RateLimited`
(see :meth:`Provider._boundary`).

What is retried, with exponential backoff and full jitter:
- timeouts, connection errors, stalled streams and 5xx replies;
- 429 and 503 replies, waiting what ``Retry-After`` asks when it is given.
  A ``Retry-After`` longer than ``backoff_max_s`` ends the attempts on this
  provider at once, so the chain can move on instead of waiting.

Not retried (the provider failed for this call): other 4xx replies, malformed
JSON and replies without choices. Each failed call (after its retries) counts
once for the circuit breaker.

A call may carry a deadline (a time of the event loop's clock): no attempt
lasts past it, and no retry is begun that would wait past it. Each failed
attempt counts in ``helpline_llm_provider_errors_total`` by its
:data:`ErrorKind`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, get_args

import aiohttp

from bot import metrics
from bot.errors import ProviderUnavailable, RateLimited
from llm.cloud.backoff import CircuitBreaker, full_jitter, parse_retry_after
from llm.cloud.wire import Delta, MalformedReply, Reply, SSEDecoder, parse_chunk, parse_reply

if TYPE_CHECKING:
    from llm.settings import CloudProviderSettings

_LOGGER = logging.getLogger(__name__)

#: Why one attempt at a provider failed, the ``kind`` label of the error metric.
ErrorKind = Literal["timeout", "connection", "http_429", "http_5xx", "http_4xx", "malformed"]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)


class CircuitOpen(ProviderUnavailable):
    """The provider's circuit is open: it was not called."""


class _Transient(ProviderUnavailable):
    """A failure worth retrying: timeout, connection error, stall or 5xx."""


class Provider:
    """Calls one OpenAI-compatible Chat Completions endpoint.

    The HTTP session is handed in per call, so every provider of a chain
    shares the chain's one :class:`aiohttp.ClientSession`.

    Args:
        settings: The provider's section of the config.
        stall_timeout_s: Longest silence between two chunks of a stream (and
            before the first one); defaults to ``settings.timeout_s``.
        rand: Source of jitter in ``[0, 1)``.
    """

    def __init__(
        self,
        settings: CloudProviderSettings,
        *,
        stall_timeout_s: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.model = settings.model
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.stall_timeout_s = stall_timeout_s or settings.timeout_s
        self.breaker = CircuitBreaker(
            settings.name, settings.circuit_failures, settings.circuit_reset_s
        )
        self._rand = rand
        self._api_key: str | None = None
        self.available = True
        if settings.api_key_env is not None:
            self._api_key = os.environ.get(settings.api_key_env) or None
            if self._api_key is None:
                self.available = False
                _LOGGER.warning(
                    "Cloud provider %s is skipped: the environment variable %s is not set.",
                    self.name,
                    settings.api_key_env,
                )

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def complete(
        self,
        session: aiohttp.ClientSession,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
    ) -> Reply:
        """Send a non-streamed request, with retries, under the circuit breaker.

        Args:
            session: The chain's HTTP session.
            body: The Chat Completions request.
            deadline: When the call must end, on the event loop's clock.

        Raises:
            CircuitOpen: The circuit is open; nothing was sent.
            RateLimited: The last attempt was refused for rate limits.
            ProviderUnavailable: Every attempt failed.
        """
        self._acquire()
        attempt = 0
        try:
            while True:
                try:
                    reply = await self._complete_once(session, body, deadline)
                except ProviderUnavailable as exc:
                    if not await self._may_retry(exc, attempt, deadline):
                        self.breaker.failure()
                        raise
                    attempt += 1
                else:
                    self.breaker.success()
                    return reply
        finally:
            self.breaker.release()

    async def stream(
        self,
        session: aiohttp.ClientSession,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
    ) -> AsyncGenerator[Delta, None]:
        """Send a streamed request and yield its chunks, under the circuit breaker.

        Failures before the first chunk are retried; a failure after it (a
        stall, a cut connection, the ``deadline``) ends the stream with
        ProviderUnavailable.

        Raises:
            CircuitOpen: The circuit is open; nothing was sent.
            ProviderUnavailable: The stream could not start, stalled or broke off.
        """
        self._acquire()
        attempt = 0
        try:
            while True:
                started = False
                try:
                    deltas = self._stream_once(session, body, deadline)
                    async with contextlib.aclosing(deltas):
                        async for delta in deltas:
                            started = True
                            yield delta
                except ProviderUnavailable as exc:
                    if started or not await self._may_retry(exc, attempt, deadline):
                        self.breaker.failure()
                        raise
                    attempt += 1
                else:
                    self.breaker.success()
                    return
        finally:
            self.breaker.release()

    def _acquire(self) -> None:
        if not self.breaker.acquire():
            raise CircuitOpen(f"{self.name}: circuit open")

    async def _may_retry(
        self, exc: ProviderUnavailable, attempt: int, deadline: float | None
    ) -> bool:
        """Wait before the next attempt and return True, or return False to give up.

        A wait that would end at or past ``deadline`` is not begun.
        """
        if attempt >= self.settings.max_retries:
            return False
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            if exc.retry_after > self.settings.backoff_max_s:
                return False
            delay = exc.retry_after
        elif isinstance(exc, _Transient | RateLimited):
            delay = full_jitter(
                attempt, self.settings.backoff_base_s, self.settings.backoff_max_s, self._rand
            )
        else:
            return False
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            _LOGGER.info("Not retrying %s: the call's deadline comes first.", self.name)
            return False
        _LOGGER.info("Retrying %s in %.3f s after: %s", self.name, delay, exc)
        await asyncio.sleep(delay)
        return True

    def _until(self, seconds: float, deadline: float | None) -> float:
        """Return when a wait of ``seconds`` from now must end: then, or at ``deadline``."""
        when = asyncio.get_running_loop().time() + seconds
        return when if deadline is None else min(when, deadline)

    async def _complete_once(
        self, session: aiohttp.ClientSession, body: dict[str, Any], deadline: float | None
    ) -> Reply:
        with self._boundary():
            async with asyncio.timeout_at(self._until(self.settings.timeout_s, deadline)):
                async with session.post(self.url, json=body, headers=self._headers(False)) as resp:
                    await self._check_status(resp)
                    data = await resp.json(content_type=None)
            return parse_reply(data)

    async def _stream_once(
        self, session: aiohttp.ClientSession, body: dict[str, Any], deadline: float | None
    ) -> AsyncGenerator[Delta, None]:
        with self._boundary():
            async with asyncio.timeout_at(self._until(self.settings.timeout_s, deadline)):
                resp = await session.post(self.url, json=body, headers=self._headers(True))
            async with resp:
                await self._check_status(resp)
                events = self._read_events(resp, deadline)
                async with contextlib.aclosing(events):
                    async for delta in events:
                        yield delta

    async def _read_events(
        self, resp: aiohttp.ClientResponse, deadline: float | None
    ) -> AsyncGenerator[Delta, None]:
        """Yield the chunks of an SSE response until ``[DONE]``.

        A stall, or the ``deadline``, raises TimeoutError.
        """
        decoder = SSEDecoder()
        finished = False
        while True:
            async with asyncio.timeout_at(self._until(self.stall_timeout_s, deadline)):
                line = await resp.content.readline()
            payload = decoder.line(line) if line else decoder.end()
            if payload == "[DONE]":
                return
            if payload is not None:
                delta = parse_chunk(payload)
                finished = finished or delta.finish_reason is not None
                yield delta
            if not line:
                if not finished:
                    raise MalformedReply("the stream ended before the reply was finished")
                return

    async def _check_status(self, resp: aiohttp.ClientResponse) -> None:
        """Raise the error a non-2xx reply stands for."""
        if resp.status < 300:
            return
        detail = (await resp.text())[:200]
        message = f"{self.name}: HTTP {resp.status}: {detail}"
        self._count(
            "http_429" if resp.status == 429 else "http_5xx" if resp.status >= 500 else "http_4xx"
        )
        if resp.status in (429, 503):
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if resp.status == 429 or retry_after is not None:
                raise RateLimited(message, retry_after)
        if resp.status >= 500 or resp.status in (408, 409):
            raise _Transient(message)
        raise ProviderUnavailable(message)

    @contextlib.contextmanager
    def _boundary(self) -> Iterator[None]:
        """Translate third-party errors of one attempt into ProviderUnavailable."""
        try:
            yield
        except TimeoutError as exc:
            self._count("timeout")
            raise _Transient(f"{self.name}: timed out, or the stream stalled") from exc
        except aiohttp.ClientError as exc:
            self._count("connection")
            raise _Transient(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            # JSONDecodeError and MalformedReply are ValueErrors.
            self._count("malformed")
            raise ProviderUnavailable(f"{self.name}: malformed reply: {exc}") from exc

    def _count(self, kind: ErrorKind) -> None:
        """Count one failed attempt in the provider error metric."""
        metrics.LLM_PROVIDER_ERRORS.labels(self.name, kind).inc()
