"""Agent passwords, hashed with argon2id (argon2-cffi).

Verifying costs tens of milliseconds of CPU, so the async helpers run it
in a worker thread; an unknown email is checked against a dummy hash, so
both failures take as long.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.errors import ConfigError

_HASHER = PasswordHasher()  # argon2id with the library's recommended costs
_DUMMY = _HASHER.hash("not a password of anyone")
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    """Return the argon2id hash (``$argon2id$...``) of ``password``.

    Raises:
        ConfigError: The password is shorter than :data:`MIN_LENGTH`.
    """
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash is checked against a dummy."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` off the event loop."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """:func:`verify_password` off the event loop."""
    return await asyncio.to_thread(verify_password, password_hash, password)
