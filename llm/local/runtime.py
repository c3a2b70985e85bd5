"""The local chat model: an ONNX Runtime decoder behind a worker thread and a request gate.

Nothing here imports torch, transformers or Optimum: serving needs only ONNX Runtime,
``tokenizers``, Jinja and numpy. One generation runs at a time per model, in a dedicated
worker thread, while the event loop stays free. Tokens reach the loop through
``call_soon_threadsafe`` into an ``asyncio.Queue``; closing the stream sets a flag that
the worker checks at every token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.errors import LLMError
from bot.lifecycle import Service
from llm.local.chat_template import PromptCodec, StopMatcher
from llm.local.engine import MANIFEST, DecoderSession, _read_json
from llm.local.gate import RequestGate
from llm.local.genai import GenaiDecoder, is_genai_folder
from llm.local.sampling import choose_token, log_softmax_at
from llm.types import Completion, GenerationSettings, RequestRefused, TokenInfo, tokens_only

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Sequence

    from llm.types import ChatMessage

_LOGGER = logging.getLogger(__name__)


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # Not on Linux.
        return max(1, os.cpu_count() or 1)


def _eos_ids(folder: Path, codec: PromptCodec) -> frozenset[int]:
    """End-of-sequence ids from the manifest, generation_config.json, config.json and tokenizer."""
    found: set[int] = set()
    for name, key in (
        (MANIFEST, "eos_token_ids"),
        ("generation_config.json", "eos_token_id"),
        ("config.json", "eos_token_id"),
    ):
        value = _read_json(folder / name).get(key)
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, list):
            found.update(int(v) for v in value)
    eos = codec.token_id(codec.special_tokens.get("eos_token"))
    if eos is not None:
        found.add(eos)
    return frozenset(found)


@dataclass
class _Run:
    """One generation as the worker sees it: where to send tokens and when to stop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[TokenInfo | Completion | BaseException]
    cancelled: threading.Event = field(default_factory=threading.Event)
    requested_at: float = field(default_factory=time.perf_counter)

    def send(self, item: TokenInfo | Completion | BaseException) -> None:
        """Hand an item to the event loop (from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # The loop is gone: nobody listens.
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class LocalModel(Service):
    """A local ONNX chat model that implements the :class:`~llm.types.ChatModel` protocol.

    Attributes:
        name: The model's name (its folder name unless given).
        threads: Intra-op threads of the ONNX Runtime session.
        eos_token_ids: Ids that end an answer.
        gate: The one-slot request queue (its ``depth`` and ``busy`` suit metrics).
    """

    def __init__(
        self,
        decoder: DecoderSession | GenaiDecoder,
        codec: PromptCodec,
        eos_token_ids: frozenset[int],
        *,
        name: str,
        threads: int,
        gate: RequestGate,
    ) -> None:
        self.name = name
        self.threads = threads
        self.eos_token_ids = eos_token_ids
        self._decoder = decoder
        self._codec = codec
        self.gate = gate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helpline-llm")
        self._current: _Run | None = None

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        threads: int | None = None,
        max_queue: int = 8,
        max_wait_s: float = 10.0,
        name: str | None = None,
    ) -> LocalModel:
        """Open a prepared model folder (blocking: call it off the event loop).

        Args:
            folder: Holds ``model.onnx``, ``config.json``, the tokenizer files and optionally
                ``generation_config.json`` and ``helpline-model.json``.
            threads: ONNX Runtime threads; by default the cores this process may use.
            max_queue: Requests that may wait for the model before ``ModelBusy``.
            max_wait_s: The longest a request waits for its turn before ``ModelBusy``.
            name: The model name; the folder name by default.

        Raises:
            LLMError: The folder is not a usable model.
        """
        folder = Path(folder)
        threads = threads or default_threads()
        started = time.perf_counter()
        codec = PromptCodec.from_folder(folder)
        decoder: DecoderSession | GenaiDecoder
        if is_genai_folder(folder):
            decoder = GenaiDecoder.load(folder, threads)
        else:
            decoder = DecoderSession.load(folder, threads)
        eos = _eos_ids(folder, codec)
        if not eos:
            raise LLMError(f"{folder} names no end-of-sequence token.")
        _LOGGER.info(
            "Loaded the local model %s (%d layers, %d threads) in %.1f s.",
            folder,
            decoder.structure.num_layers,
            threads,
            time.perf_counter() - started,
        )
        gate = RequestGate(max_queue, max_wait_s)
        return cls(decoder, codec, eos, name=name or folder.name, threads=threads, gate=gate)

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model now (for metrics)."""
        return self.gate.depth

    def render_prompt(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text for ``messages``, ending with the assistant header."""
        return self._codec.render(messages)

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes (special-token texts count as one)."""
        return len(self._codec.encode(text))

    @property
    def context_length(self) -> int | None:
        """The most tokens (prompt and answer) the model takes, when known."""
        return self._decoder.structure.max_positions

    async def measure_prompt(self, messages: Sequence[ChatMessage]) -> int:
        """How many tokens the prompt for ``messages`` takes (tokenized off the loop)."""
        return len(await asyncio.to_thread(self._prompt_ids, messages))

    def _prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self._codec.encode(self._codec.render(messages))

    async def start(self) -> None:
        """Nothing to start: the model is ready once loaded."""

    async def stop(self) -> None:
        """Cancel the running generation and stop the worker thread."""
        if self._current is not None:
            self._current.cancelled.set()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        """Answer the conversation in one piece, passing each token's text to ``on_token``."""
        async with contextlib.aclosing(self._events(messages, settings)) as events:
            async for item in events:
                if isinstance(item, Completion):
                    return item
                if on_token is not None and item.text:
                    on_token(item.text)
        raise LLMError("The local model ended without a result.")  # pragma: no cover

    async def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncGenerator[TokenInfo, None]:
        """Answer token by token; closing the iterator stops generation at the next token.

        Each item's ``text`` is the text released with that token: empty while it may be
        the start of a stop string or an incomplete character, so the texts concatenate
        to the answer.
        """
        async for item in tokens_only(self._events(messages, settings)):
            yield item

    async def _events(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncGenerator[TokenInfo | Completion, None]:
        """Queue for the model, run one generation in the worker and relay what it sends."""
        run = _Run(asyncio.get_running_loop(), asyncio.Queue())
        prompt_ids = await asyncio.to_thread(self._prompt_ids, messages)
        context = self.context_length
        if not prompt_ids or (context is not None and len(prompt_ids) >= context):
            raise RequestRefused(
                f"The prompt has {len(prompt_ids)} tokens; the model takes {context}."
            )
        await self.gate.acquire(background=settings.priority == "api")
        try:
            future = self._executor.submit(self._generate, run, prompt_ids, settings)
        except RuntimeError as exc:  # The executor was shut down.
            self.gate.release()
            raise LLMError("The local model is stopped.") from exc
        self._current = run
        future.add_done_callback(lambda _: self.gate.release())
        try:
            while True:
                item = await run.queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Completion):
                    return
        finally:
            run.cancelled.set()

    def _generate(self, run: _Run, prompt_ids: list[int], settings: GenerationSettings) -> None:
        """Worker thread: generate, sending each token and then the completion."""
        try:
            run.send(_Generation(self, run, prompt_ids, settings).run())
        except Exception as exc:  # Any failure reaches the caller as an LLMError.
            _LOGGER.exception("Local generation failed.")
            error = (
                exc if isinstance(exc, LLMError) else LLMError(f"Local generation failed: {exc}")
            )
            run.send(error)
        finally:
            if self._current is run:
                self._current = None


class _Generation:
    """The per-token bookkeeping of one generation (runs in the worker thread)."""

    def __init__(
        self, model: LocalModel, run: _Run, prompt_ids: list[int], settings: GenerationSettings
    ) -> None:
        self.model = model
        self.run_ = run
        self.prompt_ids = prompt_ids
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)
        self.decoder = model._codec.decoder()
        self.stops = StopMatcher(settings.stop)
        self.tokens: list[TokenInfo] = []
        self.generated = 0
        self.finish_reason = "length"
        self.started = run.requested_at
        context = model._decoder.structure.max_positions or (1 << 30)
        self.limit = min(settings.max_new_tokens, context - len(prompt_ids))
        self.first_token_at: float | None = None

    def run(self) -> Completion:
        """Run the decode loop and build the completion."""
        if self.limit > 0:
            self.model._decoder.generate(self.prompt_ids, self.limit, self.step)
        self._finish_text()
        now = time.perf_counter()
        first = self.first_token_at if self.first_token_at is not None else now
        _LOGGER.debug(
            "Generated %d tokens in %.0f ms (TTFT %.0f ms), finish reason %s.",
            self.generated,
            (now - self.started) * 1000.0,
            (first - self.started) * 1000.0,
            self.finish_reason,
        )
        return Completion(
            text="".join(token.text for token in self.tokens),
            tokens=tuple(self.tokens),
            finish_reason=self.finish_reason,
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=self.generated,
            model=self.model.name,
            provider="local",
            latency_ms=(now - self.started) * 1000.0,
            ttft_ms=(first - self.started) * 1000.0,
        )

    def step(self, logits: np.ndarray) -> int | None:
        """Choose the next token from ``logits``; ``None`` ends the generation."""
        if self.run_.cancelled.is_set():
            self.finish_reason = "cancelled"
            return None
        settings = self.settings
        token = choose_token(logits, settings.temperature, settings.top_p, self.rng)
        self.generated += 1
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if token in self.model.eos_token_ids:
            self.finish_reason = "stop"
            return None
        text = self.stops.feed(self.decoder.push(token))
        self._emit(TokenInfo(text=text, logprob=log_softmax_at(logits, token), token_id=token))
        if self.stops.stopped:
            self.finish_reason = "stop"
            return None
        return token if self.generated < self.limit else None

    def _emit(self, token: TokenInfo) -> None:
        """Record a token and send it to the event loop."""
        self.tokens.append(token)
        self.run_.send(token)

    def _finish_text(self) -> None:
        """Release held-back text (a stop-string prefix or a partial character) at the end.

        The stream gets it as one more item with ``token_id`` -1; the completion adds it
        to the last token, so its tokens stay the generated ones.
        """
        tail = self.stops.feed(self.decoder.flush()) + self.stops.flush()
        if not tail:
            return
        self.run_.send(TokenInfo(text=tail, logprob=0.0, token_id=-1))
        if self.tokens:
            last = self.tokens[-1]
            self.tokens[-1] = TokenInfo(last.text + tail, last.logprob, last.token_id)
        else:
            self.tokens.append(TokenInfo(text=tail, logprob=0.0, token_id=-1))
