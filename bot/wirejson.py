r"""Strict JSON for bytes that arrive from outside: a reason, never a traceback.

:func:`json.loads` accepts documents that break later, far from the edge:
nesting deep enough to raise :class:`RecursionError`, integers of thousands of
digits (``ValueError`` past Python's digit limit, overflow in a database
column below it), ``NaN`` and ``Infinity`` (PostgreSQL's JSON refuses them)
and lone UTF-16 surrogates such as ``"\\ud800"`` (nothing can encode them to
UTF-8). :func:`loads` refuses each of them up front with
:class:`InvalidPayload`, whose message says what is wrong, so every edge
answers a 4xx with a reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bot.errors import InvalidInput

#: Deepest nesting accepted: real payloads (Slack's block kit included) stay under 20.
MAX_DEPTH = 64
#: Integers must fit a signed 64-bit column.
MAX_INT = 2**63 - 1


class InvalidPayload(InvalidInput):
    """A body or frame from outside is not acceptable JSON; the message says why."""


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw`` as strict JSON and check every value in it.

    Raises:
        InvalidPayload: ``raw`` is not UTF-8, not JSON, or holds a value that
            :func:`check` refuses.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise InvalidPayload(f"the JSON is nested deeper than {max_depth} levels") from exc
    except json.JSONDecodeError as exc:
        raise InvalidPayload(f"the body is not valid JSON: {exc.msg} at {exc.pos}") from exc
    except ValueError as exc:  # Python's int digit limit, or a refused constant.
        raise InvalidPayload(f"the body holds a value out of range: {exc}") from exc
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse deep nesting, huge integers, non-finite floats and lone surrogates.

    The walk is iterative, so it cannot itself run out of stack.

    Raises:
        InvalidPayload: Naming the first offending value.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= max_depth:
                raise InvalidPayload(f"the JSON is nested deeper than {max_depth} levels")
            for key, child in item.items():
                check_text(key, "a key")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= max_depth:
                raise InvalidPayload(f"the JSON is nested deeper than {max_depth} levels")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item, "a string")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int) and not -MAX_INT - 1 <= item <= MAX_INT:
            raise InvalidPayload("an integer is outside the signed 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidPayload("a number is not finite")


def check_text(text: str, what: str = "the text") -> None:
    r"""Refuse a string that UTF-8 cannot encode (a lone surrogate) or that holds NUL.

    PostgreSQL's ``text`` refuses ``\\x00``, and a lone surrogate breaks every
    encoder downstream (database, log, socket).

    Raises:
        InvalidPayload: Saying which ``what`` is wrong.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayload(f"{what} holds a lone UTF-16 surrogate at {exc.start}") from exc
    if "\x00" in text:
        raise InvalidPayload(f"{what} holds a NUL character")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
