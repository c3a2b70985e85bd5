"""Slack over Socket Mode, end to end, against a local Socket Mode server.

The fake's ``apps.connections.open`` hands out a ``ws://`` URL; its WebSocket
says ``hello``, then sends ``events_api`` and ``interactive`` envelopes. The
connector must acknowledge each ``envelope_id`` and post the replies.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.connectors.slack.fake_slack import APP_TOKEN, FakeSlack
from tests.connectors.slack.helpers import DM, click, dm, recorded

Client = TestClient[Any, Any]
SOCKET = [{"mode": "socket", "signing_secret": ""}]


async def connected(fake: FakeSlack, count: int = 1) -> None:
    await fake.wait_until(lambda: len(fake.sockets) >= count and bool(fake.live_sockets))


@pytest.mark.parametrize("slack_settings", SOCKET)
async def test_events_and_clicks_over_socket_mode(client: Client, fake: FakeSlack) -> None:
    await connected(fake)
    (opened,) = fake.successful("apps.connections.open")
    assert opened.token == APP_TOKEN

    first = await fake.send_envelope("events_api", dm("/check_order", "1700000000.000100", "Ev01"))
    await fake.wait_until(lambda: first in fake.acks)
    (asked,) = await fake.wait_for("chat.postMessage")
    assert asked.params["text"] == "What is your order number?"
    assert asked.params["thread_ts"] == "1700000000.000100"
    assert asked.params["channel"] == DM

    await fake.send_envelope(
        "events_api", dm("HL-12345", "1700000050.000200", "Ev02", "1700000000.000100")
    )
    question = (await fake.wait_for("chat.postMessage", 2))[1]
    assert [b["type"] for b in question.params["blocks"]] == ["section", "actions"]

    choice = await fake.send_envelope("interactive", click(question.response, "Yes", "170.1"))
    await fake.wait_until(lambda: choice in fake.acks)
    (update,) = await fake.wait_for("chat.update")
    assert update.params["ts"] == question.response["ts"]
    done = (await fake.wait_for("chat.postMessage", 4))[2]
    assert done.params["text"] == "Order HL-12345 is shipped."

    # The bot's own echo is acknowledged and goes no further.
    own = await fake.send_envelope("events_api", recorded("own_message"))
    await fake.wait_until(lambda: own in fake.acks)
    # A redelivered envelope (retry_attempt 1) of a stored event is acknowledged, not answered.
    again = await fake.send_envelope(
        "events_api", dm("/check_order", "1700000000.000100", "Ev01"), retry_attempt=1
    )
    await fake.wait_until(lambda: again in fake.acks)
    later = await fake.send_envelope("events_api", dm("/greet", "1700000090.000300", "Ev03"))
    await fake.wait_until(lambda: later in fake.acks)
    await fake.wait_for("chat.postMessage", thread_ts="1700000090.000300")
    assert len(fake.successful("chat.postMessage", text="What is your order number?")) == 1


@pytest.mark.parametrize("slack_settings", SOCKET)
async def test_disconnect_envelope_reconnects(sqlite_client: Client, fake: FakeSlack) -> None:
    await connected(fake)
    await fake.send_disconnect("refresh_requested")
    await connected(fake, 2)
    await fake.wait_until(lambda: len(fake.live_sockets) == 1 and fake.sockets[0].closed)
    assert len(fake.successful("apps.connections.open")) == 2

    envelope = await fake.send_envelope("events_api", dm("/greet", "1700000000.000100", "Ev0RC"))
    await fake.wait_until(lambda: envelope in fake.acks)
    (posted,) = await fake.wait_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1700000000.000100"
