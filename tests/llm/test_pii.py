from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.nlu.data import load_nlu
from llm.pii import Redactor, StreamRestorer, luhn_ok
from llm.settings import PIISettings
from llm.types import ChatMessage

VISA = "4111 1111 1111 1111"
NLU_FILE = Path(__file__).parents[2] / "flows" / "nlu.yml"


def default_bot_pii() -> PIISettings:
    """The PII settings as the runtime builds them for the default bot."""
    return PIISettings().with_entities(load_nlu([NLU_FILE]).regexes)


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(default_bot_pii())


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
        # National phone forms of the default regions (US, GB, DE).
        ("ring 07700 900123 after six", "ring [PHONE_1] after six"),
        ("office 020 7946 0958.", "office [PHONE_1]."),
        ("Berlin: 0049 30 12345678", "Berlin: [PHONE_1]"),
        ("my cell is 5551234567", "my cell is [PHONE_1]"),
        ("or 030 12345678", "or [PHONE_1]"),
        ("toll free 1-800-555-0142", "toll free [PHONE_1]"),
        # Cards with dots, the CVV and the expiry.
        ("4242.4242.4242.4242, exp 12/27, CVV 123", "[CARD_1], exp [EXPIRY_1], CVV [CVV_1]"),
        (
            "expires 08/2029 and the security code is 4321",
            "expires [EXPIRY_1] and the security code is [CVV_1]",
        ),
        ("789 is my cvc", "[CVV_1] is my cvc"),
        # IBANs, grouped or not.
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN_1] please"),
        ("to DE89370400440532013000.", "to [IBAN_1]."),
        # US SSNs.
        ("SSN 123-45-6789", "SSN [SSN_1]"),
        ("my social security number is 123456789", "my social security number is [SSN_1]"),
        # Spelled-out e-mails.
        ("maria dot gonzalez at gmail dot com", "[EMAIL_1]"),
        ("write to maria(at)example(dot)org.", "write to [EMAIL_1]."),
        ("it's ann.lee at example.co.uk", "it's [EMAIL_1]"),
        ("ann at gmail.com", "[EMAIL_1]"),
        ("bob @ example.com", "[EMAIL_1]"),
        # Order ids in every form the bot's NLU regex accepts.
        ("hl-10005 and HL10006 and HL 10004", "[ORDER_ID_1] and [ORDER_ID_2] and [ORDER_ID_3]"),
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
        "order 1234567 and total $1,299.99",
        "tracking 4111 1111 1111 1112",  # fails Luhn: not a card
        "HL-123456 is not an order id, nor is XHL-12345",
        "version 1.2.3, invoice INV-2024-0001",
        "ratio 555-1234",
        "a 20-digit reference 12345678901234567890",
        "It costs $40 and returns take 30 days.",
        "Refunds land in 3 to 5 business days; we open at 9:00 and close at 17:30.",
        "Order 10005 has 2 items, 3 x 250 g, shipped 12/03/2024.",
        "It took 1.687 s, and 397 / 932 passed.",
        "retry on 404/400/449/500",
        "we're at 14:30 on 2024-01-15, room 12345",
        "I bought it at amazon.com last week",
        "see you at home, dot the i's",
        "Code 123 is not a CVV without the word, and 12/27 is not an expiry without one.",
        "DE12 is not an IBAN, nor is GB82WEST12345698765433",
        "000-12-3456 and 666-12-3456 are not SSNs",
    ],
)
def test_leaves_non_pii_alone(redactor: Redactor, text: str) -> None:
    assert redactor.redact(text) == (text, {})


def test_bare_order_numbers_follow_the_nlu_regex() -> None:
    regexes = {"order_id": [r"\b[Hh][Ll][- ]?\d{5}\b", r"\b\d{5}\b"]}
    redactor = Redactor(PIISettings().with_entities(regexes))
    assert redactor.redact("order 10005")[0] == "order [ORDER_ID_1]"
    assert Redactor(PIISettings()).redact("order 10005")[0] == "order 10005"


def test_entities_extend_the_patterns_of_the_same_name() -> None:
    settings = PIISettings(patterns={"ORDER_ID": r"\bNW\d{4}\b"}, entities=["order_id", "x"])
    merged = settings.with_entities({"order_id": [r"\bHL-\d{5}\b"], "email": ["@"]})
    assert merged.patterns == {"ORDER_ID": [r"\bNW\d{4}\b", r"\bHL-\d{5}\b"]}
    text, _ = Redactor(merged).redact("NW1234 HL-10001")
    assert text == "[ORDER_ID_1] [ORDER_ID_2]"


def test_order_id_is_not_taken_for_a_phone(redactor: Redactor) -> None:
    redacted, mapping = redactor.redact("order HL-55512 phone 555-123-4567")
    assert redacted == "order [ORDER_ID_1] phone [PHONE_1]"
    assert mapping == {"ORDER_ID_1": "HL-55512", "PHONE_1": "555-123-4567"}


def test_spelled_and_plain_email_share_a_placeholder(redactor: Redactor) -> None:
    text, mapping = redactor.redact(
        "Maria.Gonzalez at gmail dot com, i.e. maria.gonzalez@gmail.com"
    )
    assert text == "[EMAIL_1], i.e. [EMAIL_1]"
    assert mapping == {"EMAIL_1": "maria.gonzalez@gmail.com"}


def test_phone_settings() -> None:
    text = "call 07700 900123 or 5551234567"
    assert (
        Redactor(PIISettings(phone_min_digits=0)).redact(text)[0] == "call [PHONE_1] or 5551234567"
    )
    only_us = Redactor(PIISettings(phone_regions=["us"], phone_min_digits=0))
    assert (
        only_us.redact("call 030 12345678 or (212) 555-0100")[0] == "call 030 12345678 or [PHONE_1]"
    )
    with pytest.raises(ValidationError, match="unknown phone region"):
        PIISettings(phone_regions=["XX"])


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


@pytest.mark.parametrize("patterns", [{"lower": "x"}, {"BAD": "("}, {"BAD": ["x", "("]}])
def test_bad_patterns_are_refused(patterns: dict[str, str | list[str]]) -> None:
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
