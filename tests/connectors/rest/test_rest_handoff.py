"""Handoffs over REST: no dead end when nobody can take the conversation.

The test bot uses the built-in handoff pattern. Agents are real accounts in
the store; the console's claim is the real statement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import RUNTIME, create_app
from bot.storage.console_store import ConsoleStore
from tests.connectors.rest.test_rest import ClientFactory

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
CONNECTING = "I'm connecting you with a person. Someone will be with you shortly."
NOBODY = "I'm sorry, no one from our team is available right now. Please try again later."
HOURS = "We are open 9-5."
STILL_QUEUED = "You're still in the queue for a person"
WITHDRAWN = "Okay, I've taken you out of the queue for a person. How can I help?"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def closed_all_week_but(day: int) -> str:
    """Business hours open only on ``day`` (0 = Monday), far from today's date."""
    return f"{DAYS[day]} 00:00-24:00"


async def start(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, console: str = ""
) -> TestClient[Any, Any]:
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
        f"connectors:\n  rest: {{}}\n  console:\n    enabled: true\n{console}"
        "llm:\n  enabled: false\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    return await start(aiohttp_client, db_url, tmp_path)


def console(client: TestClient[Any, Any]) -> ConsoleStore:
    return ConsoleStore(client.server.app[RUNTIME].store)


async def add_agent(client: TestClient[Any, Any], presence: str) -> dict[str, Any]:
    db = console(client)
    agent = await db.create_agent("ana@helpline.test", "Ana", "agent", "not-a-real-hash")
    updated = await db.update_agent(agent["id"], {"presence": presence})
    assert updated is not None
    return updated


async def says(client: TestClient[Any, Any], sender: str, text: str) -> list[str]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert resp.status == 200
    return [m["text"] for m in await resp.json()]


async def inbox_row(client: TestClient[Any, Any], sender: str) -> dict[str, Any] | None:
    db = console(client)
    cid = await db.conversation_id("rest", sender)
    assert cid is not None
    return await db.summary(cid)


async def test_no_agent_account_says_so_and_the_bot_goes_on(client: TestClient[Any, Any]) -> None:
    assert await says(client, "u1", "/human_handoff") == [NOBODY]
    # Nobody could ever open a queue (no account, no email connector): the
    # conversation stays with the bot, and its answers claim no queue.
    row = await inbox_row(client, "u1")
    assert row is None or row["mode"] == "bot"
    replies = await says(client, "u1", "/hours")
    assert replies[0] == HOURS
    assert not any(r.startswith(STILL_QUEUED) for r in replies)
    # Asking for a person again is answered too.
    assert await says(client, "u1", "/human_handoff") == [NOBODY]


async def test_asking_for_the_bot_leaves_the_queue(client: TestClient[Any, Any]) -> None:
    await add_agent(client, "away")
    await says(client, "u2", "/human_handoff")
    assert await says(client, "u2", "talk to the bot") == [WITHDRAWN]
    row = await inbox_row(client, "u2")
    assert row is not None
    assert (row["mode"], row["status"]) == ("bot", "withdrawn")
    replies = await says(client, "u2", "/hours")
    assert replies[0] == HOURS
    assert not any(r.startswith(STILL_QUEUED) for r in replies)


async def test_an_away_agent_is_nobody(client: TestClient[Any, Any]) -> None:
    await add_agent(client, "away")
    assert await says(client, "u3", "/human_handoff") == [NOBODY]


async def test_until_an_agent_claims_it_the_bot_still_answers(
    client: TestClient[Any, Any],
) -> None:
    await add_agent(client, "online")
    assert await says(client, "u6", "/human_handoff") == [CONNECTING]
    replies = await says(client, "u6", "/hours")
    assert replies[0] == HOURS
    assert replies[-1].startswith(STILL_QUEUED)
    assert await says(client, "u6", "/talk_to_bot") == [WITHDRAWN]


async def test_an_online_agent_gets_it_and_once_claimed_the_bot_is_silent(
    client: TestClient[Any, Any],
) -> None:
    agent = await add_agent(client, "online")
    assert await says(client, "u4", "/human_handoff") == [CONNECTING]
    cid = await console(client).conversation_id("rest", "u4")
    assert cid is not None
    assert (await console(client).claim(cid, agent["id"]))[0]
    assert await says(client, "u4", "/hours") == []
    assert await says(client, "u4", "talk to the bot") == []  # the agent has it


async def test_outside_business_hours_nobody_is_there(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> None:
    # Open only on the day three days from now: closed today in any time zone.
    day = (datetime.now(UTC) + timedelta(days=3)).weekday()
    hours = f"    business_hours: {{timezone: UTC, open: ['{closed_all_week_but(day)}']}}\n"
    client = await start(aiohttp_client, db_url, tmp_path, hours)
    await add_agent(client, "online")
    assert await says(client, "u5", "/human_handoff") == [NOBODY]
    row = await inbox_row(client, "u5")
    assert row is not None
    assert row["status"] == "open"
