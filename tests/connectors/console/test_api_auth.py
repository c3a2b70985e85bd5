"""Console API security: login, sessions, cookies, CSRF, throttling, permissions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from tests.connectors.console.api_support import (
    COOKIE,
    PASSWORD,
    Collect,
    add_agent,
    customer_says,
    db_of,
    eventually,
    login,
    write_config,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ENDPOINTS = [
    ("POST", "/logout"),
    ("GET", "/me"),
    ("PUT", "/me/presence"),
    ("GET", "/agents"),
    ("POST", "/agents"),
    ("PATCH", "/agents/1"),
    ("GET", "/conversations"),
    ("GET", "/conversations/1"),
    ("GET", "/conversations/987654"),
    ("POST", "/conversations/1/claim"),
    ("POST", "/conversations/1/assign"),
    ("POST", "/conversations/1/reply"),
    ("POST", "/conversations/1/notes"),
    ("POST", "/conversations/1/typing"),
    ("POST", "/conversations/1/resolve"),
    ("POST", "/conversations/1/handback"),
    ("GET", "/canned"),
    ("POST", "/canned"),
    ("DELETE", "/canned/1"),
    ("GET", "/canned/1/render?conversation=1"),
    ("GET", "/stats"),
    ("GET", "/audit"),
    ("GET", "/ws"),
]
CHANGING = [(m, p) for m, p in ENDPOINTS if m not in ("GET", "HEAD")]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    config = write_config(tmp_path, db_url)
    runtime = Runtime(config, nlu=NoNLU())
    app = create_app(config, runtime)
    runtime.dispatcher.register(Collect())
    client = await aiohttp_client(app)
    await add_agent(client, "Ana@Example.com", "Ana")
    await add_agent(client, "boss@example.com", "Bea", role="admin")
    return client


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if request handling blocks the event loop."""


async def test_login_me_logout(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    assert ana.agent == {
        "id": ana.agent["id"],
        "email": "ana@example.com",
        "name": "Ana",
        "role": "agent",
        "presence": "away",
        "disabled": False,
    }
    me = await ana.get("/me")
    assert me["csrf"] == ana.csrf
    assert me["email"] == "ana@example.com"
    status, _ = await ana.call("POST", "/logout")
    assert status == 204
    status, body = await ana.call("GET", "/me")
    assert status == 401
    assert body["error"] == "unauthenticated"


async def test_wrong_password_and_unknown_email_look_the_same(
    client: TestClient[Any, Any],
) -> None:
    answers = []
    for email, password in (("ana@example.com", "nope nope"), ("who@example.com", PASSWORD)):
        resp = await client.post("/console/api/login", json={"email": email, "password": password})
        answers.append((resp.status, await resp.json(), COOKIE in resp.cookies))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (
        401,
        {"error": "unauthenticated", "reason": "wrong email or password"},
    )
    assert answers[0][2] is False


async def test_login_is_throttled_after_five_failures(client: TestClient[Any, Any]) -> None:
    for _ in range(5):
        resp = await client.post(
            "/console/api/login", json={"email": "ana@example.com", "password": "bad password"}
        )
        assert resp.status == 401
    resp = await client.post(
        "/console/api/login", json={"email": "ana@example.com", "password": PASSWORD}
    )
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 15 * 60
    assert (await resp.json())["error"] == "throttled"
    entries = [e for e in await _audit(client) if e["action"] == "login_failed"]
    assert len(entries) == 5


async def _audit(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    return await db_of(client).audit_entries(100)


async def test_cookie_flags(client: TestClient[Any, Any]) -> None:
    body = {"email": "ana@example.com", "password": PASSWORD}
    plain = await client.post("/console/api/login", json=body)
    cookie = _session_cookie(plain.headers.getall("Set-Cookie"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie
    proxied = await client.post(
        "/console/api/login", json=body, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in _session_cookie(proxied.headers.getall("Set-Cookie"))


def _session_cookie(headers: list[str]) -> str:
    (cookie,) = [h for h in headers if h.startswith(COOKIE + "=")]
    return cookie


async def test_a_planted_session_cookie_is_never_promoted(client: TestClient[Any, Any]) -> None:
    planted = "attacker-chosen-token"
    ana = await login(client, "ana@example.com", headers={"Cookie": f"{COOKIE}={planted}"})
    assert ana.token != planted
    resp = await client.get("/console/api/me", headers={"Cookie": f"{COOKIE}={planted}"})
    assert resp.status == 401
    first = ana.token
    again = await login(client, "ana@example.com", headers={"Cookie": f"{COOKIE}={first}"})
    assert again.token != first
    resp = await client.get("/console/api/me", headers={"Cookie": f"{COOKIE}={first}"})
    assert resp.status == 401  # the session the browser had before logging in again is gone


async def test_every_endpoint_needs_a_session(client: TestClient[Any, Any]) -> None:
    for method, path in ENDPOINTS:
        for cookie in ({}, {"Cookie": f"{COOKIE}=guessed"}):
            resp = await client.request(method, "/console/api" + path, json={}, headers=cookie)
            assert resp.status == 401, (method, path)
            assert (await resp.json())["error"] == "unauthenticated"


async def test_every_state_changing_endpoint_needs_the_csrf_token(
    client: TestClient[Any, Any],
) -> None:
    ana = await login(client, "ana@example.com")
    for method, path in CHANGING:
        for header in ({}, {"X-CSRF-Token": "wrong"}):
            headers = {**ana.headers(csrf=False), **header}
            resp = await client.request(method, "/console/api" + path, json={}, headers=headers)
            assert resp.status == 403, (method, path)
            assert (await resp.json())["error"] == "csrf"
    status, _ = await ana.call("GET", "/me")
    assert status == 200


async def test_admin_only_endpoints_refuse_agents(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    boss = await login(client, "boss@example.com")
    new = {"email": "cy@example.com", "name": "Cy", "role": "agent", "password": PASSWORD}
    canned = {"shortcut": "hi", "title": "Hi", "text": "Hello {customer_name}"}
    for method, path, body in (
        ("POST", "/agents", new),
        ("PATCH", f"/agents/{ana.agent['id']}", {"role": "admin"}),
        ("POST", "/canned", canned),
        ("GET", "/stats", None),
        ("GET", "/audit", None),
    ):
        status, answer = await ana.call(method, path, body)
        assert (status, answer["error"]) == (403, "forbidden"), path
    status, created = await boss.call("POST", "/agents", new)
    assert status == 201
    assert created["email"] == "cy@example.com"
    cy = await login(client, "cy@example.com")
    status, _ = await boss.call("PATCH", f"/agents/{created['id']}", {"disabled": True})
    assert status == 200
    assert (await cy.call("GET", "/me"))[0] == 401  # disabling ends the sessions
    agents = (await ana.get("/agents"))["agents"]
    assert {a["name"] for a in agents} == {"Ana", "Bea"}
    assert "email" not in agents[0]
    actions = [e["action"] for e in (await boss.get("/audit"))["entries"]]
    assert "agent_create" in actions
    assert "agent_update" in actions


async def test_xss_payloads_are_stored_and_returned_verbatim(
    client: TestClient[Any, Any],
) -> None:
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    await customer_says(client, "x1", "/human_handoff", "x1-1")
    ana = await login(client, "ana@example.com")
    cid = await eventually(lambda: _first_id(ana))
    await customer_says(client, "x1", payload, "x1-2")
    await ana.post(f"/conversations/{cid}/notes", {"text": payload})
    await ana.post(f"/conversations/{cid}/reply", {"text": payload})
    resp = await client.get(f"/console/api/conversations/{cid}", headers=ana.headers())
    assert resp.content_type == "application/json"
    detail = await resp.json()
    texts = [m["text"] for m in detail["messages"]]
    assert texts.count(payload) == 2
    assert detail["notes"][0]["text"] == payload


async def _first_id(ana: Any) -> int | None:
    rows = (await ana.get("/conversations?view=needs_human"))["conversations"]
    return rows[0]["id"] if rows else None


async def test_pages_redirect_until_logged_in(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/console/login"
    assert (await client.get("/console/login")).status == 200
    ana = await login(client, "ana@example.com")
    resp = await client.get("/console", headers=ana.headers(), allow_redirects=False)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert (await client.get("/console/static/..%2Fconnector.py")).status == 404
