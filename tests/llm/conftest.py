"""Fixtures for the LLM tests: a real OpenAI-compatible server on 127.0.0.1.

``fake_openai`` is one started :class:`~tests.llm.cloud.fake_openai.FakeOpenAI`;
``make_fake_openai`` starts more of them (for chains of several providers).
Script them with the actions of :mod:`tests.llm.cloud.fake_openai`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.llm.cloud.fake_openai import FakeOpenAI


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
