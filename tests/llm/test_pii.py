from __future__ import annotations

import pytest

from llm.pii import Redactor, StreamRestorer, luhn_ok
from llm.settings import PIISettings
from llm.types import ChatMessage

VISA = "4111 1111 1111 1111"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(PIISettings())


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail me at Ann.Lee+shop@mail.example.co.uk please", "Mail me at [EMAIL_1] please"),
        ("call +44 20 7946 0958 now", "call [PHONE_1] now"),
        ("call +1 (555) 123-4567.", "call [PHONE_1]."),
        ("US: (555) 123-4567 or 555.123.4568", "US: [PHONE_1] or [PHONE_2]"),
        ("cell 1-555-123-4567", "cell [PHONE_1]"),
        (f"card {VISA}, thanks", "card [CARD_1], thanks"),
        ("card 4111-1111-1111-1111", "card [CARD_1]"),
        ("amex 378282246310005", "amex [CARD_1]"),
        ("where is HL-12345?", "where is [ORDER_ID_1]?"),
    ],
)
def test_redacts(redactor: Redactor, text: str, expected: str) -> None:
    redacted, mapping = redactor.redact(text)
    assert redacted == expected
    assert redactor.restore(redacted, mapping) == text


@pytest.mark.parametrize(
    "text",
    [
        "delivered on 2024-05-01 at 12:30",
        "order 1234567890 and total $1,299.99",
        "tracking 4111 1111 1111 1112",  # fails Luhn: not a card
        "HL-123456 is not an order id, nor is XHL-12345",
        "version 1.2.3, invoice INV-2024-0001",
        "ratio 555-1234",
        "a 20-digit reference 12345678901234567890",
    ],
)
def test_leaves_non_pii_alone(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == (text, {})


def test_order_id_is_not_taken_for_a_phone(redactor: Redactor) -> None:
    redacted, mapping = redactor.redact("order HL-55512 phone 555-123-4567")
    assert redacted == "order [ORDER_ID_1] phone [PHONE_1]"
    assert mapping == {"ORDER_ID_1": "HL-55512", "PHONE_1": "555-123-4567"}


def test_same_value_same_placeholder_across_messages(redactor: Redactor) -> None:
    messages = [
        ChatMessage("system", "Be nice."),
        ChatMessage("user", "I am ann@example.com, card 4111111111111111"),
        ChatMessage("assistant", "Thanks ANN@example.com."),
        ChatMessage("user", f"Use {VISA} or bob@example.com; HL-00001 and HL-00002"),
    ]
    redacted, mapping = redactor.redact_messages(messages)
    assert [m.role for m in redacted] == ["system", "user", "assistant", "user"]
    assert redacted[1].content == "I am [EMAIL_1], card [CARD_1]"
    assert redacted[2].content == "Thanks [EMAIL_1]."
    assert redacted[3].content == "Use [CARD_1] or [EMAIL_2]; [ORDER_ID_1] and [ORDER_ID_2]"
    assert mapping["EMAIL_2"] == "bob@example.com"


def test_mapping_is_extended_between_calls(redactor: Redactor) -> None:
    _, mapping = redactor.redact("a@b.io")
    text, mapping = redactor.redact("c@d.io and a@b.io", mapping)
    assert text == "[EMAIL_2] and [EMAIL_1]"


def test_restore_tolerates_model_variants() -> None:
    mapping = {"EMAIL_1": "ann@example.com", "ORDER_ID_1": "HL-12345", "PHONE_10": "+1 555"}
    reply = "Sent to [ email_1 ] about ORDER_ID_1] and [ORDER_ID_1; call [PHONE_10]."
    assert Redactor.restore(reply, mapping) == (
        "Sent to ann@example.com about HL-12345 and HL-12345; call +1 555."
    )


def test_restore_does_not_touch_longer_names() -> None:
    assert Redactor.restore("EMAIL_10 and MY_EMAIL_1", {"EMAIL_1": "x@y.z"}) == (
        "EMAIL_10 and MY_EMAIL_1"
    )


def test_custom_patterns_and_disabled() -> None:
    redactor = Redactor(PIISettings(patterns={"TICKET": r"\bT#\d+\b", "ORDER_ID": r"\d+"}))
    text, mapping = redactor.redact("T#77 and a@b.io")
    assert text == "[TICKET_1] and [EMAIL_1]"  # the \d+ pattern does not eat placeholders
    assert mapping == {"TICKET_1": "T#77", "EMAIL_1": "a@b.io"}
    assert Redactor(PIISettings(enabled=False)).redact("a@b.io") == ("a@b.io", {})


@pytest.mark.parametrize("patterns", [{"lower": "x"}, {"BAD": "("}])
def test_bad_patterns_are_refused(patterns: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="PII pattern"):
        Redactor(PIISettings(patterns=patterns))


@pytest.mark.parametrize(
    "chunks",
    [
        ["Write to [EMAIL_1] today"],
        ["Write to [EM", "AIL_1] to", "day"],
        ["Write to [", "EMAIL_1", "]", " today"],
        ["Write to EMAIL_", "1", " today"],
    ],
)
def test_stream_restorer_joins_split_placeholders(chunks: list[str]) -> None:
    restorer = StreamRestorer({"EMAIL_1": "ann@example.com"})
    out = "".join(restorer.feed(c) for c in chunks) + restorer.flush()
    assert out == "Write to ann@example.com today"


def test_stream_restorer_does_not_hold_ordinary_text() -> None:
    restorer = StreamRestorer({"EMAIL_1": "a@b.io"})
    assert restorer.feed("Hello there, ") == "Hello there, "
    assert restorer.feed("[1] says") == "[1] "
    assert restorer.flush() == "says"
