"""Telling queued customers when to expect a person, and Slack handoff alerts.

An owned task checks the queue every ``notice_check_interval_s``: outside
business hours every queued customer is told at once (``offline_notice``);
inside them, those nobody claimed for ``unclaimed_notice_after_min``
(``unclaimed_notice``). Each customer is told once per handoff: marking the
row and sending are guarded by a conditional update, so replicas agree.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.errors import DeliveryError, StorageError
from connectors.slack.api import SlackApi

if TYPE_CHECKING:
    from connectors.console.config import ConsoleConfig
    from connectors.console.state import ConsoleState, Json

_LOGGER = logging.getLogger(__name__)


class Notices:
    """The queue check that sends away notices."""

    def __init__(self, state: ConsoleState) -> None:
        self.state = state

    async def run(self) -> None:
        """Check now and then, forever (cancelled on stop)."""
        while True:
            try:
                await self.check(datetime.now(UTC))
            except StorageError as exc:
                _LOGGER.warning("Cannot check the console queue now: %s", exc)
            await asyncio.sleep(self.state.config.notice_check_interval_s)

    async def check(self, now: datetime) -> int:
        """Notify the customers due at ``now``; return how many were told."""
        config = self.state.config
        hours = config.business_hours
        is_open = hours is None or hours.is_open(now)
        before = now - timedelta(minutes=config.unclaimed_notice_after_min) if is_open else None
        text = config.unclaimed_notice if is_open else config.offline_notice
        told = 0
        for cid in await self.state.db.unnotified(before):
            if await self.state.db.mark_notified(cid):
                await self.state.ctx.push(cid, {"text": text, "metadata": {"notice": "away"}})
                await self.state.db.audit(None, "notice", cid, {"open": is_open})
                told += 1
        return told


class SlackNotifier:
    """Posts "New handoff: ..." to a Slack channel when configured."""

    def __init__(self, config: ConsoleConfig) -> None:
        token = config.slack_bot_token
        self.channel = config.slack_notify_channel
        self.api: SlackApi | None = None
        if self.channel and token is not None and token.get_secret_value():
            self.api = SlackApi(token.get_secret_value(), config.slack_api_url, 10.0)

    async def start(self) -> None:
        """Open the HTTP session."""
        if self.api is not None:
            await self.api.start()

    async def stop(self) -> None:
        """Close it."""
        if self.api is not None:
            await self.api.stop()

    async def notify(self, summary: Json) -> None:
        """Announce one new handoff; a Slack failure is logged, never raised."""
        if self.api is None:
            return
        last = (summary.get("last_message") or {}).get("text") or ""
        text = f"New handoff: {summary['handoff_reason']} — {summary['channel']} — {last[:200]}"
        try:
            await self.api.call("chat.postMessage", channel=self.channel, text=text)
        except DeliveryError as exc:
            _LOGGER.warning("Cannot post the handoff to Slack: %s", exc)
