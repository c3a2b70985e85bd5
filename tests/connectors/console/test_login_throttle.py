"""Login throttling as OWASP advises: an attacker's failures never lock the agent out.

Failures count per (email, client): the client is the browser's device
cookie when it logged in as that email before, else its IP. Strangers are
also limited per email and per IP, over more failures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from connectors.console.devices import COOKIE as DEVICE
from tests.connectors.console.api_support import PASSWORD, Collect, add_agent, write_config

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ANA = "ana@example.com"


@pytest.fixture
async def client(
    request: pytest.FixtureRequest,
    aiohttp_client: ClientFactory,
    db_url: str,
    tmp_path: Path,
) -> TestClient[Any, Any]:
    """The app; ``parametrize("client", [{console section}], indirect=True)`` configures it."""
    config = write_config(tmp_path, db_url, getattr(request, "param", {}))
    runtime = Runtime(config, nlu=NoNLU())
    app = create_app(config, runtime)
    runtime.dispatcher.register(Collect())
    client = await aiohttp_client(app)
    await add_agent(client, ANA, "Ana")
    await add_agent(client, "ben@example.com", "Ben")
    return client


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if request handling blocks the event loop."""


async def attempt(
    client: TestClient[Any, Any],
    password: str,
    *,
    email: str = ANA,
    ip: str | None = None,
    device: str | None = None,
) -> tuple[int, str | None]:
    """One login; its status and the device cookie it set (the browser keeps nothing else)."""
    headers = {"X-Forwarded-For": ip} if ip else {}
    if device:
        headers["Cookie"] = f"{DEVICE}={device}"
    resp = await client.post(
        "/console/api/login", json={"email": email, "password": password}, headers=headers
    )
    client.session.cookie_jar.clear()
    if resp.status == 429:
        assert int(resp.headers["Retry-After"]) > 0
        assert (await resp.json())["error"] == "throttled"
    cookie = resp.cookies.get(DEVICE)
    return resp.status, None if cookie is None else cookie.value


TRUSTED = [{"trust_forwarded_for": True}]


@pytest.mark.parametrize("client", TRUSTED, indirect=True)
async def test_an_attacker_elsewhere_cannot_lock_the_agent_out(
    client: TestClient[Any, Any],
) -> None:
    statuses = [(await attempt(client, "guess", ip="203.0.113.9"))[0] for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3  # the attacker is throttled
    assert (await attempt(client, PASSWORD, ip="203.0.113.9"))[0] == 429
    assert (await attempt(client, PASSWORD, ip="198.51.100.7"))[0] == 200  # Ana is not


async def test_behind_a_proxy_the_agents_own_browser_still_gets_in(
    client: TestClient[Any, Any],
) -> None:
    """Without ``trust_forwarded_for`` every client has the proxy's IP."""
    status, device = await attempt(client, PASSWORD)
    assert status == 200
    assert device
    statuses = [(await attempt(client, "guess"))[0] for _ in range(12)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert (await attempt(client, PASSWORD))[0] == 429  # a stranger, like the attacker
    assert (await attempt(client, PASSWORD, email="ben@example.com"))[0] == 200  # the team too
    assert (await attempt(client, PASSWORD, device=device))[0] == 200  # Ana's browser


async def test_a_known_browser_is_throttled_on_its_own(client: TestClient[Any, Any]) -> None:
    _, device = await attempt(client, PASSWORD)
    assert device
    statuses = [(await attempt(client, "typo", device=device))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    nonce = device.split(".")[0]
    forged = f"{nonce}.{'0' * 64}"
    assert (await attempt(client, PASSWORD, device=forged))[0] == 200  # a stranger, unthrottled
    _, other = await attempt(client, PASSWORD, email="ben@example.com")
    assert (await attempt(client, PASSWORD, device=other))[0] == 200  # Ben's cookie: a stranger


@pytest.mark.parametrize("client", TRUSTED, indirect=True)
async def test_guessing_from_many_addresses_stops_strangers_only(
    client: TestClient[Any, Any],
) -> None:
    _, device = await attempt(client, PASSWORD, ip="198.51.100.7")
    for n in range(10):
        for _ in range(2):
            assert (await attempt(client, "guess", ip=f"203.0.113.{n}"))[0] == 401
    assert (await attempt(client, PASSWORD, ip="192.0.2.1"))[0] == 429  # 20 stranger failures
    assert (await attempt(client, PASSWORD, email="ben@example.com", ip="192.0.2.1"))[0] == 200
    assert (await attempt(client, PASSWORD, ip="198.51.100.7", device=device))[0] == 200


@pytest.mark.parametrize("client", TRUSTED, indirect=True)
async def test_one_address_trying_many_accounts_is_stopped(client: TestClient[Any, Any]) -> None:
    for n in range(20):
        status, _ = await attempt(client, "guess", email=f"who{n}@example.com", ip="203.0.113.5")
        assert status == 401
    assert (await attempt(client, PASSWORD, ip="203.0.113.5"))[0] == 429
    assert (await attempt(client, PASSWORD, ip="203.0.113.6"))[0] == 200
