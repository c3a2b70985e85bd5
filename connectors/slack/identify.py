"""Learning who the bot is (``auth.test``), with one retry loop while Slack is away.

The connector asks once at start. If Slack cannot be reached (refused
connections, 5xx), start goes on and a single background loop, owned by the
connector and cancelled on stop, asks again with capped exponential backoff
and jitter until Slack answers or refuses the token. Nothing in the loop
starts another task, so a long outage costs one task and one warning per
attempt, however long it lasts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from bot.errors import ChannelError, DeliveryError

if TYPE_CHECKING:
    from connectors.slack.api import SlackApi
    from connectors.slack.ignore import BotIdentity

_LOGGER = logging.getLogger(__name__)
#: Jitter from a generator of its own: the process-wide one stays untouched.
_JITTER = random.Random()
#: The name of the retry loop's task.
TASK_NAME = "slack-auth-test"


def retry_delays(
    first_s: float, cap_s: float, rand: Callable[[], float] = _JITTER.random
) -> Iterator[float]:
    """Endless waits: doubling from ``first_s`` up to ``cap_s``, each jittered.

    Equal jitter: a wait lies between half its step and the step, so replicas
    that lost Slack together do not retry in step, and no wait is near zero.

    Args:
        first_s: The first step.
        cap_s: The largest step.
        rand: Source of jitter in ``[0, 1]``.
    """
    step = min(first_s, cap_s)
    while True:
        yield step / 2 + rand() * step / 2
        step = min(step * 2, cap_s)


async def ask(api: SlackApi, identity: BotIdentity) -> None:
    """Ask ``auth.test`` once and fill in ``identity``.

    Raises:
        ChannelError: Slack refused the bot token.
        DeliveryError: Slack could not be reached or failed (worth retrying).
    """
    try:
        data = await api.call("auth.test")
    except DeliveryError as exc:
        if exc.permanent:
            raise ChannelError(f"connectors.slack.bot_token: {exc}") from exc
        raise
    identity.user_id = data.get("user_id")
    identity.bot_id = data.get("bot_id")
    _LOGGER.info("Slack bot is %s in team %s.", data.get("user_id"), data.get("team_id"))


async def ask_until_answered(api: SlackApi, identity: BotIdentity, delays: Iterator[float]) -> None:
    """Ask ``auth.test`` after each wait of ``delays`` until Slack answers.

    The one retry loop: run it in a task its owner cancels on stop.
    """
    for attempt, delay in enumerate(delays, start=2):
        await asyncio.sleep(delay)
        try:
            await ask(api, identity)
        except DeliveryError as exc:  # before ChannelError, its base class
            _LOGGER.warning(
                "Cannot ask Slack who the bot is yet (attempt %d): %s; retrying.", attempt, exc
            )
            continue
        except ChannelError:
            _LOGGER.exception("Slack refused the bot token; not asking again.")
        return
