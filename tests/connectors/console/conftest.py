"""Fixtures of the console browser journeys: one real app, the fake Slack, a browser.

``desk`` is one Helpline on a real port (SQLite) with the widget, Slack (in
events mode, against the fake Slack on its own port) and the console, plus a
shop page on another origin that embeds the widget. ``browser`` is Debian
Chromium driven by Playwright. Both live for the module; every test opens
fresh browser contexts (a fresh customer, a fresh agent session).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiosmtpd.controller import Controller
from playwright.async_api import Browser

from bot.bench_slack import slack_section
from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from tests.connectors.email.conftest import (
    Dovecot,
    SinkHandler,
    SmtpSink,
    dovecot,  # noqa: F401  (the Dovecot of the email tests, started once per session)
    email_section,
    free_port,
)
from tests.connectors.slack.fake_slack import FakeSlack
from tests.connectors.slack.helpers import signed
from tests.connectors.widget.support import PROJECT, chromium
from tests.connectors.widget.test_browser import _serve, _shop_page

ARTIFACTS = Path(__file__).parents[3] / "var" / "test-artifacts" / "console"
AGENT_EMAIL, AGENT_NAME, AGENT_PASSWORD = "ana@helpline.test", "Ana", "correct horse battery"


def settings(db_url: str, connectors: dict[str, Any]) -> dict[str, Any]:
    """A helpline.yml (as a dict) for the test bot with the given connector sections."""
    return {
        "bot": {"path": str(PROJECT)},
        "storage": {"url": db_url},
        "llm": {"enabled": False},
        "connectors": connectors,
    }


async def start(folder: Path, config: dict[str, Any] | str) -> tuple[Runtime, web.AppRunner, str]:
    """Start Helpline on a free port with ``config`` (a dict or YAML); return it and its URL."""
    path = folder / "helpline.yml"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    await add_agent(path)
    loaded = load_config(path)
    runtime = Runtime(loaded, nlu=NoNLU())
    runner, port = await _serve(create_app(loaded, runtime))
    return runtime, runner, f"http://127.0.0.1:{port}"


async def add_agent(config: Path) -> None:
    """Create the agent account with the CLI: ``helpline agents add --password-stdin``."""
    command = [sys.executable, "-m", "bot", "--config", str(config), "agents", "add"]
    command += ["--email", AGENT_EMAIL, "--name", AGENT_NAME, "--role", "admin", "--password-stdin"]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(AGENT_PASSWORD.encode() + b"\n")
    assert process.returncode == 0, output.decode()


@dataclass
class Desk:
    """The running app as the tests see it."""

    runtime: Runtime
    base: str
    shop_url: str
    slack: FakeSlack
    http: aiohttp.ClientSession
    app: web.Application

    async def slack_event(self, payload: dict[str, Any]) -> None:
        """Deliver a signed Events API payload, as Slack would."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **signed(body)}
        url = f"{self.base}/webhooks/slack/events"
        async with self.http.post(url, data=body, headers=headers) as response:
            assert response.status == 200, await response.text()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def desk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Desk]:
    folder = tmp_path_factory.mktemp("console-browser")
    slack = FakeSlack()
    slack_runner, slack_port = await _serve(slack.app)
    page: dict[str, str] = {}

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page["html"], content_type="text/html")

    page_app = web.Application()
    page_app.router.add_get("/", index)
    page_runner, page_port = await _serve(page_app)
    db_url = f"sqlite+aiosqlite:///{folder / 'helpline.db'}"
    connectors = {
        "widget": {"allowed_origins": [f"http://localhost:{page_port}"]},
        "slack": slack_section(f"http://127.0.0.1:{slack_port}/api/"),
    }
    runtime, runner, base = await start(folder, settings(db_url, connectors))
    page["html"] = _shop_page(base)
    try:
        async with aiohttp.ClientSession() as http:
            yield Desk(runtime, base, f"http://localhost:{page_port}/", slack, http, runner.app)
    finally:
        await runner.cleanup()
        await page_runner.cleanup()
        await slack_runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium(ARTIFACTS) as launched:
        yield launched


@dataclass
class MailDesk:
    """Helpline with the email connector and the console; the customer is a mailbox."""

    runtime: Runtime
    base: str
    dovecot: Dovecot
    mailbox: str
    sink: SmtpSink


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mail_desk(
    tmp_path_factory: pytest.TempPathFactory,
    dovecot: Dovecot,  # noqa: F811
) -> AsyncIterator[MailDesk]:
    folder = tmp_path_factory.mktemp("console-email")
    mailbox = await asyncio.to_thread(dovecot.new_mailbox)
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink = SmtpSink(handler, controller.port, controller=controller)
    config = (
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: sqlite+aiosqlite:///{folder / 'h.db'}\n"
        f"llm:\n  enabled: false\nconnectors:\n  email:\n{email_section(dovecot, mailbox, sink)}"
    )
    runtime, runner, base = await start(folder, config)
    try:
        yield MailDesk(runtime, base, dovecot, mailbox, sink)
    finally:
        await runner.cleanup()
        controller.stop()
