"""``/v1`` in the real app: off the customer port, keyed, and ended by the server's drain.

The app runs the default bot with the embedded SmolLM2 that ``make setup`` prepared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.runtime import Runtime
from bot.server import RUNTIME, create_app, drain
from tests.llm.workers import LONG, QUESTION, sse_payloads

ROOT = Path(__file__).parents[2]
KEY = "sk-test-0123456789abcdef"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _write_config(tmp_path: Path, api: str) -> Path:
    path = tmp_path / "helpline.yml"
    path.write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path}/api.db\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        "server:\n  drain_timeout_s: 0.5\n"
        f"llm:\n  local:\n    max_new_tokens: 16\n{api}"
    )
    return path


@pytest.fixture
async def app_client(
    aiohttp_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TestClient[Any, Any]:
    if not (ROOT / "var" / "models" / "llm").is_dir():
        pytest.skip("the embedded model is not prepared (run make setup)")
    monkeypatch.setenv("HELPLINE_TEST_API_KEY", KEY)
    api = (
        "  api:\n    listen: own\n    port: 0\n    max_tokens: 4000\n"
        "    keys: [{key: '${HELPLINE_TEST_API_KEY}', name: ci}]\n"
    )
    config = load_config(_write_config(tmp_path, api))
    return await aiohttp_client(create_app(config, Runtime(config)))


def _api_url(client: TestClient[Any, Any]) -> str:
    listener = client.app[RUNTIME].api_listener
    return f"http://127.0.0.1:{listener.port}/v1"


async def test_v1_is_off_the_customer_port_and_needs_a_key(
    app_client: TestClient[Any, Any],
) -> None:
    assert (await app_client.get("/v1/models")).status == 404
    url = _api_url(app_client)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/models") as anonymous:
            assert anonymous.status == 401
            assert anonymous.headers["WWW-Authenticate"] == "Bearer"
            assert (await anonymous.json())["error"]["code"] == "invalid_api_key"
        wrong = {"Authorization": "Bearer sk-wrong-0123456789abcdef"}
        async with session.get(f"{url}/models", headers=wrong) as refused:
            assert refused.status == 401
        keyed = {"Authorization": f"Bearer {KEY}"}
        async with session.get(f"{url}/models", headers=keyed) as allowed:
            assert allowed.status == 200
            assert [m["id"] for m in (await allowed.json())["data"]] == ["helpline-local"]


async def test_drain_ends_a_v1_stream_with_done_within_the_timeout(
    app_client: TestClient[Any, Any],
) -> None:
    url = f"{_api_url(app_client)}/chat/completions"
    body = {"messages": QUESTION, "stream": True, **LONG}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as running,
    ):
        assert running.status == 200
        assert (await running.content.readline()).startswith(b"data: {")
        await drain(app_client.app)
        events = sse_payloads((await running.read()).decode())
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "server_shutting_down"


def test_serving_v1_without_keys_needs_allow_anonymous(tmp_path: Path) -> None:
    from bot.config import validate_llm_section
    from bot.errors import ConfigError
    from llm.settings import LLMSettings

    config = load_config(_write_config(tmp_path, "  api:\n    listen: main\n"))
    with pytest.raises(ConfigError, match="allow_anonymous"):
        validate_llm_section(config, LLMSettings)
    default = load_config(_write_config(tmp_path, ""))
    assert validate_llm_section(default, LLMSettings).api.listen == "off"
