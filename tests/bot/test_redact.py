"""Card numbers and security codes are masked before an inbound message is kept."""

from __future__ import annotations

import json

import pytest

from bot.dialogue.project import Project, load_project
from bot.messages import InboundMessage
from bot.redact import mask_payment
from bot.storage.store import Store
from tests.bot.test_manager import PROJECT, make_manager


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(PROJECT, lambda name: False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4242 4242 4242 4242 ok", "card •••• •••• •••• 4242 ok"),
        ("4242-4242-4242-4242", "••••-••••-••••-4242"),
        ("4242.4242.4242.4242.", "••••.••••.••••.4242."),
        ("pay with 4242424242424242, thanks", "pay with ••••••••••••4242, thanks"),
        ("amex 3782 822463 10005", "amex •••• •••••• •0005"),
        ("CVV: 123", "CVV: •••"),
        ("cvc is 1234", "cvc is ••••"),
        ("the security code is 987", "the security code is •••"),
        ("123 is my cvv", "••• is my cvv"),
        ("4242 4242 4242 4242 cvv 321", "•••• •••• •••• 4242 cvv •••"),
    ],
)
def test_masks_cards_and_security_codes(text: str, expected: str) -> None:
    assert mask_payment(text) == expected
    assert mask_payment(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tracking 4111 1111 1111 1112",  # fails Luhn
        "order HL-10005 costs $40 and arrives in 3 to 5 days",
        "call 0049 30 12345678 or 020 7946 0958",
        "a 20-digit reference 12345678901234567890",
        "code 123 and 2024-05-01 12:30",
        "my security code is 123456",  # a one-time code, not a CVV
    ],
)
def test_leaves_other_numbers_alone(text: str) -> None:
    assert mask_payment(text) == text


def test_the_inbound_message_is_masked_as_it_is_built() -> None:
    message = InboundMessage("rest", "c", "s", "4242 4242 4242 4242, CVV 123", "m1")
    assert message.text == "•••• •••• •••• 4242, CVV •••"


async def test_the_store_never_holds_the_card_number(project: Project, store: Store) -> None:
    manager = make_manager(project, store)
    text = "card 4242.4242.4242.4242 cvv 123"
    await manager.handle(InboundMessage("test", "c9", "customer", text, "m-9"))
    conv = await store.conversation("test", "c9", "customer")
    (inbound, *_) = await store.transcript(conv.id)
    assert inbound.text == "card ••••.••••.••••.4242 cvv •••"
    events = json.dumps(await store.events(conv.id), ensure_ascii=False)
    assert "••••.••••.••••.4242" in events
    for secret in ("4242.4242.4242.4242", "cvv 123"):
        assert secret not in events
        assert secret not in inbound.text
