"""What the schema can hold, checked before a message reaches the database.

A value the database would refuse (a sender longer than its column, a NUL in
text, ``NaN`` in JSON) is a permanent error of the input, not an outage: it
raises :class:`~bot.errors.InvalidInput` once, on SQLite and PostgreSQL alike,
instead of the retries and 503s of an unavailable store. The limits are read
from the table definitions, so a column change moves them too.
"""

from __future__ import annotations

from typing import Any

from bot import wirejson
from bot.errors import InvalidInput
from bot.storage.statements import CONVERSATIONS, MESSAGES


def _length(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)
    return length


#: The longest value each identifier column holds.
LIMITS: dict[str, int] = {
    "channel": _length(CONVERSATIONS.c.channel),
    "conversation id": _length(CONVERSATIONS.c.external_id),
    "sender": _length(CONVERSATIONS.c.sender),
    "message id": _length(MESSAGES.c.external_id),
}


def check_inbound(
    channel: str,
    external_id: str,
    sender: str,
    message_id: str | None,
    text: str,
    metadata: dict[str, Any],
) -> None:
    """Refuse an inbound message that the schema cannot store as it is.

    Raises:
        InvalidInput: Naming the field and the limit.
    """
    fields = {
        "channel": channel,
        "conversation id": external_id,
        "sender": sender,
        "message id": message_id,
    }
    for name, value in fields.items():
        if value is None:
            continue
        if len(value) > LIMITS[name]:
            raise InvalidInput(f"the {name} is longer than {LIMITS[name]} characters")
        wirejson.check_text(value, f"the {name}")
    wirejson.check_text(text, "the message text")
    wirejson.check(metadata)
