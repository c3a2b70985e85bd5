"""The Chat Completions wire format: request bodies, replies, SSE events."""

from __future__ import annotations

import pytest

from llm.cloud.wire import MalformedReply, SSEDecoder, build_request, parse_chunk, parse_reply
from llm.types import ChatMessage, GenerationSettings


def test_build_request_carries_settings() -> None:
    settings = GenerationSettings(temperature=0.3, top_p=0.9, stop=("\nUser:",), seed=4)
    body = build_request("m", [ChatMessage("user", "hi")], settings, max_tokens=12, stream=True)
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 12,
        "temperature": 0.3,
        "top_p": 0.9,
        "logprobs": True,
        "stop": ["\nUser:"],
        "seed": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"choices": []},
        {"choices": "x"},
        {"choices": [{"message": None}]},
        {"choices": [{"message": {"content": None}}]},
    ],
)
def test_parse_reply_refuses_malformed(data: object) -> None:
    with pytest.raises(MalformedReply):
        parse_reply(data)


def test_parse_reply_tolerates_odd_usage_and_logprobs() -> None:
    reply = parse_reply(
        {
            "choices": [{"message": {"content": "x"}, "logprobs": {"content": [{"token": 1}]}}],
            "usage": {"prompt_tokens": "many"},
        }
    )
    assert (reply.text, reply.tokens, reply.usage, reply.finish_reason) == ("x", (), None, "stop")


def test_sse_decoder_joins_multiline_data_and_skips_comments() -> None:
    decoder = SSEDecoder()
    lines = [b": keep-alive\n", b"event: message\n", b'data: {"a":\n', b"data: 1}\r\n", b"\n"]
    assert [decoder.line(line) for line in lines] == [None, None, None, None, '{"a":\n1}']
    assert decoder.line(b"\n") is None
    decoder.line(b"data: [DONE]")
    assert decoder.end() == "[DONE]"


def test_parse_chunk_kinds() -> None:
    usage = parse_chunk('{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}')
    assert usage.usage is not None
    assert (usage.text, usage.usage.prompt_tokens) == ("", 3)
    finish = parse_chunk('{"choices": [{"delta": {}, "finish_reason": "length"}]}')
    assert (finish.text, finish.finish_reason) == ("", "length")
    with pytest.raises(ValueError):
        parse_chunk("{not json")
    with pytest.raises(MalformedReply):
        parse_chunk('{"choices": []}')
