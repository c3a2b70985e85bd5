"""A huge mail is parsed off the event loop, and one over ``max_mail_bytes`` is not parsed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.server import RUNTIME
from tests.connectors.email.conftest import Dovecot, SmtpSink, email_section
from tests.connectors.email.test_email_app import (
    ClientFactory,
    email_channel,
    ignored,
    start_app,
)

LINE = "My order arrived damaged and I would like to know what happens next, please. "


MakeApp = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_app(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
) -> MakeApp:
    """Start the app with the email channel (plus ``extra`` email settings)."""

    async def make(**extra: Any) -> TestClient[Any, Any]:
        section = email_section(dovecot, mailbox, smtp_sink, **extra)
        return await start_app(aiohttp_client, tmp_path, db_url, section)

    return make


def huge_mail(lines: int) -> bytes:
    """A mail with a long plain body and an HTML alternative, a few MB in all."""
    msg = EmailMessage()
    msg["From"] = "Bea <bea@example.com>"
    msg["To"] = "support@helpline.test"
    msg["Subject"] = "Long story"
    msg["Message-ID"] = f"<huge-{lines}@example.com>"
    msg.set_content("\n".join(f"{LINE}{i}" for i in range(lines)))
    html = "".join(f"<p>{LINE}{i}</p>" for i in range(lines))
    msg.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
    return bytes(msg)


async def test_a_huge_mail_does_not_freeze_the_loop(make_app: MakeApp) -> None:
    client = await make_app()
    raw = huge_mail(120_000)
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    receiving = asyncio.create_task(email_channel(client).receive(raw))
    started = last = loop.time()
    while not receiving.done():
        await asyncio.sleep(0.005)
        now = loop.time()
        gaps.append(now - last)
        last = now
    await receiving
    total = loop.time() - started
    # Relative, not a timing threshold: parsed on the loop, one gap is nearly
    # the whole receive; parsed in a thread, the loop keeps turning throughout.
    assert max(gaps) < total / 2, (max(gaps), total)
    store = client.app[RUNTIME].store
    conversation = await store.conversation("email", "<huge-120000@example.com>", "bea@example.com")
    assert len(await store.transcript(conversation.id)) >= 1


async def test_a_mail_over_the_size_limit_is_counted_and_not_stored(make_app: MakeApp) -> None:
    client = await make_app(max_mail_bytes=100_000)
    before = ignored("too_large")
    await email_channel(client).receive(huge_mail(2_000))
    assert ignored("too_large") - before == 1
    store = client.app[RUNTIME].store
    conversation = await store.conversation("email", "<huge-2000@example.com>", "bea@example.com")
    assert await store.transcript(conversation.id) == []


async def test_a_mail_the_store_refuses_is_skipped_not_retried_forever(make_app: MakeApp) -> None:
    client = await make_app()
    msg = EmailMessage()
    msg["From"] = "x" * 300 + "@example.com"  # longer than the sender column
    msg["To"] = "support@helpline.test"
    msg["Subject"] = "Hello"
    msg["Message-ID"] = "<long-sender@example.com>"
    msg.set_content("Where is my order?")
    before = ignored("invalid")
    await email_channel(client).receive(bytes(msg))  # returns: the mail may be marked seen
    assert ignored("invalid") - before == 1
