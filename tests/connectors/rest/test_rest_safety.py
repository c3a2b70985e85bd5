"""The REST channel at its edges: scoped idempotency, auth token, rate limits, bad input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import create_app

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
URL = "/webhooks/rest/webhook"
Make = Callable[[str], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_client(aiohttp_client: ClientFactory, db_url: str, tmp_path: Path) -> Make:
    async def make(rest: str = "") -> TestClient[Any, Any]:
        (tmp_path / "helpline.yml").write_text(
            f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
            f"connectors:\n  rest:\n    enabled: true\n{rest}"
            "llm:\n  enabled: false\n"
        )
        config = load_config(tmp_path / "helpline.yml")
        return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))

    return make


async def post(client: TestClient[Any, Any], body: Any, **kw: Any) -> tuple[int, Any]:
    resp = await client.post(URL, json=body, **kw)
    return resp.status, await resp.json()


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in replies]


@pytest.mark.parametrize("how", ["body", "header", "empty"])
async def test_a_message_id_never_reaches_another_senders_conversation(
    make_client: Make, how: str
) -> None:
    client = await make_client()
    key = "" if how == "empty" else "2"

    def body(sender: str, text: str) -> tuple[dict[str, Any], dict[str, str]]:
        if how == "header":
            return {"sender": sender, "message": text}, {"Idempotency-Key": key}
        return {"sender": sender, "message": text, "message_id": key}, {}

    await post(client, {"sender": "alice", "message": "/check_order"})
    alice_body, alice_headers = body("alice", "HL-10001")
    _, alice = await post(client, alice_body, headers=alice_headers)
    assert "HL-10001" in " ".join(texts(alice))
    mallory_body, mallory_headers = body("mallory", "/greet")
    status, mallory = await post(client, mallory_body, headers=mallory_headers)
    assert status == 200
    assert all(r["recipient_id"] == "mallory" for r in mallory)
    assert "HL-10001" not in " ".join(texts(mallory))
    assert mallory, "mallory's own message was answered"


async def test_an_empty_message_id_means_no_idempotency(make_client: Make) -> None:
    client = await make_client()
    first = await post(client, {"sender": "ann", "message": "/greet", "message_id": ""})
    second = await post(client, {"sender": "ann", "message": "/check_order", "message_id": ""})
    assert texts(first[1]) != texts(second[1])
    assert texts(second[1]) == ["What is your order number?"]


async def test_the_auth_token_is_required_when_configured(make_client: Make) -> None:
    client = await make_client("    auth_token: s3cret-token\n")
    message = {"sender": "u", "message": "/greet"}
    status, answer = await post(client, message)
    assert (status, answer["error"]) == (401, "unauthorized")
    status, _ = await post(client, message, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = await post(client, message, headers={"Authorization": "Bearer s3cret-token"})
    assert status == 200
    resp = await client.post(URL + "?token=s3cret-token", json=message)
    assert resp.status == 200


async def test_a_sender_over_its_rate_gets_429_with_retry_after(make_client: Make) -> None:
    client = await make_client("    sender_rate: {per_second: 0.01, burst: 2}\n")
    statuses = [(await post(client, {"sender": "spam", "message": "hi"}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    resp = await client.post(URL, json={"sender": "spam", "message": "hi"})
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"] == "rate_limited"
    status, _ = await post(client, {"sender": "someone-else", "message": "hi"})
    assert status == 200


async def test_an_ip_rotating_senders_is_limited(make_client: Make) -> None:
    client = await make_client("    ip_rate: {per_second: 0.01, burst: 3}\n")
    statuses = [(await post(client, {"sender": f"s{i}", "message": "hi"}))[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]


RAW_BODIES = [
    b'{"sender": "u", "message": "\\ud800"}',
    b'{"sender": "\\udfff", "message": "hi"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"sender": "u", "message": "hi", "metadata": {"n": ' + b"9" * 5000 + b"}}",
    b'{"sender": "u", "message": "hi", "metadata": {"n": NaN}}',
    b'{"sender": "u", "message": "hi", "metadata": {"n": 1e999}}',
    b'{"sender": "u", "message": "nul \\u0000 here"}',
    b'{"sender": "u", "message": "\xff\xfe"}',
    b'{"sender": "u", "message": "hi", "message_id": "' + b"m" * 300 + b'"}',
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
async def test_malformed_bodies_get_400_with_a_reason(make_client: Make, raw: bytes) -> None:
    client = await make_client("    max_body_bytes: 100000\n")
    resp = await client.post(URL, data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    answer = await resp.json()
    assert answer["error"] in {"invalid_json", "invalid_body"}
    assert answer["reason"]
    status, _ = await post(client, {"sender": "u", "message": "/greet"})
    assert status == 200, "the channel still works"


async def test_no_answer_names_the_server_software(make_client: Make) -> None:
    client = await make_client()
    for resp in (
        await client.get("/healthz"),
        await client.post(URL, data=b"{"),
        await client.get("/no/such/page"),
    ):
        assert resp.headers["Server"] == "Helpline"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
