"""The OpenAI-compatible endpoint, driven by the official ``openai`` client over a real port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from openai.types.chat import ChatCompletionMessageParam

from llm.local.runtime import LocalModel
from llm.openai_api import create_openai_app
from llm.types import ChatMessage, GenerationSettings
from tests.llm.local.tiny_llm import build_tiny_model

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llm")


@pytest.fixture
async def model(tiny_dir: Path) -> AsyncIterator[LocalModel]:
    async with LocalModel.load(tiny_dir / "onnx", threads=1, max_wait_s=0.05) as loaded:
        yield loaded


@pytest.fixture
async def server(model: LocalModel) -> AsyncIterator[BaseTestServer]:
    app = web.Application()
    app.add_subapp("/v1", create_openai_app(model, "tiny"))
    async with TestServer(app, host="127.0.0.1") as started:
        yield started


@pytest.fixture
async def client(server: BaseTestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=str(server.make_url("/v1")), api_key="x", max_retries=0
    ) as opened:
        yield opened


async def test_non_streaming_matches_the_model(
    client: openai.AsyncOpenAI, model: LocalModel
) -> None:
    answer = await client.chat.completions.create(
        model="tiny", messages=QUESTION, max_tokens=12, temperature=0
    )
    expected = await model.complete(
        [ChatMessage("user", "Where is my parcel?")], GenerationSettings(max_new_tokens=12)
    )
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == "tiny"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == expected.text
    assert answer.choices[0].finish_reason == expected.finish_reason
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == expected.prompt_tokens
    assert answer.usage.completion_tokens == expected.completion_tokens
    assert answer.choices[0].logprobs is None


async def test_streaming_gives_the_same_text(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(
        model="tiny", messages=QUESTION, max_completion_tokens=15, temperature=0
    )
    stream = await client.chat.completions.create(
        model="tiny",
        messages=QUESTION,
        max_completion_tokens=15,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens  # type: ignore[union-attr]


async def test_stop_strings_and_logprobs(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(
        model="tiny", messages=QUESTION, max_tokens=30, temperature=0, logprobs=True
    )
    content = whole.choices[0].message.content or ""
    entries = whole.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries is not None
    assert whole.usage is not None
    eos = whole.choices[0].finish_reason == "stop"  # The EOS token has no entry.
    assert len(entries) == whole.usage.completion_tokens - eos
    assert all(e.logprob < 0 for e in entries)
    assert "".join(e.token for e in entries) == content
    stop = content[10:13]
    cut = await client.chat.completions.create(
        model="tiny", messages=QUESTION, max_tokens=30, temperature=0, stop=[stop, "never"]
    )
    assert cut.choices[0].message.content == content[: content.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    assert [m.id for m in page.data] == ["tiny"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "gpt-9"}, "model"),
    ],
)
async def test_bad_requests_are_400(
    client: openai.AsyncOpenAI, extra: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "tiny", "messages": QUESTION, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**body)
    assert caught.value.status_code == 400
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def test_busy_model_is_503_with_retry_after(
    client: openai.AsyncOpenAI, model: LocalModel
) -> None:
    await model.gate.acquire()
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="tiny", messages=QUESTION, max_tokens=3)
    finally:
        model.gate.release()
    assert caught.value.status_code == 503
    assert caught.value.response.headers["Retry-After"].isdigit()


async def test_client_leaving_mid_stream_cancels_generation(
    server: BaseTestServer, model: LocalModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm.local.runtime")
    body = {
        "model": "tiny",
        "messages": QUESTION,
        "max_tokens": 900,
        "stream": True,
        "temperature": 0,
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert (await response.content.readline()).startswith(b"data: {")
            response.close()  # The client goes away.
    after = await model.complete([ChatMessage("user", "hi")], GenerationSettings(max_new_tokens=2))
    assert after.completion_tokens == 2
    ended = [r.getMessage().split() for r in caplog.records if r.msg.startswith("Generated")]
    assert ended[0][-1] == "cancelled."
    assert int(ended[0][1]) < 900
