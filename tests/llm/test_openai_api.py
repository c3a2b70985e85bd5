"""The OpenAI-compatible endpoint, driven by the official ``openai`` client over a real port."""

from __future__ import annotations

import asyncio
import json
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
from llm.openai_api import ENDPOINT, create_openai_app
from llm.types import ChatMessage, GenerationSettings
from tests.llm.local.test_runtime import until
from tests.llm.local.tiny_llm import build_tiny_model
from tests.llm.workers import sse_payloads

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-llm")


@pytest.fixture
async def model(tiny_dir: Path) -> AsyncIterator[LocalModel]:
    async with LocalModel.load(tiny_dir / "onnx", threads=1, max_wait_s=0.05) as loaded:
        yield loaded


@pytest.fixture
def sub_app(model: LocalModel) -> web.Application:
    return create_openai_app(model, "tiny", max_tokens=1000)


@pytest.fixture
async def server(sub_app: web.Application) -> AsyncIterator[BaseTestServer]:
    app = web.Application()
    app.add_subapp("/v1", sub_app)
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


def _body(**extra: Any) -> bytes:
    return json.dumps({"model": "tiny", "messages": QUESTION, **extra}).encode()


_HI = '{"role": "user", "content": "hi"}'


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (b'{"messages": [{"role": {"a": 1}, "content": "hi"}]}', "messages[0].role", None),
        (_body(seed=-1), "seed", None),
        (_body(stream="false"), "stream", None),
        (_body(logprobs="yes"), "logprobs", None),
        (_body(stream_options="x"), "stream_options", None),
        (_body(messages=[{"role": "user", "content": "hi"}] * 3000), "messages", None),
        (_body(messages=[5]), "messages[0]", None),
        (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', None, None),
        (b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, None),
        (f'{{"messages": [{_HI}], "max_tokens": {"9" * 5000}}}'.encode(), None, None),
        (f'{{"messages": [{_HI}], "seed": {2**64}}}'.encode(), None, None),
        (b"\xff\xfe", None, None),
        (b"[1, 2]", None, None),
        (_body(max_tokens=1001), "max_tokens", None),
        (
            _body(messages=[{"role": "user", "content": "parcel " * 40}], max_tokens=1000),
            "messages",
            "context_length_exceeded",
        ),
        (
            _body(messages=[{"role": "user", "content": "parcel " * 1500}]),
            "messages",
            "context_length_exceeded",
        ),
    ],
)
async def test_malformed_requests_are_400_with_an_openai_error(
    server: BaseTestServer, raw: bytes, param: str | None, code: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url("/v1/chat/completions"), data=raw, headers=headers) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert (error["param"], error["code"]) == (param, code)


async def test_without_max_tokens_the_answer_gets_what_the_context_leaves(
    client: openai.AsyncOpenAI,
) -> None:
    long = [{"role": "user", "content": "parcel " * 500}]
    answer = await client.chat.completions.create(
        model="tiny",
        messages=long,  # type: ignore[arg-type]
        temperature=0,
    )
    assert answer.usage is not None
    assert answer.usage.prompt_tokens + answer.usage.completion_tokens <= 1024


async def test_client_leaving_a_non_streamed_answer_cancels_generation(
    sub_app: web.Application, model: LocalModel, caplog: pytest.LogCaptureFixture
) -> None:
    # Served as helpline run and serve-model serve: an AppRunner whose handlers are
    # not cancelled when the client goes (aiohttp's TestServer would cancel them).
    caplog.set_level(logging.DEBUG, logger="llm.local.runtime")
    app = web.Application()
    app.add_subapp("/v1", sub_app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions"
        body = {"model": "tiny", "messages": QUESTION, "max_tokens": 900, "temperature": 0}
        async with aiohttp.ClientSession() as session:
            asking = asyncio.create_task(session.post(url, json=body))
            await until(lambda: model.gate.busy)  # It generates.
            asking.cancel()  # The client goes away.
            with pytest.raises(asyncio.CancelledError):
                await asking
        await until(lambda: not model.gate.busy)
    finally:
        await runner.cleanup()
    ended = [r.getMessage().split() for r in caplog.records if r.msg.startswith("Generated")]
    assert ended[0][-1] == "cancelled."
    assert int(ended[0][1]) < 900


async def test_customer_turns_go_before_queued_api_calls(tiny_dir: Path) -> None:
    async with LocalModel.load(tiny_dir / "onnx", threads=1, max_queue=2) as busy:
        app = web.Application()
        app.add_subapp("/v1", create_openai_app(busy, "tiny"))
        async with (
            TestServer(app, host="127.0.0.1") as started,
            openai.AsyncOpenAI(
                base_url=str(started.make_url("/v1")), api_key="x", max_retries=0
            ) as api,
        ):
            done: list[str] = []

            async def call(name: str) -> None:
                await api.chat.completions.create(model="tiny", messages=QUESTION, max_tokens=2)
                done.append(name)

            async def turn() -> None:
                await busy.complete([ChatMessage("user", "hi")], GenerationSettings(2))
                done.append("customer")

            await busy.gate.acquire()  # Someone holds the model.
            calls = [asyncio.create_task(call(f"api{i}")) for i in range(2)]
            await until(lambda: busy.queue_depth == 2)  # The API calls fill their queue...
            customer = asyncio.create_task(turn())
            await until(lambda: busy.queue_depth == 3)  # ...but the customer gets in,
            busy.gate.release()
            await asyncio.gather(customer, *calls)
    assert done[0] == "customer"  # and goes first.


async def test_drain_ends_a_running_stream_with_done_and_refuses_new(
    server: BaseTestServer, sub_app: web.Application, model: LocalModel
) -> None:
    body = {"model": "tiny", "messages": QUESTION, "max_tokens": 900, "stream": True}
    endpoint = sub_app[ENDPOINT]
    async with aiohttp.ClientSession() as session:
        url = server.make_url("/v1/chat/completions")
        async with session.post(url, json=body) as running:
            assert (await running.content.readline()).startswith(b"data: {")
            assert await endpoint.drain(0.0)
            events = sse_payloads((await running.read()).decode())
        async with session.post(url, json=body) as refused:
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "2"
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "server_shutting_down"
    await until(lambda: not model.gate.busy)  # The generation stopped.
