"""Live console events: the relay from the bus to the console topic.

One owned relay task reads every bus event (the :data:`bot.bus.ALL`
topic), turns conversation events into console frames (a message with its
conversation's new summary; customer and agent typing; new handoffs) and
publishes them on the console topic. Each console socket
(:mod:`connectors.console.sockets`) forwards the console topic to its browser.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.errors import StorageError
from connectors.console.shapes import messages_json, summary_json
from connectors.console.state import CONSOLE_TOPIC

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.bus import Subscription
    from connectors.console.state import ConsoleState, Json

_LOGGER = logging.getLogger(__name__)
HANDOFF_RESPONSE = "utter_human_handoff"


class Relay:
    """Turns bus events of conversations into console frames.

    Args:
        state: The console state.
        on_handoff: Called with the summary of each new handoff.
        watching: Whether any console is open; without one only handoffs are relayed.
    """

    def __init__(
        self,
        state: ConsoleState,
        on_handoff: Callable[[Json], Awaitable[None]],
        watching: Callable[[], bool] = lambda: True,
    ) -> None:
        self._watching = watching
        self.state = state
        self._on_handoff = on_handoff

    async def run(self, events: Subscription) -> None:
        """Forward events until cancelled; a storage error skips one event."""
        async for event in events:
            if event.get("topic") == CONSOLE_TOPIC:
                continue
            try:
                await self.forward(event)
            except StorageError as exc:
                _LOGGER.warning("A console event was dropped: %s", exc)

    async def forward(self, event: Json) -> None:
        """Relay one bus event."""
        kind = event.get("type")
        if kind == "message" and isinstance(event.get("id"), int):
            # With no console open, only new handoffs need work (the Slack alert):
            # the relay's reads must not slow every turn down.
            if self._watching() or _is_handoff(event):
                await self._message(int(event["id"]))
        elif kind == "typing" and event.get("who") in ("customer", "agent") and self._watching():
            await self._typing(event)

    async def _message(self, message_id: int) -> None:
        store = self.state.ctx.store
        stored = await store.message(message_id)
        cid = stored.conversation_id
        turns = await store.turns(cid) if stored.in_reply_to is not None else []
        message = messages_json([stored], turns)[0]
        self.state.publish({"type": "message", "conversation_id": cid, "message": message})
        row = await self.state.db.summary(cid)
        if row is None:
            return
        summary = summary_json(row)
        self.state.publish({"type": "conversation", "conversation": summary})
        handoff = stored.direction == "out" and _handoff_reply(stored.metadata)
        if handoff and summary["status"] == "open":
            self.state.publish({"type": "handoff", "conversation": summary})
            await self._on_handoff(summary)

    async def _typing(self, event: Json) -> None:
        parts = str(event.get("topic", "")).split(":", 2)
        if len(parts) != 3 or parts[0] != "conv":
            return
        cid = await self.state.db.conversation_id(parts[1], parts[2])
        if cid is None:
            return
        frame: Json = {"type": "typing", "conversation_id": cid, "who": event["who"]}
        if isinstance(event.get("name"), str):
            frame["name"] = event["name"]
        self.state.publish(frame)


def _is_handoff(event: Json) -> bool:
    """Whether a bus message event is the bot's handoff reply."""
    metadata = event.get("metadata")
    if event.get("direction") != "out" or not isinstance(metadata, dict):
        return False
    return _handoff_reply(metadata)


def _handoff_reply(metadata: Json) -> bool:
    """Whether a reply's metadata marks the bot's handoff message (whatever its response)."""
    return metadata.get("handoff") is True or metadata.get("response") == HANDOFF_RESPONSE
