"""Fixtures for the LLM tests: a real OpenAI-compatible server on 127.0.0.1.

``fake_openai`` is one started :class:`~tests.llm.cloud.fake_openai.FakeOpenAI`;
``make_fake_openai`` starts more of them (for chains of several providers).
Script them with the actions of :mod:`tests.llm.cloud.fake_openai`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.nlu.encoder import Encoder, prepare_encoder
from bot.storage import Store
from llm.extractive import Extractor
from llm.retrieval import KnowledgeBase
from tests.llm.cloud.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
KB_DIR = ROOT / "flows" / "kb"
# Shared with `make setup`, so the export runs once per machine, not per test run.
ENCODER_CACHE = ROOT / "var" / "models" / "minilm-int8"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The prepared MiniLM encoder, once per session."""
    return Encoder(prepare_encoder(ENCODER_CACHE))


@pytest.fixture(scope="module")
async def default_kb(
    encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KnowledgeBase]:
    """The default bot's knowledge base (flows/kb), indexed in a SQLite store."""
    path = tmp_path_factory.mktemp("kb")
    async with Store(f"sqlite+aiosqlite:///{path / 'kb.db'}") as store:
        await store.upgrade()
        index = KnowledgeBase(store, encoder, min_score=0.35, top_k=3)
        await index.sync(KB_DIR)
        await index.load()
        yield index


@pytest.fixture(scope="module")
def extractor(default_kb: KnowledgeBase) -> Extractor:
    """Quotes from the default knowledge base."""
    return Extractor(default_kb.encoder, default_kb.sections())


@pytest.fixture
async def make_fake_openai() -> AsyncIterator[Callable[[], Awaitable[FakeOpenAI]]]:
    """Return a coroutine function that starts one more server, closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def make() -> FakeOpenAI:
            return await stack.enter_async_context(FakeOpenAI())

        yield make


@pytest.fixture
async def fake_openai(make_fake_openai: Callable[[], Awaitable[FakeOpenAI]]) -> FakeOpenAI:
    """A started OpenAI-compatible server; its ``base_url`` ends in ``/v1``."""
    return await make_fake_openai()
