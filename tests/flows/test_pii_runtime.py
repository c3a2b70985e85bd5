"""The default bot's runtime keeps PII out of what the cloud receives and out of the transcript.

A real OpenAI-compatible server on loopback stands for the cloud; the local
model is off and the local threshold at 1, so every open-ended turn asks it.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import load_config
from bot.messages import InboundMessage
from bot.runtime import Runtime
from tests.llm.cloud.fake_openai import FakeOpenAI, ok

ROOT = Path(__file__).parents[2]


def _config_file(tmp_path: Path, server: FakeOpenAI) -> Path:
    path = tmp_path / "helpline.yml"
    path.write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path}/pii.db\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        "llm:\n  local_threshold: 1.0\n  local: {enabled: false}\n"
        "  cloud:\n    providers:\n"
        f"      - {{name: c, base_url: '{server.base_url}', model: big}}\n"
    )
    return path


async def test_the_cloud_gets_no_order_id_and_the_store_no_card(tmp_path: Path) -> None:
    async with FakeOpenAI() as server:
        server.script(ok("We accept Visa and PayPal [1]."))
        config = load_config(_config_file(tmp_path, server))
        text = (
            "Which payment methods can I use for HL 10004? My card 4242.4242.4242.4242 "
            "was declined, CVV 321; call 07700 900123 or maria dot gonzalez at gmail dot com"
        )
        async with Runtime(config) as runtime:
            await runtime.manager.handle(InboundMessage("rest", "p", "p", text, "m1"))
            conv = await runtime.store.conversation("rest", "p", "p")
            (inbound, *_) = await runtime.store.transcript(conv.id)
            events = json.dumps(await runtime.store.events(conv.id), ensure_ascii=False)
    assert server.chat_requests, "the turn did not reach the cloud"
    sent = json.dumps(server.chat_requests[0].body["messages"], ensure_ascii=False)
    for secret in ("10004", "4242.4242", "321", "07700", "900123", "gonzalez", "gmail"):
        assert secret not in sent
    assert "for [ORDER_ID_" in sent
    assert inbound.text.startswith("Which payment")
    assert "••••.••••.••••.4242" in inbound.text
    for stored in (inbound.text, events):
        assert "4242.4242" not in stored
        assert "CVV 321" not in stored
