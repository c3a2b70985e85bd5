"""Parsing recorded mail and composing replies (no servers needed)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from bot.errors import ChannelError
from bot.messages import Button
from connectors.email.htmltext import html_to_text
from connectors.email.translate import (
    Reply,
    compose_reply,
    fit_id,
    inbound_metadata,
    parse_email,
    reply_subject,
    thread_references,
    to_inbound,
)
from tests.connectors.email.conftest import RESPONSES

LIMIT = 10 * 1024 * 1024


def parse(name: str, limit: int = LIMIT):  # type: ignore[no-untyped-def]
    return parse_email((RESPONSES / name).read_bytes(), limit)


def test_html_only_mail_becomes_text() -> None:
    mail = parse("html_only.eml")
    assert mail.html is True
    assert mail.subject == "Question about my réservation"
    assert mail.sender == "zoe@example.org"
    assert mail.sender_name == "Zoë Customer"
    assert mail.text == (
        "Hello team,\n\nMy booking HL-777 shows the wrong date & time.\nCould you fix it?\n\n"
        "- Arrival: 12 May\n- Departure: 15 May\n\n"
        "See my booking <https://example.org/booking/777>."
    )
    assert "alert" not in mail.full_text
    assert "color" not in mail.full_text


def test_multipart_alternative_prefers_the_text_part() -> None:
    mail = parse("alternative.eml")
    assert mail.html is False
    assert mail.text == "Where is my order HL-12345?\n\nAlice"
    assert mail.reply_to == "alice.private@example.net"
    assert mail.to == ("support@helpline.test",)
    assert mail.cc == ("bob@example.com",)
    assert mail.attachments == ()  # the HTML alternative is not an attachment


def test_attachments_are_metadata_with_a_size_limit() -> None:
    mail = parse("attachments.eml", limit=5000)
    assert mail.text == "The lamp arrived broken. The invoice and a photo are attached."
    meta = inbound_metadata(mail)["email"]["attachments"]
    assert meta == [
        {
            "filename": "invoice.pdf",
            "content_type": "application/pdf",
            "size": 609,
            "too_large": False,
        },
        {"filename": "photo.jpg", "content_type": "image/jpeg", "size": 10240, "too_large": True},
    ]
    assert not parse("attachments.eml").attachments[1].too_large


def test_metadata_keeps_what_threading_and_replies_need() -> None:
    mail = parse("auto_reply.eml")
    inbound = to_inbound(mail, "<root@example.org>", mail.text)
    assert inbound.channel == "email"
    assert inbound.conversation_id == "<root@example.org>"
    assert inbound.message_id == "<ooo-1@example.org>"
    assert inbound.sender == "carol@example.org"
    meta = inbound.metadata["email"]
    assert meta["from"] == "carol@example.org"
    assert meta["subject"] == "Automatic reply: Re: Your order"
    assert meta["message_id"] == "<ooo-1@example.org>"
    assert meta["in_reply_to"] == ["<hl.1.2.0123456789ab@helpline.test>"]
    assert meta["references"] == []
    assert meta["to"] == ["support@helpline.test"]


def test_without_message_id_the_raw_hash_is_the_id() -> None:
    raw = (RESPONSES / "no_message_id_latin1.eml").read_bytes()
    mail = parse_email(raw, LIMIT)
    assert mail.message_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert mail.text == "J'ai déjà payé la commande."
    assert mail.subject == "Re: Ma commande déjà payée"
    assert mail.sender_name == "Renée"


def test_a_mail_without_sender_is_refused() -> None:
    with pytest.raises(ChannelError, match="no From"):
        parse_email(b"Subject: hi\r\n\r\nbody\r\n", LIMIT)


def test_long_ids_are_hashed_to_fit_the_store() -> None:
    assert fit_id("<a@b>") == "<a@b>"
    long = "<" + "x" * 300 + "@example.com>"
    assert fit_id(long).startswith("sha256:")
    assert len(fit_id(long)) == 71


def test_html_to_text_keeps_structure_and_quotes() -> None:
    html = (
        "<div>Yes please<br></div><div><br></div>"
        '<div class="gmail_quote"><div>On Mon, A &lt;a@b&gt; wrote:<br></div>'
        "<blockquote>Shall I?<blockquote>older</blockquote></blockquote></div>"
        "<pre>code\n  indented</pre>"
    )
    assert html_to_text(html) == (
        "Yes please\n\nOn Mon, A <a@b> wrote:\n\n> Shall I?\n\n> > older\n\ncode\n  indented"
    )


def reply(**kw: object) -> Reply:
    base: dict[str, object] = {
        "from_name": "Helpline Support",
        "from_addr": "support@helpline.test",
        "to": "alice@example.com",
        "subject": "Re: Order",
        "message_id": "<hl.1.2.0123456789ab@helpline.test>",
        "in_reply_to": "<a2@example.com>",
        "references": ["<a1@example.com>", "<a2@example.com>"],
        "date": datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
    }
    base.update(kw)
    return Reply(**base)  # type: ignore[arg-type]


def roundtrip(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(bytes(msg), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_compose_reply_headers_alternatives_and_escaping() -> None:
    msg = roundtrip(
        compose_reply(
            "Total: 5 < 7 & <script>x</script>\n\nBye",
            (Button("Yes", "/affirm"), Button("No <way>", "/deny")),
            reply(),
        )
    )
    assert msg["Message-ID"] == "<hl.1.2.0123456789ab@helpline.test>"
    assert msg["In-Reply-To"] == "<a2@example.com>"
    assert msg["References"] == "<a1@example.com> <a2@example.com>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"] == "Re: Order"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().replace("\r\n", "\n") == (
        "Total: 5 < 7 & <script>x</script>\n\nBye\n\nReply with one of: Yes, No <way>\n"
    )
    content = html.get_content()
    assert "<p>Total: 5 &lt; 7 &amp; &lt;script&gt;x&lt;/script&gt;</p>" in content
    assert "<li>No &lt;way&gt;</li>" in content
    assert "<script>" not in content


def test_a_person_s_reply_is_not_marked_automatic() -> None:
    msg = roundtrip(compose_reply("Hi", (), reply(automatic=False, from_name="Ana")))
    assert msg["Auto-Submitted"] is None
    assert msg["From"].addresses[0].display_name == "Ana"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Order", "Re: Order"), ("Re: Order", "Re: Order"), ("RE:Order", "RE:Order"),
     ("AW: Bestellung", "Re: AW: Bestellung"), ("", "Re: Your message")],
)  # fmt: skip
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_references_keep_the_root_and_the_latest() -> None:
    original = {"message_id": "<m25@x>", "references": [f"<m{i}@x>" for i in range(25)]}
    refs = thread_references(original)
    assert len(refs) == 20
    assert refs[0] == "<m0@x>"
    assert refs[-1] == "<m25@x>"
    assert thread_references({"message_id": "sha256:abc"}) == []


def test_nul_characters_are_dropped_from_the_body() -> None:
    raw = (
        b"From: Ann <ann@example.com>\r\nTo: support@helpline.test\r\nSubject: Hi\r\n"
        b"Message-ID: <nul@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Where is\x00 my order?\r\n"
    )
    mail = parse_email(raw, 1024)
    assert mail.text == "Where is my order?"
    assert "\x00" not in mail.full_text
