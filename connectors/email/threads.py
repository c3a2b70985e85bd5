"""Which conversation a mail belongs to.

A conversation is a mail thread; its external id is the Message-ID of the
thread's root. No table maps Message-IDs to conversations: the headers carry
what is needed.

1. Our replies' Message-IDs name their conversation and message
   (``<hl.{conversation}.{message}.{tag}@{our domain}>``, the tag a hash that
   includes the conversation's external id, so a guessed id is refused). A
   mail whose In-Reply-To or References holds one of ours belongs to that
   conversation, even when the client dropped the rest of the chain.
2. Otherwise the first id in References is the thread root (RFC 5322 keeps
   it first); without References, the first id in In-Reply-To.
3. A mail without either header starts a thread: its own Message-ID, except
   when its subject says it is a reply ("Re:", "AW:", "SV:"...): then the
   normalised subject plus the sender address is the key, so such replies
   from one sender on one subject stay together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import StorageError

if TYPE_CHECKING:
    from bot.storage.records import StoredMessage
    from bot.storage.store import Store
    from connectors.email.translate import ParsedEmail

_OURS = re.compile(r"^<hl\.(\d+)\.(\d+)\.([0-9a-f]{12})@[^<>\s]+>$")
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|sv|vs|wg|tr|antw|rv|res|ref|enc|odp|vl|doorst)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)


def normalise_subject(subject: str) -> str:
    """The subject without reply/forward prefixes (repeated), spaces collapsed, case-folded."""
    return " ".join(_PREFIX.sub("", subject).split()).casefold()


def is_reply_subject(subject: str) -> bool:
    """Whether the subject starts with a reply or forward prefix."""
    return bool(_PREFIX.match(subject))


def subject_key(subject: str, sender: str) -> str:
    """The fallback conversation key: normalised subject plus sender."""
    return f"subject:{sender}:{normalise_subject(subject)}"


def _tag(conversation_id: int, message_id: int, external_id: str) -> str:
    seed = f"{conversation_id}:{message_id}:{external_id}".encode()
    return hashlib.sha256(seed).hexdigest()[:12]


def our_message_id(stored: StoredMessage, domain: str) -> str:
    """The Message-ID of an outbound message: stable, so a retry is the same mail."""
    tag = _tag(stored.conversation_id, stored.id, stored.conversation_external_id)
    return f"<hl.{stored.conversation_id}.{stored.id}.{tag}@{domain}>"


def is_ours(message_id: str) -> bool:
    """Whether a Message-ID has the shape of ours."""
    return _OURS.match(message_id) is not None


@dataclass(frozen=True)
class Thread:
    """Where a mail goes, and which of our messages it answers, if known."""

    key: str
    answered: StoredMessage | None = None


class Threader:
    """Resolves a mail's conversation from its headers (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def resolve(self, mail: ParsedEmail) -> Thread:
        """Return the mail's thread."""
        for message_id in (*reversed(mail.in_reply_to), *reversed(mail.references)):
            thread = await self._ours(message_id)
            if thread is not None:
                return thread
        if mail.references:
            return Thread(mail.references[0])
        if mail.in_reply_to:
            return Thread(mail.in_reply_to[0])
        if is_reply_subject(mail.subject):
            return Thread(subject_key(mail.subject, mail.sender))
        return Thread(mail.message_id)

    async def _ours(self, message_id: str) -> Thread | None:
        match = _OURS.match(message_id)
        if match is None:
            return None
        conversation_id, stored_id, tag = int(match[1]), int(match[2]), match[3]
        conversation = await self.store.conversation_by_id(conversation_id)
        if (
            conversation is None
            or _tag(conversation_id, stored_id, conversation.external_id) != tag
        ):
            return None  # not ours after all (another install, a reset database, a forgery)
        try:
            answered: StoredMessage | None = await self.store.message(stored_id)
        except StorageError:
            answered = None  # only its buttons are missed
        return Thread(conversation.external_id, answered)
