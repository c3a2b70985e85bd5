"""Turns that fail: tried again a few times, then the message is quarantined.

A turn that raises (a bug, a bot that loops past the step limit, a state
that no longer loads) would otherwise leave its message pending, and every
restart or recovery round would run it again and fail again: one message
could keep a server from starting. So each turn's attempt is counted in the
store before it runs (a turn that kills the process counts too; a message
stored by the same call is counted only if its first turn fails), a failed
turn is tried again at once, and once ``max_attempts`` turns failed the
message is marked ``failed``: it never runs again, its conversation starts
afresh, the customer gets the bot's internal-error response through the
outbox, and the console shows that reply with the notice ``failed``.

A :class:`~bot.errors.StorageError` is not the message's fault: it is
raised as before, and the message stays pending for recovery.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.errors import StorageError
from bot.storage.quarantine import TurnAttempts

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.dialogue.domain import Domain
    from bot.messages import OutboundMessage
    from bot.storage.store import Store

_LOGGER = logging.getLogger(__name__)

#: Turns a message may fail before it is set aside (``dialogue.max_turn_attempts``).
DEFAULT_MAX_ATTEMPTS = 3
#: The domain response the customer gets for a message set aside.
APOLOGY_RESPONSE = "utter_internal_error_rasa"
#: Its text when the domain has no such response.
FALLBACK_APOLOGY = "Sorry, something went wrong on my side. Please try again."
#: The ``notice`` in the apology's metadata, which the agent console shows.
FAILED_NOTICE = "failed"


def apology(domain: Domain) -> dict[str, Any]:
    """The reply to a message set aside: the domain's internal-error response."""
    variation = domain.pick(APOLOGY_RESPONSE, {})
    text = variation.text if variation is not None else FALLBACK_APOLOGY
    buttons = [dict(b) for b in variation.buttons] if variation is not None else []
    metadata = {"response": APOLOGY_RESPONSE, "notice": FAILED_NOTICE}
    return {"text": text, "buttons": buttons, "metadata": metadata}


class TurnGuard:
    """Runs a message's turn with its attempts counted; quarantines one that keeps failing.

    Args:
        store: Where the attempts and the quarantine are written.
        domain: The bot's domain, for the apology.
        max_attempts: Failed turns after which a message is set aside.
    """

    def __init__(
        self, store: Store, domain: Domain, max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.attempts = TurnAttempts(store)
        self.domain = domain
        self.max_attempts = max_attempts

    async def run(
        self,
        conversation_id: int,
        inbound_id: int,
        delivered: bool,
        turn: Callable[[], Awaitable[list[OutboundMessage]]],
        outbound: Callable[[int, dict[str, Any]], OutboundMessage],
        *,
        fresh: bool = False,
    ) -> list[OutboundMessage]:
        """Run ``turn()`` until it succeeds or has failed ``max_attempts`` times.

        Args:
            conversation_id: The store id of the message's conversation.
            inbound_id: The message whose turn it is.
            delivered: The caller hands the replies over itself (REST).
            turn: Runs the turn once and returns its replies.
            outbound: Makes the apology's outbound message from its id and reply.
            fresh: The caller stored the message just now, so no turn of it
                ran before: its first attempt is counted only if it fails,
                which saves a write per turn (should the process die in it,
                recovery counts from there).

        Returns:
            The turn's replies, the apology once the message is set aside, or
            nothing when the message is no longer pending.

        Raises:
            StorageError: The store failed; the message stays pending.
        """
        uncounted = fresh
        while True:
            attempt = 1 if uncounted else await self.attempts.count(inbound_id)
            if attempt is None:
                return []  # answered or set aside meanwhile (another replica)
            if attempt > self.max_attempts:  # the earlier ones never returned (a crash)
                return await self._set_aside(conversation_id, inbound_id, delivered, outbound)
            try:
                return await turn()
            except StorageError:
                raise
            except Exception as exc:
                _LOGGER.warning(
                    "The turn of message %d failed (attempt %d of %d): %r.",
                    *(inbound_id, attempt, self.max_attempts, exc),
                    exc_info=True,
                )
                if uncounted:
                    await self.attempts.count(inbound_id)
                    uncounted = False
                if attempt >= self.max_attempts:
                    return await self._set_aside(conversation_id, inbound_id, delivered, outbound)

    async def _set_aside(
        self,
        conversation_id: int,
        inbound_id: int,
        delivered: bool,
        outbound: Callable[[int, dict[str, Any]], OutboundMessage],
    ) -> list[OutboundMessage]:
        """Mark the message ``failed`` and queue the apology; return it."""
        reply = apology(self.domain)
        reply_id = await self.attempts.set_aside(conversation_id, inbound_id, reply, delivered)
        if reply_id is None:
            return []
        metrics.TURNS_QUARANTINED.inc()
        _LOGGER.error(
            "Message %d is set aside as failed after %d failed turns; the customer was told "
            "and the conversation starts afresh.",
            inbound_id,
            self.max_attempts,
        )
        return [outbound(reply_id, reply)]
