"""``/v1`` access: API keys, per-key rate limits, and the worker pool sending its key.

The endpoint serves the tiny random Llama over a real port; the pool is the real
:class:`~llm.pool.WorkerPool` pointed at it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from bot.errors import LLMError
from llm.local.runtime import LocalModel
from llm.openai_api import create_openai_app
from llm.pool import WorkerPool
from llm.settings import ApiSettings
from llm.types import ChatMessage, GenerationSettings, RequestRefused
from tests.llm.local.tiny_llm import build_tiny_model

POOL_KEY = "sk-pool-0123456789abcdef"
USER_KEY = "sk-user-0123456789abcdef"
CHAT = {"messages": [{"role": "user", "content": "Where is my parcel?"}], "max_tokens": 2}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llm")


@pytest.fixture
async def model(tiny_dir: Path) -> AsyncIterator[LocalModel]:
    async with LocalModel.load(tiny_dir / "onnx", threads=1) as loaded:
        yield loaded


async def _serve(model: LocalModel, **api: Any) -> TestServer:
    app = web.Application()
    app.add_subapp("/v1", create_openai_app(model, "tiny", access=ApiSettings(**api)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def keyed(model: LocalModel) -> AsyncIterator[BaseTestServer]:
    keys = [
        {"key": POOL_KEY, "name": "pool", "unlimited": True, "priority": "customer"},
        {"key": USER_KEY, "name": "user"},
    ]
    server = await _serve(model, keys=keys, burst=2, requests_per_minute=0.001)
    yield server
    await server.close()


async def _chat(server: BaseTestServer, key: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url("/v1/chat/completions"), json=CHAT, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json()


async def test_a_key_is_needed(keyed: BaseTestServer) -> None:
    for key in (None, "sk-nope-0123456789abcdef", f"{USER_KEY}x"):
        status, headers, body = await _chat(keyed, key)
        assert status == 401
        assert headers["WWW-Authenticate"] == "Bearer"
        assert body["error"]["code"] == "invalid_api_key"
        assert USER_KEY not in body["error"]["message"]
    assert (await _chat(keyed, USER_KEY))[0] == 200


async def test_each_key_has_its_own_rate_limit(keyed: BaseTestServer) -> None:
    assert [(await _chat(keyed, USER_KEY))[0] for _ in range(2)] == [200, 200]
    status, headers, body = await _chat(keyed, USER_KEY)
    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "key user" in body["error"]["message"]
    # The pool's key is unlimited, and not held back by the user's bucket.
    assert [(await _chat(keyed, POOL_KEY))[0] for _ in range(4)] == [200] * 4


async def test_anonymous_callers_are_limited_per_address(model: LocalModel) -> None:
    server = await _serve(model, allow_anonymous=True, burst=1, requests_per_minute=0.001)
    try:
        assert (await _chat(server, None))[0] == 200
        status, _, body = await _chat(server, None)
        assert status == 429
        assert "address 127.0.0.1" in body["error"]["message"]
    finally:
        await server.close()


async def test_the_pool_sends_its_key(keyed: BaseTestServer) -> None:
    url = str(keyed.make_url("/v1"))
    ask = [ChatMessage("user", "Where is my parcel?")]
    async with WorkerPool([url], api_key=POOL_KEY) as pool:
        answer = await pool.complete(ask, GenerationSettings(max_new_tokens=3))
        assert answer.completion_tokens == 3
        # A prompt past the worker's context is refused for good, not "busy".
        with pytest.raises(RequestRefused, match="maximum context length"):
            await pool.complete([ChatMessage("user", "parcel " * 1500)], GenerationSettings(3))
    async with WorkerPool([url]) as keyless:
        with pytest.raises(LLMError, match="401"):
            await keyless.complete(ask, GenerationSettings(max_new_tokens=3))
