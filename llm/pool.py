"""A pool of model workers behind OpenAI-compatible endpoints, used as the local model.

With ``llm.local.url`` set, the app does not load the model itself: :class:`WorkerPool`
sends each request to one of the workers (``helpline serve-model``, vLLM or TGI) and
implements the same interface as :class:`llm.local.runtime.LocalModel` (``complete``
with ``on_token``, ``stream``), with per-token log-probabilities asked for the OpenAI
way (``logprobs: true``) so that confidence scoring works as with the in-process model.

Routing is queue-aware. Each worker's load is the requests this pool has in flight on
it plus what the worker last reported of others' (``X-Helpline-Load``, sent by ``helpline
serve-model``; other servers report nothing). The least-loaded worker is tried first,
ties going to the one picked longest ago. A worker answering 429 or 503 (busy), failing
with 5xx or unreachable is skipped and the request goes on to the next one. An
unreachable worker is left out for a cool-down (1 s, doubling to 30 s) until it answers
again. When no worker takes the request, :class:`~bot.errors.ModelBusy` is raised at
once, as the in-process model's full queue does, so the answerer escalates.

Only the start of a request is rerouted: once a worker streams, a broken stream ends
the answer with :class:`~bot.errors.ProviderUnavailable`. A worker's 400 (a prompt too
long for its context) is :class:`~llm.types.RequestRefused`: no other worker would
take it either.

With ``api_key`` the pool sends ``Authorization: Bearer KEY`` (the workers'
``llm.api.keys``); requests of ``priority`` ``api`` (the app's own ``/v1`` calls) say
``X-Helpline-Priority: api``, so that a worker lets customers' turns go first.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from bot import metrics
from bot.errors import LLMError, ModelBusy, ProviderUnavailable
from llm.cloud.wire import SSEDecoder, build_request, parse_chunk
from llm.types import Completion, GenerationSettings, RequestRefused, TokenInfo, tokens_only

if TYPE_CHECKING:
    from llm.cloud.wire import Usage
    from llm.types import ChatMessage

_LOGGER = logging.getLogger(__name__)

LOAD_HEADER = "X-Helpline-Load"
PRIORITY_HEADER = "X-Helpline-Priority"
CAPACITY_HEADER = "X-Helpline-Capacity"
COOLDOWN_S = 1.0
COOLDOWN_MAX_S = 30.0
UNLISTED_MODEL = "default"


@dataclass
class Worker:
    """One worker as the pool sees it.

    Attributes:
        url: The base URL (ends in ``/v1`` unless configured otherwise).
        outstanding: Requests this pool has in flight on it.
        reported: Others' requests on it, from its last ``X-Helpline-Load`` header.
        down_until: Monotonic time until which it is left out (unreachable).
        failures: Consecutive connection failures (the cool-down doubles with each).
        model_id: The model id it serves, from ``GET /models`` (asked once).
        picked: When it was last picked, as a sequence number (breaks ties).
    """

    url: str
    outstanding: int = 0
    reported: int = 0
    down_until: float = 0.0
    failures: int = 0
    model_id: str | None = None
    picked: int = 0

    @property
    def load(self) -> int:
        """The requests it is estimated to hold now."""
        return self.outstanding + self.reported


@dataclass(frozen=True)
class _End:
    """The end of a streamed answer: why it finished and the usage the worker reported."""

    finish_reason: str
    usage: Usage | None


class _Skip(Exception):
    """This worker does not take the request now; try the next one."""

    def __init__(self, reason: str, *, busy: bool) -> None:
        super().__init__(reason)
        self.busy = busy


class WorkerPool:
    """Routes chat requests to model workers; a drop-in for the in-process local model.

    Args:
        urls: The workers' base URLs (``http://host:port/v1``).
        name: The model name reported in completions.
        connect_timeout_s: How long a connection to a worker may take.
        timeout_s: The longest wait for a worker's reply headers (it may queue the
            request first) and between two chunks of a stream.
        clock: Monotonic time, for the cool-downs.
        api_key: Sent to every worker as ``Authorization: Bearer``.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        name: str = "local",
        connect_timeout_s: float = 2.0,
        timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        api_key: str | None = None,
    ) -> None:
        if not urls:
            raise LLMError("A worker pool needs at least one worker URL.")
        self.name = name
        self.workers = [Worker(url.rstrip("/")) for url in urls]
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s
        )
        self._read_timeout_s = timeout_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._picks = 0
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def start(self) -> None:
        """Open the HTTP session."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        """Close the HTTP session (in-flight streams break off)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> WorkerPool:
        """Start the pool."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the pool."""
        await self.stop()

    def ranked(self) -> list[Worker]:
        """The workers to try, in order: reachable ones, least loaded first."""
        now = self._clock()
        up = [w for w in self.workers if w.down_until <= now]
        return sorted(up, key=lambda w: (w.load, w.picked))

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        """Answer in one piece (streamed from the worker), passing each text to ``on_token``."""
        started = time.perf_counter()
        first: float | None = None
        tokens: list[TokenInfo] = []
        end = _End("stop", None)
        async with contextlib.aclosing(self._events(messages, settings)) as events:
            async for item in events:
                if isinstance(item, _End):
                    end = item
                    continue
                first = time.perf_counter() if first is None else first
                if on_token is not None and item.text:
                    on_token(item.text)
                if item.token_id < 0 and tokens:  # Text without a token joins the last one.
                    last = tokens[-1]
                    tokens[-1] = TokenInfo(last.text + item.text, last.logprob, last.token_id)
                else:
                    tokens.append(item)
        now = time.perf_counter()
        usage = end.usage
        counted = sum(t.token_id >= 0 for t in tokens)
        return Completion(
            text="".join(t.text for t in tokens),
            tokens=tuple(tokens),
            finish_reason=end.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else counted,
            model=self.name,
            provider="local",
            latency_ms=(now - started) * 1000.0,
            ttft_ms=((first or now) - started) * 1000.0,
        )

    async def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncGenerator[TokenInfo, None]:
        """Answer token by token; closing the iterator drops the worker's connection."""
        async for item in tokens_only(self._events(messages, settings)):
            yield item

    async def _events(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncGenerator[TokenInfo | _End, None]:
        """Open a stream on the first worker that takes it and relay its chunks."""
        worker, resp = await self._open(messages, settings)
        finished = False
        try:
            async for item in self._read(worker, resp):
                finished = finished or isinstance(item, _End)
                yield item
            metrics.LLM_WORKER_REQUESTS.labels(worker.url, "ok").inc()
        finally:
            if finished:
                resp.release()
            else:
                resp.close()  # The worker sees the client go and stops generating.
            self._done(worker)

    async def _open(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> tuple[Worker, aiohttp.ClientResponse]:
        """Send the request to the workers in turn until one answers 200.

        Raises:
            ModelBusy: No worker took it (all busy, failing or unreachable).
            LLMError: A worker refused the request itself (4xx other than 429).
        """
        session = self._session
        if session is None:
            raise LLMError("The worker pool is not started.")
        reasons: list[str] = []
        for worker in self.ranked():
            self._picks += 1
            worker.picked = self._picks
            worker.outstanding += 1
            metrics.LLM_WORKER_OUTSTANDING.labels(worker.url).set(worker.outstanding)
            try:
                return worker, await self._try(session, worker, messages, settings)
            except _Skip as exc:
                self._done(worker)
                outcome = "busy" if exc.busy else "failed"
                metrics.LLM_WORKER_REQUESTS.labels(worker.url, outcome).inc()
                _LOGGER.info("Model worker %s skipped: %s", worker.url, exc)
                reasons.append(f"{worker.url}: {exc}")
            except BaseException:
                self._done(worker)
                raise
        down = len(self.workers) - len(reasons)
        if down:
            reasons.append(f"{down} unreachable worker(s) cooling down")
        raise ModelBusy(f"No model worker can take the request ({'; '.join(reasons)}).")

    async def _try(
        self,
        session: aiohttp.ClientSession,
        worker: Worker,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
    ) -> aiohttp.ClientResponse:
        """Post to one worker; return its 200 response or raise :class:`_Skip`."""
        try:
            model = await self._model_id(session, worker)
            body = build_request(
                model, messages, settings, max_tokens=settings.max_new_tokens, stream=True
            )
            headers = {"Accept": "text/event-stream", **self._auth}
            if settings.priority == "api":
                headers[PRIORITY_HEADER] = "api"
            resp = await session.post(
                f"{worker.url}/chat/completions",
                json=body,
                headers=headers,
                timeout=self._request_timeout(),
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._mark_down(worker)
            raise _Skip(f"unreachable ({type(exc).__name__}: {exc})", busy=False) from exc
        self._mark_up(worker, resp)
        if resp.status == 200:
            return resp
        detail = (await _text(resp))[:200]
        resp.release()
        if resp.status in (429, 503):
            raise _Skip(f"busy (HTTP {resp.status}): {detail}", busy=True)
        if resp.status >= 500:
            raise _Skip(f"failed (HTTP {resp.status}): {detail}", busy=False)
        if resp.status == 400:
            raise RequestRefused(
                f"Model worker {worker.url} refused the request: HTTP 400: {detail}"
            )
        raise LLMError(
            f"Model worker {worker.url} refused the request: HTTP {resp.status}: {detail}"
        )

    async def _model_id(self, session: aiohttp.ClientSession, worker: Worker) -> str:
        """The model id the worker serves (``GET /models``, asked once per connection)."""
        if worker.model_id is None:
            async with session.get(
                f"{worker.url}/models", headers=self._auth, timeout=self._request_timeout()
            ) as resp:
                data: Any = await resp.json(content_type=None) if resp.status == 200 else None
            entries = data.get("data") if isinstance(data, dict) else None
            first = entries[0] if isinstance(entries, list) and entries else None
            model = first.get("id") if isinstance(first, dict) else None
            if not isinstance(model, str):
                # Servers that ignore the model (TGI) may not list one; send a placeholder.
                _LOGGER.info("%s/models lists no model (HTTP %d).", worker.url, resp.status)
                model = UNLISTED_MODEL
            worker.model_id = model
        return worker.model_id

    def _request_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None,
            connect=self._timeout.connect,
            sock_connect=self._timeout.sock_connect,
            sock_read=self._read_timeout_s,
        )

    async def _read(
        self, worker: Worker, resp: aiohttp.ClientResponse
    ) -> AsyncGenerator[TokenInfo | _End, None]:
        """Yield a worker's SSE chunks as tokens, then one :class:`_End`."""
        decoder = SSEDecoder()
        finish: str | None = None
        usage: Usage | None = None
        try:
            while True:
                line = await resp.content.readline()
                payload = decoder.line(line) if line else decoder.end()
                if payload == "[DONE]" or (payload is None and not line):
                    break
                if payload is None:
                    continue
                delta = parse_chunk(payload)
                finish = delta.finish_reason or finish
                usage = delta.usage or usage
                for item in _chunk_tokens(delta.text, delta.tokens):
                    yield item
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            metrics.LLM_WORKER_REQUESTS.labels(worker.url, "failed").inc()
            raise ProviderUnavailable(
                f"Model worker {worker.url}: the stream broke off ({type(exc).__name__}: {exc})"
            ) from exc
        if finish is None:
            metrics.LLM_WORKER_REQUESTS.labels(worker.url, "failed").inc()
            raise ProviderUnavailable(f"Model worker {worker.url}: the stream ended unfinished")
        yield _End("length" if finish == "length" else "stop", usage)

    def _mark_down(self, worker: Worker) -> None:
        """Leave an unreachable worker out for a growing cool-down."""
        worker.failures += 1
        worker.model_id = None
        cooldown = min(COOLDOWN_MAX_S, COOLDOWN_S * 2 ** (worker.failures - 1))
        worker.down_until = self._clock() + cooldown

    def _mark_up(self, worker: Worker, resp: aiohttp.ClientResponse) -> None:
        """Note that the worker answered, and what it reported of its load."""
        worker.failures = 0
        worker.down_until = 0.0
        load = _int_header(resp, LOAD_HEADER)
        ours = worker.outstanding
        if resp.status in (429, 503):
            # Full: at least its capacity, and the refused request is not in its load.
            load = max(load or 0, _int_header(resp, CAPACITY_HEADER) or 1)
            ours -= 1
        if load is not None:
            # Its load counts our requests in flight there; keep the others'.
            worker.reported = max(0, load - ours)

    def _done(self, worker: Worker) -> None:
        worker.outstanding -= 1
        metrics.LLM_WORKER_OUTSTANDING.labels(worker.url).set(worker.outstanding)


def _chunk_tokens(text: str, tokens: Sequence[TokenInfo]) -> list[TokenInfo]:
    """One chunk as stream items: its tokens (the chunk's text on the first), or bare text."""
    if not tokens:
        return [TokenInfo(text=text, logprob=0.0, token_id=-1)] if text else []
    return [
        TokenInfo(text=text if index == 0 else "", logprob=token.logprob, token_id=0)
        for index, token in enumerate(tokens)
    ]


def _int_header(resp: aiohttp.ClientResponse, name: str) -> int | None:
    value = resp.headers.get(name)
    return int(value) if value is not None and value.isdigit() else None


async def _text(resp: aiohttp.ClientResponse) -> str:
    """The body of an error reply, or why it could not be read."""
    try:
        return await resp.text()
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
        return f"(unreadable body: {exc})"
