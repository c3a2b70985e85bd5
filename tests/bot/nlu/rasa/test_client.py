"""Parsing through a real Rasa server, and falling back when Rasa cannot answer."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from bot.dialogue.nlu import ParseResult
from bot.errors import NLUError
from bot.metrics import REGISTRY
from bot.nlu.rasa.client import RasaNLU, from_rasa
from bot.nlu.rasa.server import free_port
from bot.runtime import NoNLU

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp.test_utils import TestServer

    from bot.nlu.embedded import EmbeddedNLU

pytestmark = pytest.mark.timeout(900)

RASA_BODY = {
    "text": "where is HL-12345",
    "intent": {"name": "check_order_status", "confidence": 0.91},
    "intent_ranking": [
        {"name": "check_order_status", "confidence": 0.91},
        {"name": "greet", "confidence": 0.05},
    ],
    "entities": [
        {"entity": "order_id", "start": 9, "end": 17, "value": "HL-12345", "extractor": "RE"},
        {"entity": "broken"},
    ],
}


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("helpline_nlu_fallbacks_total", {"reason": reason}) or 0.0


def test_from_rasa_maps_intents_entities_and_scope() -> None:
    result = from_rasa(RASA_BODY, "where is HL-12345", threshold=0.5)
    assert result.intent is not None
    assert result.intent.name == "check_order_status"
    assert [i.name for i in result.ranking] == ["check_order_status", "greet"]
    assert [(e.entity, e.value, e.start, e.end) for e in result.entities] == [
        ("order_id", "HL-12345", 9, 17)
    ]
    assert result.oos_score == pytest.approx(0.09)
    unsure = from_rasa(RASA_BODY, "x", threshold=0.95)
    assert unsure.out_of_scope
    assert unsure.intent is None
    with pytest.raises(NLUError):
        from_rasa({"text": "x"}, "x", threshold=0.5)


async def test_real_rasa_parses_intent_and_regex_entity(rasa_server: str) -> None:
    async with RasaNLU(lambda: rasa_server, NoNLU(), threshold=0.3) as nlu:
        before = sum(fallbacks(r) for r in ("timeout", "unavailable", "error", "not_ready"))
        result = await nlu.parse("where is my order HL-12345?")
        after = sum(fallbacks(r) for r in ("timeout", "unavailable", "error", "not_ready"))
    assert after == before
    assert result.intent is not None
    assert result.intent.name == "check_order_status"
    assert ("order_id", "HL-12345") in {(e.entity, e.value) for e in result.entities}
    assert not result.out_of_scope


async def test_rasa_down_falls_back_to_the_embedded_nlu(
    trained_nlu: EmbeddedNLU, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    before = fallbacks("unavailable")
    async with RasaNLU(lambda: dead, trained_nlu) as nlu:
        with caplog.at_level(logging.WARNING, logger="bot.nlu.rasa.client"):
            first = await nlu.parse("where is my package?")
            second = await nlu.parse("where is my package?")
    assert first == second == await trained_nlu.parse("where is my package?")
    assert fallbacks("unavailable") == before + 2
    warnings = [r for r in caplog.records if "embedded NLU parses instead" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per message


async def _serve(aiohttp_server: Callable[..., object], handler: object) -> str:
    app = web.Application()
    app.router.add_post("/model/parse", handler)  # type: ignore[arg-type]
    server: TestServer = await aiohttp_server(app)  # type: ignore[misc]
    return str(server.make_url("")).rstrip("/")


async def test_slow_rasa_times_out_to_the_fallback(aiohttp_server: Callable[..., object]) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response(RASA_BODY)

    url = await _serve(aiohttp_server, slow)
    before = fallbacks("timeout")
    async with RasaNLU(lambda: url, NoNLU(), timeout_s=0.2) as nlu:
        result = await nlu.parse("where is HL-12345")
    assert result == ParseResult("where is HL-12345", out_of_scope=True, oos_score=1.0)
    assert fallbacks("timeout") == before + 1


@pytest.mark.parametrize(
    "respond",
    [
        lambda: web.json_response({"error": "boom"}, status=500),
        lambda: web.Response(text="not json", content_type="application/json"),
        lambda: web.json_response({"no": "intent"}),
    ],
    ids=["http-500", "invalid-json", "not-a-parse-result"],
)
async def test_bad_answers_fall_back(
    aiohttp_server: Callable[..., object], respond: Callable[[], web.Response]
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return respond()

    url = await _serve(aiohttp_server, handler)
    before = fallbacks("error")
    async with RasaNLU(lambda: url, NoNLU()) as nlu:
        result = await nlu.parse("hello")
    assert result.out_of_scope
    assert fallbacks("error") == before + 1


async def test_recovery_is_noticed(aiohttp_server: Callable[..., object]) -> None:
    healthy = {"up": False}

    async def handler(request: web.Request) -> web.Response:
        if not healthy["up"]:
            return web.json_response({"error": "loading"}, status=503)
        return web.json_response(RASA_BODY)

    url = await _serve(aiohttp_server, handler)
    async with RasaNLU(lambda: url, NoNLU()) as nlu:
        assert (await nlu.parse("where is HL-12345")).out_of_scope
        healthy["up"] = True
        result = await nlu.parse("where is HL-12345")
    assert result.intent is not None
    assert result.intent.name == "check_order_status"


async def test_not_ready_uses_the_fallback() -> None:
    before = fallbacks("not_ready")
    async with RasaNLU(lambda: None, NoNLU()) as nlu:
        assert (await nlu.parse("hi")).out_of_scope
    assert fallbacks("not_ready") == before + 1


async def test_status_reports_starting_failing_and_ready(
    aiohttp_server: Callable[..., object],
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(RASA_BODY)

    url = await _serve(aiohttp_server, handler)
    current: dict[str, str | None] = {"url": None}
    async with RasaNLU(lambda: current["url"], NoNLU()) as nlu:
        assert nlu.status()["rasa"] == "starting"
        await nlu.parse("hi")  # not ready yet: the fallback answers
        current["url"] = url
        assert nlu.status()["rasa"] == "ready"
        current["url"] = f"http://127.0.0.1:{free_port()}"
        await nlu.parse("hi")
        assert nlu.status()["rasa"] == "failing"
        current["url"] = url
        await nlu.parse("hi")
        assert nlu.status() == {"backend": "rasa", "url": url, "rasa": "ready"}
