"""A real ``helpline run`` starts although a stored message's turn fails every time.

Before the quarantine, recovery at startup ran the message, the turn raised,
and the server exited: every restart did the same (a crash loop). The
failing turn is real: the conversation waits in a flow that the bot, as
deployed now, no longer has.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import aiohttp
import pytest

from bot.storage.records import TurnRecord
from bot.storage.store import Store
from tests.bot.replicas import cluster
from tests.processes import free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(240)

#: A conversation left waiting in a flow that a later version of the bot dropped.
RETIRED = {
    "slots": {},
    "stack": [
        {
            "flow_id": "retired_flow",
            "step_id": "1_collect_order_id",
            "waiting": True,
            "interrupted": False,
            "called": False,
            "context": {},
        }
    ],
}


async def _stale_message(db_url: str) -> int:
    """Store a conversation in the retired flow and a message it has not answered yet."""
    async with Store(db_url) as store:
        await store.upgrade()
        conv = await store.conversation("rest", "alice", "alice")
        first, _ = await store.record_inbound(conv.id, "rest", "m-1", "/check_order_status", {})
        await store.commit_turn(
            TurnRecord(conversation_id=conv.id, inbound_id=first, state=RETIRED)
        )
        pending, _ = await store.record_inbound(conv.id, "rest", "m-2", "HL-10001", {})
        return pending


async def test_a_failing_stored_turn_is_set_aside_and_the_server_starts(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    inbound_id = await _stale_message(db_url)
    port = free_port()
    path = cluster.config(tmp_path, db_url, "", port, redis=None)
    with cluster.replica(path, port, tmp_path / "server.log"):
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            text = await resp.text()
    assert re.search(r"^helpline_turns_quarantined_total 1\.0$", text, re.MULTILINE)
    async with Store(db_url) as store:
        assert await store.inbound_status(inbound_id) == "failed"
        [apology] = await store.replies_to(inbound_id)
        assert apology.text.startswith("Sorry, something went wrong on my side.")
        assert apology.metadata["notice"] == "failed"
        assert await store.pending_inbound() == []
    log = (tmp_path / "server.log").read_text()
    assert f"Message {inbound_id} is set aside as failed after 3 failed turns" in log
    assert "HL-10001" not in log  # the customer's words stay out of the log
