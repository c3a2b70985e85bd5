"""Slack users for ``helpline bench load``: signed Events API posts, replies from a local Slack.

Each bench Slack user has a DM channel of its own. A turn is a
``message.im`` event POSTed to a replica's ``/webhooks/slack/events``, signed
with the configured signing secret as Slack signs it; the replicas answer
through the Web API of :class:`connectors.slack.fake.FakeSlack`, which runs
in the bench process. The latency of a turn is from the POST to the last
``chat.postMessage`` of its replies on the user's channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.signature import SignatureVerifier

from connectors.slack.fake import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    Call,
    FakeSlack,
)

REPLY_TIMEOUT_S = 60.0
_SIGNER = SignatureVerifier(SIGNING_SECRET)
_TS = itertools.count(1)


def slack_section(api_url: str) -> dict[str, Any]:
    """The ``connectors.slack`` section that points a replica at the local Slack."""
    return {
        "enabled": True,
        "mode": "events",
        "bot_token": BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "app_token": APP_TOKEN,
        "api_url": api_url,
    }


@dataclass
class SlackUser:
    """One bench Slack conversation: its DM channel and what it was sent."""

    user: str
    channel: str
    sent: int = 0
    timeouts: int = 0


@dataclass
class LocalSlack:
    """The local Slack and the replies it got, per channel."""

    fake: FakeSlack
    posted: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _waiters: dict[str, tuple[int, asyncio.Event]] = field(default_factory=dict)

    def record(self, call: Call) -> None:
        """The fake's hook: count a successful ``chat.postMessage`` and wake its waiter."""
        if call.method != "chat.postMessage" or not call.ok:
            return
        channel = str(call.params.get("channel"))
        self.posted[channel] += 1
        waiter = self._waiters.get(channel)
        if waiter is not None and self.posted[channel] >= waiter[0]:
            waiter[1].set()

    async def until(self, channel: str, count: int) -> None:
        """Wait until ``channel`` has had ``count`` replies in all."""
        if self.posted[channel] >= count:
            return
        event = asyncio.Event()
        self._waiters[channel] = (count, event)
        try:
            await event.wait()
        finally:
            self._waiters.pop(channel, None)


@contextlib.asynccontextmanager
async def local_slack() -> AsyncIterator[tuple[LocalSlack, str]]:
    """Serve a :class:`FakeSlack` on a free port; yield it and its Web API URL."""
    from aiohttp import web

    fake = FakeSlack()
    local = LocalSlack(fake)
    fake.on_call = local.record
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.api_url = f"http://127.0.0.1:{port}/api/"
    try:
        yield local, fake.api_url
    finally:
        await runner.cleanup()


def new_user(index: int) -> SlackUser:
    """A Slack user with its own DM channel."""
    tag = uuid.uuid4().hex[:8].upper()
    return SlackUser(f"U{tag}{index:05d}", f"D{tag}{index:05d}")


def event(user: SlackUser, text: str) -> bytes:
    """The JSON body of a ``message.im`` event from ``user``."""
    now = time.time()
    ts = f"{int(now)}.{next(_TS) % 1_000_000:06d}"
    payload = {
        "token": "bench",
        "team_id": TEAM_ID,
        "api_app_id": "A0HELPLINE",
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": user.user,
            "team": TEAM_ID,
            "channel": user.channel,
            "text": text,
            "ts": ts,
            "event_ts": ts,
        },
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(now),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }
    return json.dumps(payload).encode()


def signed_headers(body: bytes) -> dict[str, str]:
    """Content type and Slack's signature headers for ``body``."""
    ts = str(int(time.time()))
    signature = _SIGNER.generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }


async def slack_turn(
    session: Any, base: str, slack: LocalSlack, user: SlackUser, text: str, replies: int
) -> float | None:
    """POST one signed event; return the time to its last reply, or ``None`` on timeout."""
    body = event(user, text)
    expected = slack.posted[user.channel] + replies
    started = time.perf_counter()
    async with session.post(
        f"{base}/webhooks/slack/events", data=body, headers=signed_headers(body)
    ) as resp:
        resp.raise_for_status()
        await resp.read()
    user.sent += 1
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            await slack.until(user.channel, expected)
    except TimeoutError:
        user.timeouts += 1
        return None
    return (time.perf_counter() - started) * 1000


async def slack_audit(
    dsn: str, slack: LocalSlack, users: list[SlackUser], expected: dict[str, int]
) -> dict[str, int]:
    """Compare the database and the local Slack with what each user sent.

    Args:
        dsn: asyncpg DSN of the bench database.
        slack: The local Slack.
        users: The bench's Slack users.
        expected: Replies each user's channel should have had.
    """
    import asyncpg

    await asyncio.sleep(0.5)  # let the last deliveries land
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.external_id, m.direction, m.status, count(*) AS n FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id WHERE c.channel = 'slack' "
            "GROUP BY 1, 2, 3"
        )
    finally:
        await conn.close()
    stored: defaultdict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        key = "in" if row["direction"] == "in" else f"out:{row['status']}"
        stored[(row["external_id"], key)] += int(row["n"])
    lost_messages = lost_replies = duplicated = undelivered = 0
    for u in users:
        external = f"{TEAM_ID}:{u.user}"
        lost_messages += abs(stored[(external, "in")] - u.sent)
        posted, want = slack.posted[u.channel], expected.get(u.channel, 0)
        lost_replies += max(0, want - posted)
        duplicated += max(0, posted - stored[(external, "out:delivered")])
        undelivered += (
            sum(n for (ext, key), n in stored.items() if ext == external and key.startswith("out:"))
            - stored[(external, "out:delivered")]
        )
    return {
        "lost_or_duplicated_messages": lost_messages,
        "lost_replies": lost_replies,
        "duplicated_replies": duplicated,
        "undelivered_replies": undelivered,
        "timeouts": sum(u.timeouts for u in users),
    }
