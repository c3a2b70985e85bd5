"""Typed reads of the fields of a Slack payload: a wrong type is a 4xx, never a crash.

A payload is signed by Slack, but its JSON can still hold anything (a
``user`` that is a string, ``actions: 5``), and a signed request can be
replayed with any body by whoever holds the signing secret. Every read of a
field the connector relies on goes through these helpers: a missing field
reads as empty, a field of the wrong type raises :class:`InvalidPayload`
naming its path, which the edge answers with a 400 and a reason.
"""

from __future__ import annotations

from typing import Any

from bot.wirejson import InvalidPayload


def obj(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """The object at ``parent[key]``; ``{}`` when it is missing or null.

    Raises:
        InvalidPayload: It is there but not an object.
    """
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidPayload(f"{path}.{key} must be an object")
    return value


def objects(parent: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    """The list of objects at ``parent[key]``; ``[]`` when it is missing or null.

    Raises:
        InvalidPayload: It is there but not a list of objects.
    """
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidPayload(f"{path}.{key} must be a list of objects")
    return value


def text(parent: dict[str, Any], key: str, path: str) -> str | None:
    """The string at ``parent[key]``; ``None`` when it is missing, null or empty.

    Raises:
        InvalidPayload: It is there but not a string.
    """
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"{path}.{key} must be a string")
    return value or None
