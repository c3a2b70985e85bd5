"""New handoffs are announced in a Slack channel, on the real Slack test server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.connectors.console.api_support import login
from tests.connectors.console.test_api_inbox import ClientFactory, handed_off, make_client
from tests.connectors.slack.fake_slack import BOT_TOKEN, FakeSlack


async def test_each_new_handoff_is_posted_to_the_slack_channel(
    aiohttp_client: ClientFactory,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    slack = FakeSlack()
    server = await aiohttp_server(slack.app)
    client: TestClient[Any, Any] = await make_client(
        aiohttp_client,
        f"sqlite+aiosqlite:///{tmp_path / 'h.db'}",
        tmp_path,
        slack_notify_channel="C0SUPPORT",
        slack_bot_token=BOT_TOKEN,
        slack_api_url=str(server.make_url("/api/")),
    )
    ana = await login(client, "ana@example.com")
    await handed_off(client, ana, "s1")
    (call,) = await slack.wait_for("chat.postMessage", channel="C0SUPPORT")
    assert call.token == BOT_TOKEN
    assert "New handoff" in call.params["text"]
    await handed_off(client, ana, "s2")
    posted = await slack.wait_for("chat.postMessage", count=2, channel="C0SUPPORT")
    assert len(posted) == 2  # one post per handoff, none for other turns
