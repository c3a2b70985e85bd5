"""Who may open which conversation: the visitor secret and the verified identity.

A visitor id alone grants nothing. At first connect the server issues the
browser a random secret (``secrets.token_urlsafe``) next to its visitor id and
keeps only the secret's SHA-256 in the conversation's metadata (see
:mod:`bot.storage.visitor_secrets`); resuming the conversation, its history
and its live events need that secret.

- A verified user (a valid ``user_hash``) gets the user's conversation; the
  host site's HMAC is the credential, no visitor secret is needed.
- An anonymous visitor whose conversation does not exist yet is trusted with
  it: nobody else can know a visitor id before its first message. Its
  secret's digest is stored with that first message.
- An anonymous visitor whose conversation exists must present a secret whose
  digest is stored there. Anyone else (a wrong or missing secret, or a
  conversation stored before secrets existed) gets a fresh visitor id and
  secret, so a fresh conversation, and never sees the old one's history.

The visitor id is logged only as :func:`short` (a truncated SHA-256).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.storage import visitor_secrets
from connectors.widget.identity import conversation_key
from connectors.widget.translate import CHANNEL

if TYPE_CHECKING:
    from bot.storage.store import Store
    from connectors.widget.identity import Identity
    from connectors.widget.translate import Hello

_LOGGER = logging.getLogger(__name__)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass(frozen=True)
class Access:
    """What a hello grants.

    Attributes:
        key: The conversation's external id.
        visitor: The visitor id the browser uses from now on.
        secret: The session's visitor secret (``None`` for a verified user).
        issued: The secret (and, when ``renewed``, the visitor id) is new:
            the hello answer carries it.
        renewed: The visitor id presented was refused and replaced.
        conversation_id: The store id of the conversation, when it exists.
        claimed: The secret's digest is stored (nothing to record at the
            first message).
    """

    key: str
    visitor: str
    secret: str | None
    issued: bool = False
    renewed: bool = False
    conversation_id: int | None = None
    claimed: bool = True


def short(visitor: str) -> str:
    """A visitor id as logs show it: 12 hex digits of its SHA-256."""
    return hashlib.sha256(visitor.encode()).hexdigest()[:12]


def digest(secret: str) -> str:
    """The hex SHA-256 of a visitor secret, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _is_secret(value: object) -> bool:
    return isinstance(value, str) and _SECRET.match(value) is not None


def _holds(stored: list[str], secret: str | None) -> bool:
    if secret is None:
        return False
    mine = digest(secret)
    return any(hmac.compare_digest(mine, d) for d in stored)


async def admit(store: Store, hello: Hello, identity: Identity) -> Access:
    """Decide which conversation the socket of ``hello`` opens.

    Raises:
        StorageError: The store cannot say whether the conversation exists.
    """
    key = conversation_key(identity, hello.visitor)
    if identity.verified:
        conversation = await visitor_secrets.find(store, CHANNEL, key)
        known = None if conversation is None else conversation.id
        return Access(key, hello.visitor, None, conversation_id=known)
    presented = hello.secret if _is_secret(hello.secret) else None
    assert presented is None or isinstance(presented, str)  # checked by _is_secret
    conversation = await visitor_secrets.find(store, CHANNEL, key)
    if conversation is None:
        secret = presented or secrets.token_urlsafe(32)
        return Access(key, key, secret, issued=presented is None, claimed=False)
    if _holds(visitor_secrets.digests(conversation), presented):
        return Access(key, key, presented, conversation_id=conversation.id)
    _LOGGER.info(
        "Widget visitor %s presented no valid secret for its conversation; it gets a new one.",
        short(key),
    )
    visitor = secrets.token_urlsafe(24)
    return Access(visitor, visitor, secrets.token_urlsafe(32), True, True, claimed=False)


async def claim(store: Store, access: Access) -> int:
    """Record the session's secret in its conversation (created if new); return its id."""
    assert access.secret is not None  # only anonymous sessions claim
    return await visitor_secrets.claim(store, CHANNEL, access.key, digest(access.secret))
