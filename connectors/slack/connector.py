"""The Slack connector: lifecycle, the payload chain and sending replies.

Inbound payloads (over HTTP or Socket Mode) run through
``check_payload → IgnoreBots → handle``; ``handle`` stores the message with ``ctx.submit``
and returns, so Slack is acknowledged within its 3 s and before the turn runs.
Replies come back through :meth:`SlackConnector.send`, which posts them in
the thread of the message they answer (found in the store, so a reply left
pending by a crash still finds its thread after a restart).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from bot.errors import ChannelError, DeliveryError, StorageError
from bot.lifecycle import Service
from bot.tasks import OwnedTasks
from bot.wirejson import InvalidPayload
from connectors.slack import identify
from connectors.slack.api import SlackApi
from connectors.slack.ignore import BotIdentity, IgnoreBots
from connectors.slack.pipeline import Ack, chain, check_payload, invalid
from connectors.slack.socket_mode import SocketModeTransport
from connectors.slack.translate import (
    CHANNEL,
    action_to_inbound,
    button_owner,
    chosen_update,
    clicked_button,
    clicker,
    escape,
    event_to_inbound,
    not_yours_notice,
    render,
    thread_of_key,
)
from connectors.slack.webhook import events_app

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from bot.channels import ConnectorContext
    from bot.messages import InboundMessage, OutboundMessage
    from connectors.slack.config import SlackConfig
    from connectors.slack.pipeline import Payload

_LOGGER = logging.getLogger(__name__)
#: The message metadata type every reply is posted with (see ``already_sent``).
REPLY_EVENT = "helpline_reply"
#: How many messages of a thread or DM ``already_sent`` searches.
CHECK_LIMIT = 200


class Target(NamedTuple):
    """Where a reply goes in Slack.

    Attributes:
        channel: The Slack channel.
        thread_ts: The thread, if any.
        answered_ts: The ts of the message the reply answers, if known.
        owner: The user the reply answers, who alone may click its buttons.
    """

    channel: str
    thread_ts: str | None
    answered_ts: str | None
    owner: str | None


def _reply_key(message: OutboundMessage) -> dict[str, Any]:
    """The metadata payload that names a reply: its outbox id."""
    return {"message_id": int(message.metadata["message_id"])}


def _secret(value: Any) -> str:
    return str(value.get_secret_value()) if value is not None else ""


class SlackConnector(Service):
    """Slack over the Events API (HTTP) or Socket Mode.

    Args:
        config: The validated ``connectors.slack`` section.
        ctx: What the server hands every connector.
    """

    name = CHANNEL
    prefix = "/webhooks/slack/"

    def __init__(self, config: SlackConfig, ctx: ConnectorContext) -> None:
        self.config = config
        self._ctx = ctx
        self.identity = BotIdentity()
        self._api = SlackApi(_secret(config.bot_token), config.api_url, config.request_timeout_s)
        self._pipeline = chain([check_payload, IgnoreBots(self.identity)], self.handle)
        self._socket: SocketModeTransport | None = None
        self._tasks = OwnedTasks()

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Open the Web API client, learn the bot's ids, and connect in socket mode.

        Raises:
            ChannelError: Slack refused a token.
        """
        try:
            await self._api.start()
            await self._identify()
            if self.config.mode == "socket":
                self._socket = SocketModeTransport(
                    _secret(self.config.app_token), self._api.client, self._pipeline
                )
                await self._socket.start()
        except BaseException:
            await self.stop()
            raise
        _LOGGER.info("Slack connector started in %s mode.", self.config.mode)

    async def stop(self) -> None:
        """Close the socket, cancel owned tasks and close the client."""
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.stop()
        await self._tasks.stop()
        await self._api.stop()

    def sub_app(self) -> web.Application:
        """The Events API routes in events mode; none in socket mode."""
        if self.config.mode != "events":
            return web.Application()
        return events_app(self._pipeline, _secret(self.config.signing_secret))

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name)

    async def _identify(self) -> None:
        """Ask ``auth.test`` who the bot is; if Slack is away, start the one retry loop.

        Raises:
            ChannelError: Slack refused the bot token.
        """
        try:
            await identify.ask(self._api, self.identity)
        except DeliveryError as exc:
            _LOGGER.warning("Cannot ask Slack who the bot is yet: %s; retrying.", exc)
            delays = identify.retry_delays(
                self.config.identify_retry_s, self.config.identify_retry_max_s
            )
            retry = identify.ask_until_answered(self._api, self.identity, delays)
            self._spawn(retry, identify.TASK_NAME)

    # -- inbound -----------------------------------------------------------

    async def handle(self, payload: Payload) -> Ack:
        """Store what a payload says for the bot, then acknowledge it.

        The end of the chain, after the middleware. The turn runs later; a
        payload stored before (a retry) is acknowledged without running again.
        A payload whose fields have the wrong types gets a 400 with the reason.
        """
        kind = payload.get("type")
        if kind == "url_verification":
            return Ack(body={"challenge": str(payload.get("challenge", ""))})
        try:
            if kind == "event_callback":
                user_id = self.identity.user_id
                return await self._store(
                    event_to_inbound(payload, self.config.conversation, user_id)
                )
            if kind == "block_actions":
                return await self._click(payload)
        except InvalidPayload as exc:
            return invalid(str(exc))
        return Ack(note=f"ignored: payload type {kind}")

    async def _click(self, payload: Payload) -> Ack:
        """Take a button click as its owner's answer; anyone else's only gets a note.

        Raises:
            InvalidPayload: A field the bot reads has the wrong type.
        """
        action, user = clicked_button(payload), clicker(payload)
        owner = button_owner(action) if action is not None else None
        if owner is not None and user != owner and self.config.button_clicks == "owner":
            notice = not_yours_notice(payload, owner)
            if notice is not None:
                self._spawn(self._post_quietly("chat.postEphemeral", notice), "slack-not-yours")
            return Ack(note="ignored: a click on buttons that answer another user")
        inbound = action_to_inbound(payload, self.config.conversation)
        update = chosen_update(payload)
        ack = await self._store(inbound)
        if inbound is not None and ack.ok and update is not None:
            # Replace the clicked buttons by the choice, so they cannot be clicked twice.
            self._spawn(self._post_quietly("chat.update", update), f"slack-choice:{user}")
        return ack

    async def _store(self, inbound: InboundMessage | None) -> Ack:
        """Store ``inbound`` (before Slack is acknowledged).

        A 503 if storage is down (Slack retries); a 400 if the store can never
        take the message (too long, a NUL...), since retrying cannot help.
        """
        if inbound is None:
            return Ack(note="ignored: nothing for the bot")
        try:
            await self._submit(inbound)
        except StorageError as exc:
            _LOGGER.warning("Slack message not stored; Slack will retry it: %s", exc)
            return Ack(status=503, note="storage is unavailable; retry later")
        except ChannelError as exc:  # the message itself is at fault
            return invalid(str(exc))
        return Ack()

    async def _submit(self, inbound: InboundMessage) -> None:
        received = await self._ctx.submit(inbound)
        if not received.created:
            _LOGGER.info(
                "Slack message %s was stored before; not answering again.", inbound.message_id
            )

    async def _post_quietly(self, method: str, args: dict[str, Any]) -> None:
        """Call ``method``, logging a failure: a cosmetic call is not worth a retry."""
        try:
            await self._api.call(method, **args)
        except DeliveryError as exc:
            _LOGGER.warning("Slack %s failed: %s", method, exc)

    # -- outbound ----------------------------------------------------------

    async def send(self, message: OutboundMessage) -> None:
        """Post a reply in the thread it belongs to, under the agent's name if an agent wrote it.

        Raises:
            DeliveryError: Slack refused or could not be reached (see
                :mod:`connectors.slack.api`), or no thread is known.
        """
        target = await self._target(message)
        body = render(message, target.owner)
        body.update(self._agent_fields(message, body["text"]))
        metadata = {"event_type": REPLY_EVENT, "event_payload": _reply_key(message)}
        await self._api.call(
            "chat.postMessage",
            channel=target.channel,
            thread_ts=target.thread_ts,
            metadata=metadata,
            **body,
        )

    async def already_sent(self, message: OutboundMessage) -> bool:
        """Whether the reply is in its Slack thread already (found by its message metadata).

        Every reply is posted with the metadata ``helpline_reply`` and its
        outbox id; the newest messages of its thread (or DM) are searched for
        it. It needs the history scope of the conversation type
        (``im:history``, ``channels:history``...); without it the check fails
        and the reply is sent (at least once).

        Raises:
            DeliveryError: Slack could not be asked.
        """
        channel, thread_ts, oldest, _ = await self._target(message)
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": "true"}
        if thread_ts is None:
            found = await self._api.read("conversations.history", limit=CHECK_LIMIT, **args)
        else:  # a thread lists oldest first: from the message the reply answers on
            if oldest is not None:
                args["oldest"] = oldest
            found = await self._api.read(
                "conversations.replies", ts=thread_ts, limit=CHECK_LIMIT, **args
            )
        key = _reply_key(message)
        return any(
            (m.get("metadata") or {}).get("event_type") == REPLY_EVENT
            and (m.get("metadata") or {}).get("event_payload") == key
            for m in found.get("messages") or []
        )

    def _agent_fields(self, message: OutboundMessage, text: str) -> dict[str, Any]:
        """How an agent's reply shows who wrote it: a username and icon, or a prefix."""
        agent = message.metadata.get("agent")
        if not isinstance(agent, dict) or not agent.get("name"):
            return {}
        name = str(agent["name"])
        if self.config.agent_name_style == "prefix":
            return {"text": f"{escape(name)}: {text}"}
        icon = agent.get("icon_url") or agent.get("avatar_url")
        if isinstance(icon, str) and icon:
            return {"username": name, "icon_url": icon}
        return {
            "username": name,
            "icon_emoji": agent.get("icon_emoji") or self.config.agent_icon_emoji,
        }

    async def _target(self, message: OutboundMessage) -> Target:
        """The Slack channel and thread a reply goes to, the message it answers and its user.

        The thread of the message it answers; for a message no turn produced
        (an agent's), the thread of the customer's latest message (and no ts).
        """
        try:
            source, answered = await self._source(message)
        except StorageError as exc:
            raise DeliveryError(f"cannot read where the reply goes: {exc}") from exc
        if source is not None:
            ts = source.get("ts") if answered else None
            owner = source.get("owner") or source.get("user")
            return Target(
                str(source["channel"]),
                source.get("thread_ts"),
                ts if isinstance(ts, str) else None,
                owner if isinstance(owner, str) else None,
            )
        thread = thread_of_key(message.conversation_id)
        if self.config.conversation == "per_thread" and thread is not None:
            return Target(*thread, None, None)
        raise DeliveryError(
            f"no Slack channel is known for conversation {message.conversation_id}", permanent=True
        )

    async def _source(self, message: OutboundMessage) -> tuple[dict[str, Any] | None, bool]:
        """The metadata of the inbound message that tells where ``message`` goes.

        Also whether that message is the one ``message`` answers (rather than
        the customer's latest, for an agent's reply).
        """
        message_id = message.metadata.get("message_id")
        if message_id is None:
            return None, False
        store = self._ctx.store
        conversation_id, meta = await store.reply_source(int(message_id))
        if meta is not None and isinstance(meta.get("channel"), str):
            return meta, True
        for earlier in reversed(await store.transcript(conversation_id)):
            if earlier.direction == "in" and isinstance(earlier.metadata.get("channel"), str):
                return earlier.metadata, False
        return None, False
