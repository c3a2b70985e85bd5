"""An agent's reply to a customer of another channel who left an email address.

Nobody is online when a REST customer asks for a person, so the bot offers an
email follow-up; the agent's console reply then goes out by SMTP (aiosmtpd)
to that address and is marked delivered once the mail server took it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.server import RUNTIME
from bot.storage.console_store import ConsoleStore
from tests.connectors.console.api_support import eventually as until
from tests.connectors.console.api_support import login, password_hash
from tests.connectors.email.conftest import Dovecot, SmtpSink, email_section
from tests.connectors.email.test_email_app import ClientFactory, eventually, start_app, text_of

ADDRESS = "dana@example.com"
ASK = "No one from our team is available right now, but your request is in their queue."


async def says(client: TestClient[Any, Any], text: str) -> list[str]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": "dana", "message": text})
    assert resp.status == 200
    return [m["text"] for m in await resp.json()]


async def test_the_agent_reply_goes_by_email_to_the_address_left(
    db_url: str,
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    section = email_section(dovecot, mailbox, smtp_sink)
    client = await start_app(aiohttp_client, tmp_path, db_url, section)
    runtime = client.server.app[RUNTIME]
    db = ConsoleStore(runtime.store)
    await db.create_agent("ana@helpline.test", "Ana", "agent", password_hash())  # away

    assert (await says(client, "/human_handoff"))[0].startswith(ASK)
    assert ADDRESS in (await says(client, ADDRESS))[0]
    cid = await db.conversation_id("rest", "dana")
    assert cid is not None
    summary = await db.summary(cid)
    assert summary is not None
    assert summary["followup_email"] == ADDRESS

    ana = await login(client, "ana@helpline.test")
    sent = await ana.post(f"/conversations/{cid}/reply", {"text": "Hello Dana, Ana here."})
    [answer] = await eventually(lambda: smtp_sink.to(ADDRESS))
    assert text_of(answer).startswith("Hello Dana, Ana here.")
    assert "Ana" in str(answer["From"])
    assert answer["Subject"] == "Your question to our support team"
    # Marked delivered once the mail server took it (the mark is group-committed).
    message_id = sent["message"]["id"]

    async def delivered() -> Any:
        stored = await runtime.store.message(message_id)
        return stored if stored.status == "delivered" else None

    stored = await until(delivered)
    assert stored.channel == "rest"  # the conversation stays where it was
