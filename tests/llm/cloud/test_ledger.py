"""Usage ledgers: in memory, and the real Store on SQLite behind the budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import BudgetExhausted
from bot.storage import Store
from llm.cloud import CloudChain, MemoryLedger, UsageLedger, cost_usd, month_of
from llm.settings import CloudSettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, ok
from tests.llm.cloud.support import provider_for

HELLO = [ChatMessage("user", "Hello?")]
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    await store.start()
    try:
        await store.upgrade()
        yield store
    finally:
        await store.stop()


def test_cost_and_month() -> None:
    assert cost_usd(2_000_000, 500_000, 0.15, 0.6) == pytest.approx(0.6)
    assert month_of(datetime(2025, 1, 31, 23, 30, tzinfo=UTC)) == "2025-01"


@pytest.mark.parametrize("kind", ["memory", "store"])
async def test_ledgers_sum_by_month_and_provider(kind: str, sqlite_store: Store) -> None:
    ledger: UsageLedger = MemoryLedger() if kind == "memory" else sqlite_store
    rows = [("2025-03", "a", 0.25), ("2025-03", "b", 0.5), ("2025-02", "a", 4.0)]
    for month, provider, cost in rows:
        await ledger.add_usage(
            {
                "month": month,
                "provider": provider,
                "model": "m",
                "tokens_in": 1,
                "tokens_out": 1,
                "cost_usd": cost,
            }
        )
    assert await ledger.month_cost("2025-03") == pytest.approx(0.75)
    assert await ledger.month_cost("2025-03", provider="a") == pytest.approx(0.25)
    assert await ledger.month_cost("2025-04") == 0.0


async def test_store_backed_budget(fake_openai: FakeOpenAI, sqlite_store: Store) -> None:
    fake_openai.script(ok("paid", usage=(1_000, 1_000)))
    spec = provider_for(fake_openai, price_in_per_m=100.0, price_out_per_m=400.0)
    settings = CloudSettings(providers=[spec], monthly_budget_usd=0.5)
    conversation = await sqlite_store.conversation("rest", "c1", "ann")
    async with CloudChain(settings, ledger=sqlite_store, now=lambda: NOW) as chain:
        completion = await chain.complete(
            HELLO, GenerationSettings(), conversation_id=conversation.id
        )
        assert completion.cost_usd == pytest.approx(0.5)
        assert await sqlite_store.month_cost("2025-03", "a") == pytest.approx(0.5)
        with pytest.raises(BudgetExhausted):
            await chain.complete(HELLO, GenerationSettings())
    assert len(fake_openai.chat_requests) == 1
