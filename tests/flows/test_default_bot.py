"""The default store bot: its e2e suite, and its actions writing to the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import Config, ModelsSettings, StorageSettings
from bot.messages import InboundMessage
from bot.runtime import Runtime

ROOT = Path(__file__).parents[2]


def test_default_bot_e2e_suite_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "test", "e2e", "flows/tests"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    passed = int(summary.split()[0])
    assert passed >= 30
    assert summary == f"{passed} passed, 0 failed"


def config_for(db_url: str) -> Config:
    return Config(
        storage=StorageSettings(url=db_url),
        models=ModelsSettings(cache_dir=ROOT / "var" / "models"),
        llm={"enabled": False},
    ).model_copy(update={"bot": Config().bot.model_copy(update={"path": ROOT / "flows"})})


async def test_cancelling_an_order_changes_it_in_the_store(db_url: str) -> None:
    async with Runtime(config_for(db_url)) as runtime:
        assert (await runtime.store.get_order("HL-10004") or {})["status"] == "processing"
        conversation = ["I want to cancel my order", "HL-10004", "yes"]
        replies = []
        for index, text in enumerate(conversation):
            message = InboundMessage("test", "buyer", "buyer", text, f"m{index}")
            replies = await runtime.manager.handle(message)
        assert "cancel" in replies[0].text.lower()
        assert (await runtime.store.get_order("HL-10004") or {})["status"] == "cancelled"
