"""What a real OpenAI-compatible server receives: no PII of any class, and replies restored.

The chain is set up as the runtime sets it up for the default bot: the PII
defaults plus the default bot's own NLU regex entities (``order_id``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.nlu.data import load_nlu
from llm.cloud import CloudChain
from llm.settings import CloudSettings, PIISettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, stream
from tests.llm.cloud.support import provider_for

pytestmark = pytest.mark.usefixtures("no_blocking")
ROOT = Path(__file__).resolve().parents[3]
GEN = GenerationSettings(max_new_tokens=64)
_PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")

#: Class, a customer's message, and what of it must never reach the cloud.
CASES = [
    ("PHONE", "Call me on 07700 900123 tonight.", ["07700", "900123"]),
    ("PHONE", "My office is 020 7946 0958.", ["7946", "0958"]),
    ("PHONE", "In Berlin: 0049 30 12345678", ["0049", "12345678"]),
    ("PHONE", "my cell is 5551234567 ok", ["5551234567", "555"]),
    ("PHONE", "or +44 20 7946 0958", ["7946"]),
    ("CARD", "Card 4242.4242.4242.4242 please", ["4242"]),
    ("CARD", "card 4111-1111-1111-1111", ["1111"]),
    ("CVV", "the CVV is 739", ["739"]),
    ("EXPIRY", "it expires 08/29", ["08/29"]),
    ("IBAN", "refund to GB82 WEST 1234 5698 7654 32", ["WEST", "5698"]),
    ("SSN", "my SSN is 123-45-6789", ["6789", "123-45"]),
    ("EMAIL", "I'm maria dot gonzalez at gmail dot com", ["maria", "gonzalez", "gmail"]),
    ("EMAIL", "write to ann.lee@example.com", ["ann.lee", "example.com"]),
    ("ORDER_ID", "where is hl-10005?", ["10005"]),
    ("ORDER_ID", "and HL10006", ["10006"]),
    ("ORDER_ID", "also HL 10004", ["10004"]),
]


@pytest.fixture(scope="module")
def pii() -> PIISettings:
    """The PII settings as the runtime builds them for the default bot."""
    return PIISettings().with_entities(load_nlu([ROOT / "flows" / "nlu.yml"]).regexes)


def _echo_placeholders(body: dict[str, Any]) -> str:
    text = " ".join(m["content"] for m in body["messages"])
    return "Noted: " + " ".join(_PLACEHOLDER.findall(text))


def _sent(server: FakeOpenAI) -> str:
    """The message texts the server received, as one string."""
    return " ".join(m["content"] for m in server.chat_requests[-1].body["messages"])


@pytest.mark.parametrize(("kind", "text", "secrets"), CASES)
async def test_no_pii_reaches_the_cloud(
    fake_openai: FakeOpenAI, pii: PIISettings, kind: str, text: str, secrets: list[str]
) -> None:
    fake_openai.script(ok(_echo_placeholders))
    settings = CloudSettings(providers=[provider_for(fake_openai)])
    messages = [ChatMessage("system", "Answer briefly."), ChatMessage("user", text)]
    async with CloudChain(settings, pii=pii) as chain:
        completion = await chain.complete(messages, GEN)
    sent, raw = _sent(fake_openai), fake_openai.chat_requests[-1].raw
    assert f"[{kind}_1]" in sent
    for secret in secrets:
        assert secret not in sent
        assert secret not in raw
    restored = completion.text.removeprefix("Noted: ")
    assert restored  # the reply is restored to what the customer wrote
    assert restored in text


async def test_a_streamed_reply_is_restored(fake_openai: FakeOpenAI, pii: PIISettings) -> None:
    fake_openai.script(stream(["Calling [PHO", "NE_1] about [ORDER", "_ID_1], card [CARD_1]."]))
    settings = CloudSettings(providers=[provider_for(fake_openai)])
    text = "Order HL 10004, call 020 7946 0958, card 4242 4242 4242 4242"
    async with CloudChain(settings, pii=pii) as chain:
        pieces = [t.text async for t in chain.stream([ChatMessage("user", text)], GEN)]
    assert "".join(pieces) == "Calling 020 7946 0958 about HL 10004, card 4242 4242 4242 4242."
    sent = _sent(fake_openai)
    assert sent == "Order [ORDER_ID_1], call [PHONE_1], card [CARD_1]"


async def test_non_pii_numbers_reach_the_cloud_as_written(
    fake_openai: FakeOpenAI, pii: PIISettings
) -> None:
    fake_openai.script(ok("Yes."))
    text = "It cost $40 on 2024-05-01 at 12:30; 30 days to return 3 items, order 10005?"
    settings = CloudSettings(providers=[provider_for(fake_openai)])
    async with CloudChain(settings, pii=pii) as chain:
        await chain.complete([ChatMessage("user", text)], GEN)
    assert _sent(fake_openai) == text
