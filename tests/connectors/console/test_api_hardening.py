"""Console API hardening: malformed input gets a 4xx with a reason, and the security headers."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from tests.connectors.console.api_support import (
    AgentClient,
    Collect,
    add_agent,
    login,
    write_config,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
HUGE = str(2**64 + 7)
#: Every console route that takes an id in its path.
ID_PATHS = [
    ("GET", "/conversations/{}"),
    ("POST", "/conversations/{}/claim"),
    ("POST", "/conversations/{}/reply"),
    ("POST", "/conversations/{}/notes"),
    ("POST", "/conversations/{}/typing"),
    ("POST", "/conversations/{}/resolve"),
    ("POST", "/conversations/{}/handback"),
    ("POST", "/conversations/{}/assign"),
    ("PATCH", "/agents/{}"),
    ("DELETE", "/canned/{}"),
    ("GET", "/canned/{}/render"),
]
#: Every console route that reads a JSON body.
BODY_PATHS = [
    ("POST", "/login"),
    ("PUT", "/me/presence"),
    ("POST", "/agents"),
    ("PATCH", "/agents/{agent}"),
    ("POST", "/canned"),
    ("POST", "/conversations/1/assign"),
    ("POST", "/conversations/1/reply"),
    ("POST", "/conversations/1/notes"),
    ("POST", "/conversations/1/resolve"),
]
BAD_BODIES = [
    b'{"text": "\\ud800", "email": "\\ud800", "password": "x", "presence": "\\udfff"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' * 5000 + b"1" + b"}" * 5000,
    b'{"text": "hi", "agent_id": ' + b"9" * 5000 + b"}",
    b'{"agent_id": 99999999999999999999}',
    b'{"text": NaN, "csat": Infinity}',
    b'{"text": "nul \\u0000 here", "email": "a\\u0000@x.io", "password": "x"}',
    b"\xff\xfe not utf-8",
]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    config = write_config(tmp_path, db_url)
    runtime = Runtime(config, nlu=NoNLU())
    app = create_app(config, runtime)
    runtime.dispatcher.register(Collect())
    client = await aiohttp_client(app)
    await add_agent(client, "boss@example.com", "Bea", role="admin")
    return client


@pytest.fixture
async def boss(client: TestClient[Any, Any], no_blocking: None) -> AgentClient:
    return await login(client, "boss@example.com")


async def send(boss: AgentClient, method: str, path: str, body: bytes) -> tuple[int, Any]:
    headers = {**boss.headers(), "Content-Type": "application/json"}
    url = "/console/api" + path.format(agent=boss.agent["id"])
    resp = await boss.client.request(method, url, data=body, headers=headers)
    assert resp.content_type == "application/json", (path, resp.status, await resp.text())
    return resp.status, await resp.json()


def refused(status: int, answer: Any) -> bool:
    """A 4xx with the usual ``{"error", "reason"}``."""
    return 400 <= status < 500 and isinstance(answer.get("reason"), str) and "error" in answer


async def test_ids_beyond_64_bits_are_not_found(boss: AgentClient) -> None:
    for method, path in ID_PATHS:
        status, answer = await send(boss, method, path.format(HUGE), b'{"text": "hi"}')
        assert (status, answer["error"]) == (404, "not_found"), (method, path, answer)
        assert answer["reason"]
    status, answer = await send(boss, "GET", f"/canned/1/render?conversation={HUGE}", b"")
    assert refused(status, answer), answer


async def test_non_ascii_digits_are_no_id(boss: AgentClient) -> None:
    status, answer = await send(boss, "GET", "/conversations/\u0663", b"")  # Arabic-Indic 3
    assert (status, answer["error"]) == (400, "invalid_id")


async def test_malformed_bodies_get_a_reason(boss: AgentClient) -> None:
    for method, path in BODY_PATHS:
        for body in BAD_BODIES:
            status, answer = await send(boss, method, path, body)
            assert refused(status, answer), (method, path, body[:40], status, answer)


async def test_a_search_with_a_nul_is_refused(boss: AgentClient) -> None:
    status, answer = await send(boss, "GET", "/conversations?q=a%00b", b"")
    assert (status, answer["error"]) == (400, "invalid_query")


async def test_a_too_large_body_gets_a_json_413(boss: AgentClient) -> None:
    body = json.dumps({"text": "x" * 1_100_000}).encode()  # the server takes 1 MiB
    status, answer = await send(boss, "POST", "/conversations/1/notes", body)
    assert (status, answer["error"]) == (413, "too_large")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=8,
    ),
    route=st.sampled_from(BODY_PATHS[1:]),
)
async def test_any_json_body_gets_no_5xx(
    boss: AgentClient, body: Any, route: tuple[str, str]
) -> None:
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    status, answer = await send(boss, *route, raw)
    assert status < 500, (route, raw[:80], answer)
    if status >= 400:
        assert refused(status, answer), answer


async def test_pages_and_answers_carry_the_security_headers(
    client: TestClient[Any, Any], boss: AgentClient
) -> None:
    page = await client.get("/console/login")
    api = await client.get("/console/api/conversations?view=all", headers=boss.headers())
    error = await client.get("/console/api/me")
    asset = await client.get("/console/static/console.js")
    for resp in (page, api, error, asset):
        headers = resp.headers
        assert headers["X-Content-Type-Options"] == "nosniff", resp.url
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Content-Security-Policy" in headers
        assert "aiohttp" not in headers["Server"].lower()
        assert "python" not in headers["Server"].lower()
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    for resp in (api, error):
        assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name", ["console.html", "login.html"])
def test_the_pages_need_no_inline_script_or_style(name: str) -> None:
    html = (Path(__file__).parents[3] / "connectors/console/static" / name).read_text()
    assert "<script>" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"\son[a-z]+\s*=", html) is None  # no onclick= and the like


@pytest.mark.parametrize("name", ["x" * 5000, "a" * 101 + ".js", "..", ".env", "console.js%00"])
async def test_odd_static_file_names_get_404(client: TestClient[Any, Any], name: str) -> None:
    resp = await client.get(f"/console/static/{name}")
    assert resp.status == 404
