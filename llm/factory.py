"""Builds the LLM side of a running bot from the ``llm`` settings.

The runtime calls :func:`build_stack` at startup: the knowledge base is
synced and loaded, the local model prepared (when missing) and loaded, the
cloud chain started, and all of it composed into an :class:`LLMAnswerer`.
With ``llm.local.url`` set, no model is loaded in process: a
:class:`~llm.pool.WorkerPool` over those workers stands in for it.
:class:`LocalModelProxy` lets the ``/v1`` endpoint be mounted before the
model is loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ProviderUnavailable
from llm.answerer import LLMAnswerer
from llm.cloud import CloudChain
from llm.extractive import Extractor
from llm.retrieval.index import KnowledgeBase

if TYPE_CHECKING:
    from bot.storage.store import Store
    from llm.api_listener import ApiListener
    from llm.local.runtime import LocalModel
    from llm.openai_api import OpenAIEndpoint
    from llm.pool import WorkerPool
    from llm.retrieval.index import Embedder
    from llm.settings import LLMSettings
    from llm.types import ChatMessage, Completion, GenerationSettings, TokenInfo

    LocalBackend = LocalModel | WorkerPool

_LOGGER = logging.getLogger(__name__)


class LocalModelProxy:
    """A :class:`llm.types.ChatModel` that forwards to the local model once loaded."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.model: LocalBackend | None = None

    def _loaded(self) -> LocalBackend:
        if self.model is None:
            raise ProviderUnavailable("the local model is not loaded yet")
        return self.model

    @property
    def context_length(self) -> int | None:
        """The local model's context length (``None`` for workers: they check it)."""
        return getattr(self.model, "context_length", None)

    async def measure_prompt(self, messages: Sequence[ChatMessage]) -> int | None:
        """The prompt's token count, when the model is in process."""
        measure = getattr(self._loaded(), "measure_prompt", None)
        return None if measure is None else int(await measure(messages))

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Completion:
        """Answer with the local model."""
        return await self._loaded().complete(messages, settings, on_token=on_token)

    async def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncIterator[TokenInfo]:
        """Stream from the local model."""
        async for token in self._loaded().stream(messages, settings):
            yield token


def openai_endpoint(proxy: LocalModelProxy, settings: LLMSettings) -> OpenAIEndpoint:
    """The ``/v1`` endpoint serving the local model through ``proxy`` (``llm.api``)."""
    from llm.openai_api import OpenAIEndpoint
    from llm.openai_request import Limits

    api = settings.api
    limits = Limits(settings.local.max_new_tokens, api.max_tokens, api.max_messages)
    return OpenAIEndpoint(proxy, proxy.name, limits=limits, access=api)


def api_listener(endpoint: OpenAIEndpoint, settings: LLMSettings) -> ApiListener:
    """The endpoint's own listener at ``llm.api.host``:``llm.api.port``."""
    from llm.api_listener import ApiListener

    return ApiListener(endpoint, settings.api.host, settings.api.port)


@dataclass
class LLMStack:
    """The started LLM parts; :meth:`close` stops them."""

    answerer: LLMAnswerer
    knowledge: KnowledgeBase
    local: LocalBackend | None = None
    cloud: CloudChain | None = None

    async def close(self) -> None:
        """Stop the cloud session and the local model's worker."""
        if self.cloud is not None:
            await self.cloud.stop()
        if self.local is not None:
            await self.local.stop()


async def load_local(settings: LLMSettings, models_dir: Path) -> LocalModel:
    """Find (or prepare, which takes a while) and load the configured local model."""
    from llm.local.prepare import find_prepared, prepare_model
    from llm.local.runtime import LocalModel

    local = settings.local
    source = Path(local.source) if local.source else None
    cache = models_dir / "llm"
    folder = await asyncio.to_thread(
        lambda: find_prepared(
            source, local.quant, cache, gguf_file=local.gguf_file, builder=local.builder
        )
    )
    if folder is None:
        _LOGGER.warning("The local model is not prepared yet; preparing it now.")
        folder = await asyncio.to_thread(
            lambda: prepare_model(
                source,
                quant=local.quant,
                cache_dir=cache,
                gguf_file=local.gguf_file,
                builder=local.builder,
            )
        )
    model = await asyncio.to_thread(
        LocalModel.load,
        folder,
        threads=local.threads,
        max_queue=local.max_queue,
        max_wait_s=local.max_wait_s,
    )
    await model.start()
    _LOGGER.info("Loaded the local model from %s.", folder)
    return model


async def start_pool(settings: LLMSettings, name: str = "local") -> WorkerPool:
    """Start a pool over the model workers of ``llm.local.url`` (no model is loaded here)."""
    from llm.pool import WorkerPool

    local = settings.local
    pool = WorkerPool(
        local.url or (),
        name=name,
        connect_timeout_s=local.worker_connect_timeout_s,
        timeout_s=local.worker_timeout_s,
        api_key=local.api_key,
    )
    await pool.start()
    _LOGGER.info("The local model runs in %d worker(s): %s.", len(pool.workers), local.url)
    return pool


async def build_stack(
    settings: LLMSettings,
    *,
    store: Store,
    encoder: Embedder,
    kb_dir: Path,
    models_dir: Path,
    proxy: LocalModelProxy | None = None,
    entity_patterns: Mapping[str, Sequence[str]] | None = None,
) -> LLMStack:
    """Sync the knowledge base, load the models and compose the answerer.

    ``entity_patterns`` are the bot's NLU regex entities; those that
    ``llm.pii.entities`` names (``order_id``) are redacted from cloud prompts.
    """
    retrieval = settings.retrieval
    knowledge = KnowledgeBase(
        store,
        encoder,
        chunk_words=retrieval.chunk_words,
        min_score=retrieval.min_score,
        top_k=retrieval.top_k,
    )
    if await asyncio.to_thread(kb_dir.is_dir):
        await knowledge.sync(kb_dir)
    await knowledge.load()
    extractor = Extractor(knowledge.encoder, knowledge.sections())
    stack = LLMStack(LLMAnswerer(settings, knowledge, None, extractor=extractor), knowledge)
    try:
        if settings.local.enabled:
            if settings.local.url:
                stack.local = await start_pool(settings)
            else:
                stack.local = await load_local(settings, models_dir)
            if proxy is not None:
                proxy.model = stack.local
        if settings.cloud.providers:
            pii = settings.pii.with_entities(entity_patterns or {})
            stack.cloud = CloudChain(settings.cloud, pii=pii, ledger=store)
            await stack.cloud.start()
    except BaseException:
        await stack.close()
        raise
    stack.answerer = LLMAnswerer(settings, knowledge, stack.local, stack.cloud, extractor=extractor)
    return stack
