"""Threading: which conversation a mail belongs to, against the real store."""

from __future__ import annotations

import pytest

from bot.storage import Store
from connectors.email.threads import (
    Threader,
    is_reply_subject,
    normalise_subject,
    our_message_id,
    subject_key,
)
from connectors.email.translate import ParsedEmail

ROOT = "<root-1@example.com>"


def mail(subject: str = "Re: Order", in_reply_to: tuple[str, ...] = (),
         references: tuple[str, ...] = (), message_id: str = "<new@example.com>") -> ParsedEmail:  # fmt: skip
    return ParsedEmail(message_id, "alice@example.com", "Alice", "alice@example.com", subject,
                       in_reply_to=in_reply_to, references=references)  # fmt: skip


@pytest.mark.parametrize(
    ("subject", "normalised"),
    [("Re: Order", "order"), ("RE: Fwd: AW:  Order  HL-1", "order hl-1"),
     ("SV: VS: WG: TR: Fw: order", "order"), ("Re[2]: Order", "order"),
     ("Antw: Bestelling", "bestelling"), ("Order: missing", "order: missing"),
     ("Rechnung", "rechnung")],
)  # fmt: skip
def test_normalise_subject(subject: str, normalised: str) -> None:
    assert normalise_subject(subject) == normalised


def test_reply_subjects() -> None:
    assert is_reply_subject("AW: Bestellung")
    assert is_reply_subject("re:x")
    assert not is_reply_subject("Regarding my order")
    assert not is_reply_subject("Order")


async def ours(store: Store) -> tuple[str, int]:
    received = await store.receive("email", ROOT, "alice@example.com", ROOT, "/check_order", {})
    reply = await store.record_outbound(
        received.conversation.id,
        {"text": "Shall I?", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        in_reply_to=received.inbound_id,
    )
    return our_message_id(await store.message(reply), "helpline.test"), reply


async def test_a_reply_to_our_message_finds_its_conversation(store: Store) -> None:
    our_id, reply = await ours(store)
    threader = Threader(store)
    # Only In-Reply-To (the client dropped References) is enough.
    thread = await threader.resolve(mail(in_reply_to=(our_id,)))
    assert thread.key == ROOT
    assert thread.answered is not None
    assert thread.answered.id == reply
    assert thread.answered.buttons == [{"title": "Yes", "payload": "/affirm"}]
    full = await threader.resolve(mail(in_reply_to=(our_id,), references=(ROOT, our_id)))
    assert full.key == ROOT


async def test_a_forged_or_foreign_id_of_our_shape_is_not_trusted(store: Store) -> None:
    our_id, _ = await ours(store)
    forged = our_id[:-20] + "ffffffffffff@helpline.test>"
    assert forged != our_id
    threader = Threader(store)
    assert (await threader.resolve(mail(in_reply_to=(forged,)))).key == forged
    missing = "<hl.999.999.0123456789ab@helpline.test>"
    assert (await threader.resolve(mail(in_reply_to=(missing,)))).key == missing


async def test_the_root_is_the_first_reference(store: Store) -> None:
    threader = Threader(store)
    thread = await threader.resolve(mail(in_reply_to=("<b@x>",), references=("<a@x>", "<b@x>")))
    assert thread.key == "<a@x>"
    assert thread.answered is None
    assert (await threader.resolve(mail(in_reply_to=("<b@x>",)))).key == "<b@x>"


async def test_without_thread_headers(store: Store) -> None:
    threader = Threader(store)
    assert (await threader.resolve(mail(subject="Order"))).key == "<new@example.com>"
    headerless_reply = await threader.resolve(mail(subject="AW: Re: Order"))
    assert headerless_reply.key == subject_key("Re: order", "alice@example.com")
    assert headerless_reply.key == "subject:alice@example.com:order"
