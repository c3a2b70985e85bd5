"""Structured logging: one JSON object per line, or readable text.

Every record logged while a conversation is bound with
:func:`bind_conversation` carries its ``conversation_id``, so the lines of one
conversation can be found across modules. The id lives in a context variable,
so concurrent asyncio tasks each keep their own.

Only the standard library is used, so logging works before anything else loads.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json as jsonlib
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from bot.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "ConversationFilter",
    "JSONFormatter",
    "TextFormatter",
    "bind_conversation",
    "conversation_label",
    "conversation_scope",
    "current_channel",
    "current_conversation",
    "setup_logging",
    "unbind_conversation",
]

_LOGGER = logging.getLogger(__name__)

_CONVERSATION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "helpline_conversation_id", default=None
)
_CHANNEL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "helpline_channel", default=None
)
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Marks the handler this module installed, so a second setup replaces it.
_OWN_HANDLER_ATTR = "_helpline_handler"


def bind_conversation(conv_id: str) -> contextvars.Token[str | None]:
    """Tag every record logged in the current context with ``conv_id``.

    Returns:
        A token for :func:`unbind_conversation`, to restore the previous id.
    """
    return _CONVERSATION_ID.set(conv_id)


def unbind_conversation(token: contextvars.Token[str | None]) -> None:
    """Restore the conversation id that was bound before ``token`` was made."""
    _CONVERSATION_ID.reset(token)


def current_conversation() -> str | None:
    """Return the conversation id bound in the current context, if any."""
    return _CONVERSATION_ID.get()


def current_channel() -> str | None:
    """Return the channel bound in the current context, if any."""
    return _CHANNEL.get()


def conversation_label(channel: str, external_id: str) -> str:
    """How logs name a conversation: ``channel:`` and 12 hex digits of the id's SHA-256.

    A channel's conversation id can be a credential (a widget visitor id) or
    personal data (an email Message-ID, a Slack user): logs carry a stable
    digest that finds every line of one conversation, never the id itself.
    """
    return f"{channel}:{hashlib.sha256(external_id.encode('utf-8', 'replace')).hexdigest()[:12]}"


@contextlib.contextmanager
def conversation_scope(channel: str, external_id: str) -> Iterator[None]:
    """Tag every record logged inside with ``conversation_id`` and ``channel``.

    The id is :func:`conversation_label`'s, as :class:`bot.manager.DialogueManager`
    binds it for a turn. Tasks started inside inherit both.
    """
    conversation = _CONVERSATION_ID.set(conversation_label(channel, external_id))
    bound_channel = _CHANNEL.set(channel)
    try:
        yield
    finally:
        _CHANNEL.reset(bound_channel)
        _CONVERSATION_ID.reset(conversation)


class ConversationFilter(logging.Filter):
    """Adds ``conversation_id`` and ``channel`` to records that do not carry them in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the record's ``conversation_id`` and ``channel``; never drops a record."""
        if getattr(record, "conversation_id", None) is None:
            record.conversation_id = _CONVERSATION_ID.get()
        if getattr(record, "channel", None) is None:
            record.channel = _CHANNEL.get()
        return True


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    The keys are ``ts`` (ISO-8601, UTC), ``level``, ``logger`` and ``message``,
    then every ``extra`` field, ``conversation_id`` when one is bound, and
    ``exc_info``/``stack_info`` as strings when present.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line; unserialisable extras become strings."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        for key in ("conversation_id", "channel"):
            if payload.get(key) is None:
                payload.pop(key, None)
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(payload, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A readable line: time, level, logger, ``[conversation]`` and message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s%(conversation)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as text, with the conversation id when one is bound."""
        conv_id = getattr(record, "conversation_id", None)
        record.conversation = f" [{conv_id}]" if conv_id is not None else ""
        return super().format(record)


def setup_logging(level: str, json: bool, *, stream: TextIO | None = None) -> None:
    """Configure the root logger; calling it again replaces the previous setup.

    Handlers installed by others (a test harness, say) are left in place.

    Args:
        level: A level name such as ``"INFO"`` (any case).
        json: One JSON object per line when true, readable text otherwise.
        stream: Where to write; standard error by default.

    Raises:
        ConfigError: ``level`` is not a known level name.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigError(f"logging.level: unknown log level {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OWN_HANDLER_ATTR, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _OWN_HANDLER_ATTR, True)
    handler.setFormatter(JSONFormatter() if json else TextFormatter())
    handler.addFilter(ConversationFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    _LOGGER.debug("Logging is set up at level %s.", logging.getLevelName(numeric))
