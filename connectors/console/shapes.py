"""The JSON shapes of the console API: Agent, Summary, Message and Note.

Text is returned verbatim as JSON strings; the browser renders it as text,
never as HTML, so nothing is escaped or stripped here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.storage.records import StoredMessage

Json = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601, or ``None``."""
    return None if value is None else value.isoformat()


def agent_json(row: Json) -> Json:
    """``{"id", "email", "name", "role", "presence"}`` (plus ``disabled``)."""
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "presence": row["presence"],
        "disabled": bool(row.get("disabled", False)),
    }


def customer_json(channel: str, sender: str, metadata: Json | None) -> Json:
    """Who the customer is, from the latest inbound message's metadata."""
    meta = metadata or {}
    raw = meta.get("email")
    mail: Json = raw if isinstance(raw, dict) else {}
    email = raw if isinstance(raw, str) else mail.get("from")
    if email is None and channel == "email":
        email = sender
    return {
        "id": str(meta.get("user_id") or sender),
        "name": meta.get("name") or mail.get("from_name") or None,
        "email": email,
        "verified": meta.get("verified") is True or channel == "slack",
        "slack_user": meta.get("user") if channel == "slack" else None,
    }


def summary_json(row: Json, now: datetime | None = None) -> Json:
    """The Summary of one conversation from an ``inbox_queries`` summary row."""
    now = now or datetime.now(UTC)
    waiting = row["status"] == "open" and row["first_human_reply_at"] is None
    assignee = row["assignee_id"]
    last = None
    if row["last_text"] is not None:
        last = {"text": row["last_text"], "direction": row["last_direction"]}
        last["at"] = iso(row["last_at"])
    return {
        "id": row["id"],
        "channel": row["channel"],
        "external_id": row["external_id"],
        "customer": customer_json(row["channel"], row["sender"], row["customer_metadata"]),
        "mode": row["mode"],
        "status": row["status"],
        "handoff_reason": row["handoff_reason"],
        "handoff_at": iso(row["handoff_at"]),
        "assignee": None if assignee is None else {"id": assignee, "name": row["assignee_name"]},
        "last_message": last,
        "wait_s": (now - row["handoff_at"]).total_seconds() if waiting else None,
        "csat": row.get("csat"),
        "subject": _subject(row["customer_metadata"]),
        "followup_email": row.get("followup_email") if row["status"] == "open" else None,
    }


def _subject(metadata: Json | None) -> str | None:
    """The email subject of the latest inbound message, for email conversations."""
    mail = (metadata or {}).get("email")
    subject = mail.get("subject") if isinstance(mail, dict) else None
    return subject if isinstance(subject, str) and subject else None


def message_json(message: StoredMessage, turn: Json | None = None) -> Json:
    """The Message shape of a stored message; ``turn`` is the turn it answers."""
    meta = message.metadata
    agent = meta.get("agent") if isinstance(meta.get("agent"), dict) else None
    if message.direction == "in":
        author = "customer"
    else:
        author = "agent" if agent is not None else "bot"
    turn = turn or {}
    route = "human" if author == "agent" else turn.get("route")
    return {
        "id": message.id,
        "direction": message.direction,
        "text": message.text,
        "buttons": message.buttons,
        "at": iso(message.created_at),
        "author": author,
        "agent_name": None if agent is None else agent.get("name"),
        "route": route if message.direction == "out" else None,
        "confidence": turn.get("confidence") if message.direction == "out" else None,
        "local_confidence": meta.get("local_confidence"),
        "cloud_confidence": meta.get("cloud_confidence"),
        "citations": list(turn.get("citations") or []) if message.direction == "out" else [],
        "notice": meta.get("notice"),
    }


def messages_json(messages: list[StoredMessage], turns: list[Json]) -> list[Json]:
    """Messages with each bot reply's route and confidence from its turn."""
    by_inbound = {t["inbound_message_id"]: t for t in turns}
    return [message_json(m, by_inbound.get(m.in_reply_to)) for m in messages]


def note_json(row: Json) -> Json:
    """``{"id", "agent": {"id", "name"}, "text", "at"}``."""
    return {
        "id": row["id"],
        "agent": {"id": row["agent_id"], "name": row["agent_name"]},
        "text": row["text"],
        "at": iso(row["created_at"]),
    }
