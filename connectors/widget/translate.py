"""Translation between widget WebSocket frames and Helpline messages.

Client frames (JSON text):

- ``{"type": "hello", "visitor", "secret"?, "last_id", "resume", "user_id"?,
  "user_hash"?}`` opens the session; the server answers ``hello`` (with the
  ``visitor`` id to use from now on, and a new ``secret`` when it issued one,
  see :mod:`connectors.widget.access`), replays what the visitor missed as
  ``message`` frames, then sends ``synced``.
- ``{"type": "message", "client_id", "text", "title"?}``: a message (``title``
  is the label of the quick reply whose payload is ``text``); answered by
  ``{"type": "ack", "client_id", "id", "duplicate"}`` once it is stored.
- ``{"type": "ping", "nonce"?}``: answered by ``pong``.
- ``{"type": "typing"}``: the customer is typing; published for the agent console.

Server frames: ``hello``, ``synced``, ``ack``, ``message`` (``id``,
``direction``, ``text``, ``buttons``, ``at``, ``client_id``/``title`` of an
inbound, ``agent``/``handoff`` of an outbound), ``typing``, ``token``,
``status``, ``pong`` and ``error`` (``reason``, ``detail``, ``client_id``,
``retry``). A client resends a message only after an error with ``retry``
true; any other error is final for that message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot import wirejson
from bot.errors import ChannelError
from bot.messages import InboundMessage
from connectors.widget.identity import ANONYMOUS, Identity

if TYPE_CHECKING:
    from bot.storage.records import StoredMessage

CHANNEL = "widget"
HANDOFF_RESPONSE = "utter_human_handoff"
MAX_TITLE_CHARS = 200
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class FrameError(ChannelError):
    """A frame the server refuses; the client gets an ``error`` frame, the socket stays open.

    Attributes:
        reason: A stable code, e.g. ``malformed``, ``too_long``, ``rate_limited``.
        detail: A sentence for people.
        client_id: The message it concerns, when known.
        retry: Whether sending the same message later may succeed.
    """

    def __init__(
        self, reason: str, detail: str, client_id: str | None = None, *, retry: bool = False
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.client_id = client_id
        self.retry = retry

    def frame(self) -> dict[str, Any]:
        """The ``error`` frame sent to the client."""
        frame: dict[str, Any] = {"type": "error", "reason": self.reason, "detail": self.detail}
        if self.client_id is not None:
            frame["client_id"] = self.client_id
        frame["retry"] = self.retry
        return frame


@dataclass(frozen=True)
class Hello:
    """The first frame: who the visitor is and the last server message it saw."""

    visitor: str
    last_id: int = 0
    resume: bool = False
    user_id: object = None
    user_hash: object = None
    secret: object = None


@dataclass(frozen=True)
class ClientMessage:
    """A message typed (or a quick reply clicked) by the visitor."""

    client_id: str
    text: str
    title: str | None = None


@dataclass(frozen=True)
class Ping:
    """A round trip the client (or the benchmark) times."""

    nonce: object = None


@dataclass(frozen=True)
class Typing:
    """The customer is typing (the widget sends it at most every few seconds)."""


@dataclass(frozen=True)
class Peer:
    """The visitor behind a socket.

    Attributes:
        visitor: The browser's visitor id (never logged in clear).
        ip: The client's address, for per-IP limits.
        identity: The verified user, or anonymous.
        key: The conversation's external id: the visitor id, or the verified
            user's key (see :func:`connectors.widget.identity.conversation_key`).
    """

    visitor: str
    ip: str
    identity: Identity = ANONYMOUS
    key: str = ""


Frame = Hello | ClientMessage | Ping | Typing
#: Passes a message on to the next middleware, and at the end to ``submit``.
Next = Callable[[], Awaitable[None]]


class FrameMiddleware(Protocol):
    """A cross-cutting check on each message before it is submitted (e.g. rate limits)."""

    async def __call__(self, message: ClientMessage, peer: Peer, call_next: Next) -> None:
        """Call ``call_next()`` to pass the message on, or raise :class:`FrameError`."""
        ...


def _is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def _hello(data: dict[str, Any]) -> Hello:
    if not _is_id(data.get("visitor")):
        raise FrameError("malformed", "'visitor' must be 8-64 letters, digits, '-' or '_'")
    last_id = data.get("last_id") or 0
    if not isinstance(last_id, int) or isinstance(last_id, bool) or last_id < 0:
        raise FrameError("malformed", "'last_id' must be a non-negative integer")
    return Hello(
        data["visitor"],
        last_id,
        data.get("resume") is True,
        data.get("user_id"),
        data.get("user_hash"),
        data.get("secret"),
    )


def _message(data: dict[str, Any]) -> ClientMessage:
    client_id = data.get("client_id")
    if not _is_id(client_id):
        raise FrameError("malformed", "'client_id' must be 8-64 letters, digits, '-' or '_'")
    assert isinstance(client_id, str)  # checked by _is_id
    text = data.get("text")
    if not isinstance(text, str):
        raise FrameError("malformed", "'text' must be a string", client_id)
    title = data.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_CHARS):
        detail = f"'title' must be a string of at most {MAX_TITLE_CHARS}"
        raise FrameError("malformed", detail, client_id)
    return ClientMessage(client_id, text, title or None)


def _ping(data: dict[str, Any]) -> Ping:
    return Ping(data.get("nonce"))


_PARSERS: dict[object, Callable[[dict[str, Any]], Frame]] = {
    "hello": _hello,
    "message": _message,
    "ping": _ping,
    "typing": lambda data: Typing(),
}


def parse_frame(raw: str, max_bytes: int) -> Frame:
    """Read one client frame.

    Raises:
        FrameError: It is too large, not JSON, not an object, or not a known frame.
    """
    if len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("frame_too_large", f"a frame may have at most {max_bytes} bytes")
    try:
        data = wirejson.loads(raw)
    except wirejson.InvalidPayload as exc:
        detail = str(exc).replace("the body", "the frame")
        raise FrameError("malformed", detail, _client_id_of(raw)) from None
    if not isinstance(data, dict):
        raise FrameError("malformed", "a frame must be a JSON object")
    kind = data.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise FrameError("unknown_type", f"unknown frame type {data.get('type')!r}")
    return parser(data)


def _client_id_of(raw: str) -> str | None:
    """The ``client_id`` of a refused frame, if plain JSON can read one.

    It goes into the error frame, so the client knows which message is refused
    for good and stops resending it.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    client_id = data.get("client_id") if isinstance(data, dict) else None
    return client_id if isinstance(client_id, str) and _is_id(client_id) else None


def check_text(message: ClientMessage, max_chars: int) -> None:
    """Refuse an empty message or one longer than ``max_chars``.

    Raises:
        FrameError: ``empty`` or ``too_long``.
    """
    if not message.text.strip():
        raise FrameError("empty", "the message is empty", message.client_id)
    if len(message.text) > max_chars:
        detail = f"the message is longer than {max_chars} characters"
        raise FrameError("too_long", detail, message.client_id)


def to_inbound(peer: Peer, message: ClientMessage) -> InboundMessage:
    """The inbound message of a visitor's frame.

    The conversation is the peer's (the visitor's, or the verified user's);
    the idempotency key is the client id, namespaced by the browser's visitor
    id so one browser's ids never meet another's.
    """
    metadata: dict[str, Any] = {"client_id": message.client_id, "verified": False}
    if peer.identity.verified:
        metadata.update(verified=True, user_id=peer.identity.user_id)
    if message.title:
        metadata["title"] = message.title
    key = f"{peer.visitor}:{message.client_id}"
    conversation = peer.key or peer.visitor
    return InboundMessage(CHANNEL, conversation, conversation, message.text, key, metadata)


def message_frame(
    message_id: int,
    direction: str,
    text: str,
    buttons: list[dict[str, Any]],
    metadata: dict[str, Any],
    at: str,
) -> dict[str, Any]:
    """A ``message`` frame, with only what the visitor may see of the metadata."""
    frame: dict[str, Any] = {
        "type": "message",
        "id": message_id,
        "direction": direction,
        "text": text,
        "buttons": [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", b.get("title")))}
            for b in buttons
            if isinstance(b, dict)
        ],
        "at": at,
    }
    if direction == "in":
        for key in ("client_id", "title"):
            if isinstance(metadata.get(key), str):
                frame[key] = metadata[key]
        return frame
    agent = metadata.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("name"), str):
        frame["agent"] = agent["name"]
    if metadata.get("response") == HANDOFF_RESPONSE or metadata.get("handoff") is True:
        frame["handoff"] = True
    return frame


def stored_frame(stored: StoredMessage) -> dict[str, Any]:
    """The ``message`` frame of a stored message (replayed on connect)."""
    return message_frame(
        stored.id,
        stored.direction,
        stored.text,
        stored.buttons,
        stored.metadata,
        stored.created_at.isoformat(),
    )


def _name(event: dict[str, Any]) -> dict[str, str]:
    """The agent's name of a typing event, when it has one."""
    name = event.get("name")
    return {"name": name} if isinstance(name, str) else {}


def event_frame(event: dict[str, Any]) -> dict[str, Any] | None:
    """The frame of a bus event of the conversation, or ``None`` to skip it."""
    kind = event.get("type")
    if kind == "message" and isinstance(event.get("id"), int):
        return message_frame(
            event["id"],
            str(event.get("direction")),
            str(event.get("text", "")),
            list(event.get("buttons") or []),
            dict(event.get("metadata") or {}),
            str(event.get("at", "")),
        )
    if kind == "token" and isinstance(event.get("text"), str):
        return {"type": "token", "text": event["text"]}
    if kind == "typing":
        who = str(event.get("who", "bot"))
        # The customer's own typing is for the agent console, not echoed back.
        return None if who == "customer" else {"type": "typing", "who": who, **_name(event)}
    if kind == "status" and isinstance(event.get("status"), str):
        frame = {"type": "status", "status": event["status"]}
        if isinstance(event.get("text"), str):
            frame["text"] = event["text"]
        return frame
    return None
