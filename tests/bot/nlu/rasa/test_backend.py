"""The default bot on ``nlu.backend: rasa``, over the REST channel.

With a real Rasa server the turn is parsed by Rasa; with Rasa down it is
parsed by the embedded NLU, and the customer never notices.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.metrics import REGISTRY
from bot.nlu.rasa.client import RasaNLU
from bot.nlu.rasa.server import free_port
from bot.runtime import Runtime
from bot.server import RUNTIME, create_app

from .conftest import ROOT

pytestmark = pytest.mark.timeout(900)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
MESSAGE = "where is my order HL-12345?"


async def _client(
    aiohttp_client: ClientFactory, tmp_path: Path, rasa_url: str
) -> TestClient[Any, Any]:
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path / 'helpline.db'}\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        f"nlu:\n  backend: rasa\n  rasa: {{url: '{rasa_url}', threshold: 0.3}}\n"
        "llm:\n  enabled: false\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    return await aiohttp_client(create_app(config, Runtime(config)))


async def _turn(client: TestClient[Any, Any], sender: str) -> list[str]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": MESSAGE})
    assert resp.status == 200
    return [reply["text"] for reply in await resp.json()]


async def test_rasa_parses_the_turn(
    aiohttp_client: ClientFactory, tmp_path: Path, rasa_server: str
) -> None:
    before = REGISTRY.get_sample_value("helpline_nlu_fallbacks_total", {"reason": "unavailable"})
    client = await _client(aiohttp_client, tmp_path, rasa_server)
    assert isinstance(client.app[RUNTIME].manager.nlu, RasaNLU)
    texts = await _turn(client, "rasa-up")
    assert any("HL-12345" in text for text in texts), texts
    after = REGISTRY.get_sample_value("helpline_nlu_fallbacks_total", {"reason": "unavailable"})
    assert after == before


async def test_rasa_down_the_turn_still_works(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    before = (
        REGISTRY.get_sample_value("helpline_nlu_fallbacks_total", {"reason": "unavailable"}) or 0
    )
    client = await _client(aiohttp_client, tmp_path, f"http://127.0.0.1:{free_port()}")
    texts = await _turn(client, "rasa-down")
    assert any("HL-12345" in text for text in texts), texts
    after = REGISTRY.get_sample_value("helpline_nlu_fallbacks_total", {"reason": "unavailable"})
    assert after == before + 1


def test_the_rasa_client_is_what_the_runtime_builds(tmp_path: Path) -> None:
    from bot.runtime import build_nlu

    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {ROOT / 'flows'}\nmodels:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        "nlu:\n  backend: rasa\n  rasa: {url: 'http://127.0.0.1:1/'}\nllm:\n  enabled: false\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    nlu = build_nlu(Runtime(config).load_project(), config)
    assert isinstance(nlu, RasaNLU)
    assert nlu.owned is None  # an external server: no sidecar
