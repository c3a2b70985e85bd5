"""The fake server speaks the protocol well enough for the official client."""

from __future__ import annotations

import pytest

from tests.llm.cloud.fake_openai import FakeOpenAI, ok, status, stream

openai = pytest.importorskip("openai")


async def test_official_client_against_fake_server(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        ok("Hi!", usage=(7, 2), logprobs=[("Hi", -0.1), ("!", -0.2)]),
        stream(["a", "b"]),
        status(400),
    )
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="k", max_retries=0)
    try:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["fake-model"]
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], logprobs=True
        )
        assert reply.choices[0].message.content == "Hi!"
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == 7
        assert reply.choices[0].logprobs.content[1].logprob == -0.2
        chunks = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        assert text == "ab"
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="m", messages=[])
    finally:
        await client.close()
    assert fake_openai.chat_requests[0].headers["Authorization"] == "Bearer k"
    assert fake_openai.pending == 0
