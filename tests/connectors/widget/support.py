"""Helpers of the widget tests: a config writer and a small protocol client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, async_playwright

from bot.config import Config, load_config

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
RESPONSES = Path(__file__).parent / "responses"
SECRET = "test-identity-secret"
Frame = dict[str, Any]


def write_config(folder: Path, db_url: str, widget: dict[str, Any]) -> Config:
    """A helpline.yml for the test bot with the given widget section."""
    settings = {
        "bot": {"path": str(PROJECT)},
        "storage": {"url": db_url},
        "server": {"max_message_chars": 100},
        "connectors": {"widget": widget},
        "llm": {"enabled": False},
    }
    (folder / "helpline.yml").write_text(json.dumps(settings))
    return load_config(folder / "helpline.yml")


def new_id() -> str:
    return uuid.uuid4().hex


class WidgetSocket:
    """One widget connection, speaking the frames the browser script speaks."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, visitor: str, secret: str | None = None
    ) -> None:
        self.ws = ws
        self.visitor = visitor
        self.secret = secret
        self.frames: list[Frame] = []

    async def hello(self, last_id: int = 0, resume: bool = False, **extra: Any) -> Frame:
        """Open the session; return the server's hello (replayed messages land in frames).

        The socket presents its secret, if it has one, and keeps the visitor id
        and secret the server answers with, as the browser script does.
        """
        frame = {"type": "hello", "visitor": self.visitor, "last_id": last_id, "resume": resume}
        if self.secret is not None:
            frame["secret"] = self.secret
        await self.ws.send_json({**frame, **extra})
        hello = await self.next(lambda f: f["type"] == "hello")
        await self.next(lambda f: f["type"] == "synced")
        self.visitor = hello["visitor"]
        self.secret = hello.get("secret", self.secret)
        return hello

    async def send(self, text: str, client_id: str | None = None, **extra: Any) -> str:
        client_id = client_id or new_id()
        await self.ws.send_json({"type": "message", "client_id": client_id, "text": text, **extra})
        return client_id

    async def receive(self) -> Frame:
        async with asyncio.timeout(20):  # a hang guard, not a timing threshold
            frame: Frame = await self.ws.receive_json()
        self.frames.append(frame)
        return frame

    async def next(self, wanted: Callable[[Frame], bool]) -> Frame:
        """Read frames until one is ``wanted``; every frame read stays in ``frames``."""
        while True:
            frame = await self.receive()
            if wanted(frame):
                return frame

    async def reply(self, text: str) -> Frame:
        return await self.next(
            lambda f: f["type"] == "message" and f["direction"] == "out" and f["text"] == text
        )

    def messages(self, direction: str | None = None) -> list[Frame]:
        return [
            f for f in self.frames if f["type"] == "message" and direction in (None, f["direction"])
        ]


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.asynccontextmanager
async def chromium(artifacts: Path) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; screenshots go to ``artifacts``."""
    await asyncio.to_thread(artifacts.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
