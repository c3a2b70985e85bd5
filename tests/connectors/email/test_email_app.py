"""The email channel end to end: Dovecot in, the full app, aiosmtpd out."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import metrics
from bot.config import Config, load_config
from bot.runtime import NoNLU, Runtime
from bot.server import CHANNELS, RUNTIME, create_app
from tests.connectors.email.conftest import Dovecot, SmtpSink, email_section

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
CUSTOMER = "alice@example.com"


async def eventually(check: Callable[[], Any], limit_s: float = 30.0) -> Any:
    """Wait until ``check()`` is truthy (a deadline for hangs, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.05)


def mail(
    body: str,
    *,
    sender: str = f"Alice Example <{CUSTOMER}>",
    subject: str = "Order question",
    reply_to: EmailMessage | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Helpline Support <support@helpline.test>"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.com")
    if reply_to is not None:
        msg["In-Reply-To"] = str(reply_to["Message-ID"])
        refs = str(reply_to.get("References", "")).split()
        msg["References"] = " ".join([*refs, str(reply_to["Message-ID"])])
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return bytes(msg)


def write_config(tmp_path: Path, db_url: str, email_yaml: str) -> Config:
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
        "llm:\n  enabled: false\nlogging:\n  level: DEBUG\n  json: false\n"
        f"connectors:\n  email:\n{email_yaml}"
    )
    return load_config(tmp_path / "helpline.yml")


async def start_app(
    aiohttp_client: ClientFactory, tmp_path: Path, db_url: str, email_yaml: str
) -> TestClient[Any, Any]:
    config = await asyncio.to_thread(write_config, tmp_path, db_url, email_yaml)
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


async def append(dovecot: Dovecot, mailbox: str, raw: bytes) -> None:
    await asyncio.to_thread(dovecot.append, mailbox, raw)


async def flags(dovecot: Dovecot, mailbox: str) -> dict[str, set[str]]:
    return await asyncio.to_thread(dovecot.flags, mailbox)


def transcript_id(raw: bytes) -> str:
    return "<" + raw.split(b"Message-ID: <")[1].split(b">")[0].decode() + ">"


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.fixture
async def app_client(
    db_url: str,
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> TestClient[Any, Any]:
    return await start_app(
        aiohttp_client, tmp_path, db_url, email_section(dovecot, mailbox, smtp_sink)
    )


async def test_conversation_by_email(
    app_client: TestClient[Any, Any],
    no_blocking: None,
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
) -> None:
    client = app_client
    first = mail("/check_order")
    await append(dovecot, mailbox, first)
    [reply] = await eventually(lambda: smtp_sink.to(CUSTOMER))
    assert text_of(reply).startswith("What is your order number?")
    first_id = transcript_id(first)
    assert reply["In-Reply-To"] == first_id
    assert reply["References"] == first_id
    assert reply["Subject"] == "Re: Order question"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert str(reply["Message-ID"]).startswith("<hl.")
    seen = await flags(dovecot, mailbox)
    assert "\\Seen" in seen[first_id]

    # The customer answers our reply: the same conversation continues.
    answer = mail(
        "HL-12345\n\nOn Mon, Helpline Support <support@helpline.test> wrote:\n> What is your order number?\n",
        subject="Re: Order question",
        reply_to=reply,
    )
    await append(dovecot, mailbox, answer)
    replies = await eventually(lambda: len(smtp_sink.to(CUSTOMER)) == 2 and smtp_sink.to(CUSTOMER))
    second = replies[1]
    assert text_of(second).startswith("Shall I go ahead with HL-12345?")
    assert "Reply with one of: Yes, No" in text_of(second)
    answer_id = str(transcript_id(answer))
    assert second["In-Reply-To"] == answer_id
    assert second["References"].split() == [first_id, str(reply["Message-ID"]), answer_id]
    # A button falls back to "Reply with one of: Yes, No"; replying "Yes" presses it.
    yes = mail(
        "Yes!\n\nSent from my iPhone\n\n> On 3 Mar 2025, at 10:02, Helpline Support <support@helpline.test> wrote:\n>\n> Shall I go ahead?\n",
        subject="Re: Order question",
        reply_to=second,
    )
    await append(dovecot, mailbox, yes)
    replies = await eventually(lambda: len(smtp_sink.to(CUSTOMER)) >= 3 and smtp_sink.to(CUSTOMER))
    assert text_of(replies[2]).startswith("Order HL-12345 is shipped.")
    store = client.app[RUNTIME].store
    conv = await store.conversation("email", first_id, CUSTOMER)
    transcript = await store.transcript(conv.id)
    assert [m.direction for m in transcript][:6] == ["in", "out", "in", "out", "in", "out"]
    assert [m.direction for m in transcript].count("in") == 3
    assert transcript[2].text == "HL-12345"
    assert transcript[4].text == "/affirm"
    assert transcript[2].metadata["email"]["references"] == [first_id, str(reply["Message-ID"])]


def email_channel(client: TestClient[Any, Any]) -> Any:
    [channel] = [c for c in client.app[CHANNELS] if c.name == "email"]
    return channel


def ignored(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "helpline_inbound_ignored_total", {"channel": "email", "reason": reason}
    )
    return value or 0.0


def deliveries(outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "helpline_deliveries_total", {"channel": "email", "outcome": outcome}
    )
    return value or 0.0


async def test_seen_only_after_the_mail_is_stored(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors.email")
    db = tmp_path / "helpline.db"
    client = await start_app(
        aiohttp_client,
        tmp_path,
        f"sqlite+aiosqlite:///{db}",
        email_section(dovecot, mailbox, smtp_sink),
    )
    await eventually(email_channel(client).watcher.idling.is_set)
    # Another writer holds the database: the mail can be fetched but not stored.
    lock = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE")
    try:
        raw = mail("/check_order")
        await append(dovecot, mailbox, raw)
        await eventually(lambda: "Fetched mail UID" in caplog.text)
        assert "\\Seen" not in (await flags(dovecot, mailbox))[transcript_id(raw)]
        count = await asyncio.to_thread(
            lambda: lock.execute("SELECT count(*) FROM messages").fetchone()
        )
        assert count == (0,)
    finally:
        await asyncio.to_thread(lock.execute, "ROLLBACK")
        lock.close()
    await eventually(lambda: smtp_sink.to(CUSTOMER))
    assert "\\Seen" in (await flags(dovecot, mailbox))[transcript_id(raw)]
    assert len(smtp_sink.to(CUSTOMER)) == 1


async def test_machines_lists_ourselves_and_floods_get_no_reply(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    yaml = email_section(
        dovecot,
        mailbox,
        smtp_sink,
        idle="false",
        poll_interval_s="0.2",
        rate_limit="{burst: 2, per_hour: 1}",
    )
    await start_app(aiohttp_client, tmp_path, "sqlite+aiosqlite:///" + str(tmp_path / "h.db"), yaml)
    unanswered = {
        "auto_submitted": mail(
            "I am out of office.",
            sender="ooo@example.com",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        "precedence": mail("Newsletter", sender="news@example.com", headers={"Precedence": "bulk"}),
        "mailing_list": mail(
            "List post",
            sender="member@example.com",
            headers={"List-Id": "<support.lists.example.com>"},
        ),
        "system_sender": mail("Delivery failed", sender="MAILER-DAEMON@example.com"),
        "own_address": mail("Loop?", sender="Helpline Support <support@helpline.test>"),
        "unreadable": b"Subject: who am I?\r\nMessage-ID: <no-from@example.com>\r\n\r\nhi\r\n",
    }
    before = {reason: ignored(reason) for reason in [*unanswered, "rate_limited"]}
    for raw in unanswered.values():
        await append(dovecot, mailbox, raw)
    flood = [mail(f"/greet {i}", sender="bob@example.com") for i in range(3)]
    for raw in flood:
        await append(dovecot, mailbox, raw)
    last = mail("/check_order", sender="carol@example.com")
    await append(dovecot, mailbox, last)
    await eventually(lambda: smtp_sink.to("carol@example.com"))
    await eventually(lambda: len(smtp_sink.to("bob@example.com")) >= 2)
    seen = await flags(dovecot, mailbox)
    assert all("\\Seen" in f for f in seen.values())  # handled, even when not answered
    assert len(seen) == len(unanswered) + len(flood) + 1
    recipients = [str(m["To"]) for m in smtp_sink.handler.received]
    assert sorted(recipients) == ["bob@example.com", "bob@example.com", "carol@example.com"]
    for reason in unanswered:
        assert ignored(reason) == before[reason] + 1, reason
    assert ignored("rate_limited") == before["rate_limited"] + 1


async def test_a_temporary_smtp_failure_is_retried_and_delivered_once(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    smtp_sink.handler.failures.append("451 4.3.0 try later")
    retries = deliveries("retry")
    await start_app(
        aiohttp_client,
        tmp_path,
        "sqlite+aiosqlite:///" + str(tmp_path / "h.db"),
        email_section(dovecot, mailbox, smtp_sink),
    )
    await append(dovecot, mailbox, mail("/check_order"))
    await eventually(lambda: smtp_sink.to(CUSTOMER))
    assert smtp_sink.handler.refused == ["451 4.3.0 try later"]
    assert deliveries("retry") == retries + 1
    # Both attempts carried the same Message-ID; one was accepted.
    assert len(smtp_sink.handler.received) == 1


async def test_a_refused_recipient_is_not_retried(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    smtp_sink.handler.failures.append("550 5.1.1 no such user")
    failed = deliveries("failed")
    client = await start_app(
        aiohttp_client,
        tmp_path,
        "sqlite+aiosqlite:///" + str(tmp_path / "h.db"),
        email_section(dovecot, mailbox, smtp_sink),
    )
    await append(dovecot, mailbox, mail("/check_order"))
    await eventually(lambda: deliveries("failed") == failed + 1)
    assert smtp_sink.handler.received == []
    assert await client.app[RUNTIME].store.undelivered("email") == []  # given up, not pending


async def test_the_same_mail_twice_is_answered_once(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    raw = mail("/check_order")
    await append(dovecot, mailbox, raw)
    await append(dovecot, mailbox, raw)  # e.g. fetched again after a crash
    await append(dovecot, mailbox, mail("/greet", sender="dan@example.com"))
    await start_app(
        aiohttp_client,
        tmp_path,
        "sqlite+aiosqlite:///" + str(tmp_path / "h.db"),
        email_section(dovecot, mailbox, smtp_sink),
    )
    await eventually(lambda: smtp_sink.to("dan@example.com"))
    assert len(smtp_sink.to(CUSTOMER)) == 1


async def test_an_agent_reply_shows_the_agent_and_escapes_html(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    client = await start_app(
        aiohttp_client,
        tmp_path,
        "sqlite+aiosqlite:///" + str(tmp_path / "h.db"),
        email_section(dovecot, mailbox, smtp_sink),
    )
    raw = mail("/check_order", subject="Lamp")
    await append(dovecot, mailbox, raw)
    await eventually(lambda: smtp_sink.to(CUSTOMER))
    runtime = client.app[RUNTIME]
    conv = await runtime.store.conversation("email", transcript_id(raw), CUSTOMER)
    await runtime.dispatcher.push(
        conv.id,
        {"text": "Hi, Ana here.\nUse <b>HL-1</b> & co.", "metadata": {"agent": {"name": "Ana"}}},
    )
    replies = await eventually(lambda: len(smtp_sink.to(CUSTOMER)) == 2 and smtp_sink.to(CUSTOMER))
    agent = replies[1]
    assert agent["From"].addresses[0].display_name == "Ana"
    assert agent["From"].addresses[0].addr_spec == "support@helpline.test"
    assert agent["Auto-Submitted"] is None  # a person wrote it
    assert agent["In-Reply-To"] == transcript_id(raw)
    assert agent["Subject"] == "Re: Lamp"
    html = agent.get_body(preferencelist=("html",))
    assert html is not None
    content = html.get_content()
    assert "Use &lt;b&gt;HL-1&lt;/b&gt; &amp; co." in content
    assert "<b>" not in content
    assert text_of(agent).startswith("Hi, Ana here.\nUse <b>HL-1</b> & co.")
    assert replies[0]["From"].addresses[0].display_name == "Helpline Support"


async def test_reconnects_when_the_server_drops_the_session(
    dovecot: Dovecot,
    mailbox: str,
    smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    client = await start_app(
        aiohttp_client,
        tmp_path,
        "sqlite+aiosqlite:///" + str(tmp_path / "h.db"),
        email_section(dovecot, mailbox, smtp_sink),
    )
    watcher = email_channel(client).watcher
    await eventually(watcher.idling.is_set)
    assert watcher.sessions == 1
    await asyncio.to_thread(dovecot.kick)
    await eventually(lambda: watcher.sessions == 2 and watcher.idling.is_set())
    await append(dovecot, mailbox, mail("/check_order"))
    await eventually(lambda: smtp_sink.to(CUSTOMER))


async def test_starttls_and_smtp_auth(
    dovecot: Dovecot,
    mailbox: str,
    tls_smtp_sink: SmtpSink,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    ca = dovecot.ca_file
    yaml = email_section(dovecot, mailbox, tls_smtp_sink)
    yaml = yaml.replace(
        "ssl: false, starttls: false}", f"ssl: false, starttls: true, ca_file: '{ca}'}}"
    )
    yaml = yaml.replace(
        "starttls: false}",
        f"starttls: true, user: relay, password: relay-secret, ca_file: '{ca}'}}",
    )
    client = await start_app(
        aiohttp_client, tmp_path, "sqlite+aiosqlite:///" + str(tmp_path / "h.db"), yaml
    )
    await append(dovecot, mailbox, mail("/check_order"))
    [reply] = await eventually(lambda: tls_smtp_sink.to(CUSTOMER))
    assert text_of(reply).startswith("What is your order number?")
    assert email_channel(client).watcher.sessions == 1
    assert tls_smtp_sink.handler.logins == ["relay"]
    logins = [
        line
        for line in (dovecot.root / "dovecot.log").read_text().splitlines()
        if "Login: user=" in line
    ]
    assert any(", TLS," in line for line in logins)  # only this test logs in over TLS
