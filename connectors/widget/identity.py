"""Middleware: optional identity verification of signed-in visitors.

The host site renders ``data-user-id`` and ``data-user-hash`` = hex
HMAC-SHA256 of the user id under ``identity_secret``. A visitor whose hash
matches is marked verified in the inbound metadata; anyone else, including a
visitor with a wrong hash, stays anonymous. A wrong hash is logged, never
explained to the client.

A verified user's conversation is the user's, whatever browser or visitor id
they come with (:func:`conversation_key`): signing in as another user in the
same browser never shows the previous user's history.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import SecretStr

_LOGGER = logging.getLogger(__name__)
#: The prefix of a verified user's conversation key; visitor ids cannot hold ``:``.
USER_KEY_PREFIX = "user:"
#: The key must fit the conversation id column (255 characters).
MAX_USER_ID_CHARS = 255 - len(USER_KEY_PREFIX)


@dataclass(frozen=True)
class Identity:
    """Who the visitor is: anonymous, or a user id the host site signed."""

    verified: bool = False
    user_id: str | None = None


ANONYMOUS = Identity()


def conversation_key(identity: Identity, visitor: str) -> str:
    """The conversation's external id: the verified user's key, else the visitor id."""
    if identity.verified and identity.user_id is not None:
        return USER_KEY_PREFIX + identity.user_id
    return visitor


def sign(secret: str, user_id: str) -> str:
    """The hash a host site computes for ``user_id`` (hex HMAC-SHA256)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify(secret: SecretStr | None, user_id: object, user_hash: object) -> Identity:
    """Return the verified identity, or :data:`ANONYMOUS` when it does not check out."""
    if user_id is None and user_hash is None:
        return ANONYMOUS
    if secret is None:
        _LOGGER.info("A visitor sent an identity but no identity_secret is set; anonymous.")
        return ANONYMOUS
    if (
        not isinstance(user_id, str)
        or not isinstance(user_hash, str)
        or not user_id
        or len(user_id) > MAX_USER_ID_CHARS
    ):
        _LOGGER.warning("A visitor sent a malformed identity; treating it as anonymous.")
        return ANONYMOUS
    expected = sign(secret.get_secret_value(), user_id)
    if not hmac.compare_digest(expected, user_hash.strip().lower()):
        _LOGGER.warning("A visitor's identity hash does not match; treating it as anonymous.")
        return ANONYMOUS
    return Identity(verified=True, user_id=user_id)
