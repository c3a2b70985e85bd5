"""Helpers of the console API tests: config, a collecting channel, an agent client."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.config import Config, load_config
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import Runtime
from bot.server import RUNTIME
from bot.storage.console_store import ConsoleStore
from connectors.console.passwords import hash_password

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
PASSWORD = "correct horse battery"
COOKIE = "helpline_console"


@functools.cache
def password_hash() -> str:
    """One argon2id hash for every test agent (hashing is slow on purpose)."""
    return hash_password(PASSWORD)


def write_config(folder: Path, db_url: str, console: dict[str, Any] | None = None) -> Config:
    """A helpline.yml for the test bot with the given console section."""
    settings = {
        "bot": {"path": str(PROJECT)},
        "storage": {"url": db_url},
        "server": {"max_message_chars": 100},
        "connectors": {"console": {"notice_check_interval_s": 0.05, **(console or {})}},
        "llm": {"enabled": False},
    }
    (folder / "helpline.yml").write_text(json.dumps(settings))
    return load_config(folder / "helpline.yml")


class Collect:
    """A customer channel that keeps what it is given (a test peer)."""

    name = "collect"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(self, message: OutboundMessage) -> None:
        self.sent.append(message)

    def texts(self, conversation: str) -> list[str]:
        return [m.text for m in self.sent if m.conversation_id == conversation]


async def eventually(check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it returns something truthy (a hang guard, not a threshold)."""
    async with asyncio.timeout(20):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.01)


def runtime_of(client: TestClient[Any, Any]) -> Runtime:
    return client.server.app[RUNTIME]


def db_of(client: TestClient[Any, Any]) -> ConsoleStore:
    return ConsoleStore(runtime_of(client).store)


async def add_agent(
    client: TestClient[Any, Any], email: str, name: str, role: str = "agent"
) -> dict[str, Any]:
    return await db_of(client).create_agent(email, name, role, password_hash())


async def customer_says(
    client: TestClient[Any, Any], conversation: str, text: str, message_id: str
) -> None:
    """A customer message on the collecting channel, through the dispatcher."""
    message = InboundMessage("collect", conversation, f"cust-{conversation}", text, message_id)
    await runtime_of(client).dispatcher.submit(message)


class AgentClient:
    """An agent's browser: the session cookie and CSRF token sent by hand."""

    def __init__(self, client: TestClient[Any, Any], token: str, csrf: str, agent: Any) -> None:
        self.client = client
        self.token = token
        self.csrf = csrf
        self.agent = agent

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"{COOKIE}={self.token}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = await self.client.request(
            method, "/console/api" + path, json=body, headers=self.headers()
        )
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, data

    async def get(self, path: str) -> Any:
        status, data = await self.call("GET", path)
        assert status == 200, data
        return data

    async def post(self, path: str, body: Any = None) -> Any:
        status, data = await self.call("POST", path, body if body is not None else {})
        assert status in (200, 201), data
        return data


async def login(client: TestClient[Any, Any], email: str, **kw: Any) -> AgentClient:
    resp = await client.post(
        "/console/api/login", json={"email": email, "password": PASSWORD}, **kw
    )
    body = await resp.json()
    assert resp.status == 200, body
    client.session.cookie_jar.clear()  # each AgentClient sends its own cookie
    return AgentClient(client, resp.cookies[COOKIE].value, body["csrf"], body["agent"])
