"""Periodic recovery: the turns a dead replica accepted but never ran.

Every replica runs :func:`recover_forever`. Each round takes the inbound
messages still pending after one recovery interval (a live replica runs its
turns well before that), runs each through :meth:`Dispatcher.run_turn` (the
turn lock and the pending check inside it mean a turn never runs twice, even
when two replicas recover the same message), then sweeps every channel's
outbox, where claims give each reply to one replica.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.errors import HelplineError
from bot.storage.records import Received

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher
    from bot.storage.claims import Claims

_LOGGER = logging.getLogger(__name__)


async def recover_once(dispatcher: Dispatcher, claims: Claims, older_than_s: float) -> int:
    """Run the orphaned turns and sweep the outbox once; return how many turns ran."""
    store, ran = dispatcher.store, 0
    for stored in await claims.orphans(older_than_s):
        conv = await store.conversation_by_id(stored.conversation_id)
        if conv is None:
            continue
        context = await store.turn_context(stored.id)
        if context.status != "pending":
            continue  # another replica got there first
        replies = await dispatcher.run_turn(Received(conv, stored.id, False, context))
        ran += 1
        _LOGGER.info("Recovered message %d (%d replies).", stored.id, len(replies))
    for channel in dispatcher.channels:
        await dispatcher.sweep(channel)
    return ran


async def recover_forever(dispatcher: Dispatcher, claims: Claims, interval_s: float) -> None:
    """Call :func:`recover_once` every ``interval_s`` until cancelled; errors wait a round.

    The first round is one interval after start: at start the dispatcher
    sweeps every outbox already (and a lone replica runs its pending turns).
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await recover_once(dispatcher, claims, interval_s)
        except HelplineError as exc:
            _LOGGER.warning("Recovery round failed: %s; trying again later.", exc)
        except Exception:  # the loop must outlive any one round's bug
            _LOGGER.exception("Recovery round failed unexpectedly; trying again later.")
