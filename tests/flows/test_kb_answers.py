"""The default bot answers a KB question over REST by quoting the KB, and stores the turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.runtime import Runtime
from bot.server import RUNTIME, create_app
from tests.flows.test_open_ended import ClientFactory

ROOT = Path(__file__).parents[2]


async def test_a_kb_question_gets_a_quote_stored_as_an_extractive_turn(
    aiohttp_client: ClientFactory, tmp_path: Path, db_url: str
) -> None:
    # The default llm settings: auto answer mode, the embedded model on.
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: {db_url}\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, Runtime(config)))
    resp = await client.post(
        "/webhooks/rest/webhook",
        json={"sender": "kb", "message": "how many characters does a password need?"},
    )
    assert resp.status == 200
    (reply,) = await resp.json()
    assert "at least 10 characters" in reply["text"]
    assert reply["text"].endswith("(Source: Password and account)")
    store = client.app[RUNTIME].store
    conv = await store.conversation("rest", "kb", "kb")
    (turn,) = await store.turns(conv.id)
    assert turn["route"] == "extractive"
    assert turn["citations"] == ["password-and-account.md#2"]


async def test_an_unsure_answer_with_nobody_to_take_it_says_both(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    # No agent account and no email connector (the defaults); nothing is sure enough.
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path}/kb.db\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        "llm:\n  local_threshold: 0.99\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config, Runtime(config)))
    resp = await client.post(
        "/webhooks/rest/webhook",
        json={"sender": "kb", "message": "how many characters does a password need?"},
    )
    (reply,) = await resp.json()
    assert reply["text"].startswith("I'm not sure enough to answer that from our help articles")
    assert "no one from our team is available right now" in reply["text"]
    # The next question is answered as usual, with no queue notice.
    resp = await client.post(
        "/webhooks/rest/webhook", json={"sender": "kb", "message": "where is my order?"}
    )
    assert [r["text"] for r in await resp.json()] == [
        "What's your order number? You'll find it in your order confirmation email; it looks"
        " like HL-12345."
    ]
