"""Fixtures for the cloud tests: started chains over the fake OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from llm.cloud import CloudChain
from llm.settings import CloudProviderSettings, CloudSettings

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MakeChain = Callable[..., Awaitable[CloudChain]]


@pytest.fixture
async def chains() -> AsyncIterator[MakeChain]:
    """Return a coroutine function that starts a chain of providers, stopped after the test.

    Keywords ``budget`` (monthly USD) and ``deadline`` (``deadline_s``) go to the
    chain's settings, the others to :class:`CloudChain`; its clock reads ``NOW``.
    """
    started: list[CloudChain] = []

    async def make(*providers: CloudProviderSettings, **kwargs: Any) -> CloudChain:
        values: dict[str, Any] = {"providers": list(providers)}
        values["monthly_budget_usd"] = kwargs.pop("budget", None)
        if "deadline" in kwargs:
            values["deadline_s"] = kwargs.pop("deadline")
        chain = CloudChain(CloudSettings(**values), now=lambda: NOW, **kwargs)
        await chain.start()
        started.append(chain)
        return chain

    yield make
    for chain in started:
        await chain.stop()
