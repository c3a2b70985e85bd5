"""A console socket lives only as long as its session: logout and disable close it.

Real sockets against a real app on a real port; ``helpline agents disable``
runs as its own process on the same database, as an administrator would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from connectors.console.sockets import SESSION_ENDED
from tests.connectors.console.api_support import (
    AgentClient,
    customer_says,
    login,
)
from tests.connectors.console.test_api_inbox import handed_off, make_client, read_until
from tests.processes import helpline

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(
    request: pytest.FixtureRequest, aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    """The app; ``parametrize("client", [{console section}], indirect=True)`` configures it."""
    return await make_client(aiohttp_client, db_url, tmp_path, **getattr(request, "param", {}))


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if request handling blocks the event loop."""


async def connect(client: TestClient[Any, Any], agent: AgentClient) -> Any:
    origin = f"http://{client.server.host}:{client.server.port}"
    return await client.ws_connect("/console/api/ws", headers={**agent.headers(), "Origin": origin})


async def frames_until_closed(ws: Any) -> tuple[list[dict[str, Any]], Any]:
    """Every frame the socket gets until the server closes it, and the close code.

    The code is the one in the server's close frame (what a browser reports).
    """
    frames = []
    async with asyncio.timeout(20):  # a hang guard
        while True:
            message = await ws.receive()
            if message.type == WSMsgType.TEXT:
                frames.append(json.loads(message.data))
            elif message.type == WSMsgType.CLOSE:
                return frames, message.data
            else:
                raise AssertionError(f"the socket ended without a close frame: {message}")


async def disable_with_the_cli(folder: Path, email: str) -> None:
    done = await asyncio.to_thread(
        helpline, "--config", str(folder / "helpline.yml"), "agents", "disable", "--email", email
    )
    assert done.returncode == 0, done.stderr


async def test_an_agent_disabled_by_the_cli_reads_no_more_messages(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    ana = await login(client, "ana@example.com")
    ws = await connect(client, ana)
    await handed_off(client, ana, "d1")
    await read_until(ws, [], lambda f: f["type"] == "handoff")
    await disable_with_the_cli(tmp_path, "ana@example.com")
    for n in range(6):
        await customer_says(client, "d1", f"secret {n}", f"d1-s{n}")
    frames, code = await frames_until_closed(ws)
    assert [f for f in frames if "secret" in json.dumps(f)] == []
    assert code == SESSION_ENDED
    assert frames[-1] == {"type": "session_ended"}


@pytest.mark.parametrize("client", [{"session_check_interval_s": 0.05}], indirect=True)
async def test_a_quiet_socket_closes_once_the_cli_disables_its_agent(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    ana = await login(client, "ana@example.com")
    ws = await connect(client, ana)
    await disable_with_the_cli(tmp_path, "ana@example.com")
    _, code = await frames_until_closed(ws)  # no event at all: the periodic check closes it
    assert code == SESSION_ENDED


async def test_disabling_in_the_console_closes_the_agents_sockets(
    client: TestClient[Any, Any],
) -> None:
    ana, boss = await login(client, "ana@example.com"), await login(client, "boss@example.com")
    await ana.call("PUT", "/me/presence", {"presence": "online"})
    ana_ws, boss_ws = await connect(client, ana), await connect(client, boss)
    status, _ = await boss.call("PATCH", f"/agents/{ana.agent['id']}", {"disabled": True})
    assert status == 200
    _, code = await frames_until_closed(ana_ws)  # at once: nothing else happens meanwhile
    assert code == SESSION_ENDED
    away = {"id": ana.agent["id"], "name": "Ana", "presence": "away"}
    await read_until(boss_ws, [], lambda f: f["type"] == "presence" and f["agent"] == away)
    await customer_says(client, "d2", "/human_handoff", "d2-h")
    await read_until(boss_ws, [], lambda f: f["type"] == "handoff")
    assert not boss_ws.closed
    await boss_ws.close()


async def test_logout_closes_the_sessions_socket_and_goes_away(
    client: TestClient[Any, Any],
) -> None:
    ana, ben = await login(client, "ana@example.com"), await login(client, "ben@example.com")
    ana_again = await login(client, "ana@example.com")  # a second tab or device
    await ana.call("PUT", "/me/presence", {"presence": "online"})
    ana_ws, other_ws, ben_ws = [await connect(client, a) for a in (ana, ana_again, ben)]
    status, _ = await ana.call("POST", "/logout")
    assert status == 204
    _, code = await frames_until_closed(ana_ws)
    assert code == SESSION_ENDED
    away = {"id": ana.agent["id"], "name": "Ana", "presence": "away"}
    await read_until(ben_ws, [], lambda f: f["type"] == "presence" and f["agent"] == away)
    agents = (await ben.get("/agents"))["agents"]
    assert [a["presence"] for a in agents if a["name"] == "Ana"] == ["away"]
    await customer_says(client, "d3", "/human_handoff", "d3-h")
    await read_until(other_ws, [], lambda f: f["type"] == "handoff")  # its own session lives
    assert not other_ws.closed
    for ws in (other_ws, ben_ws):
        await ws.close()
