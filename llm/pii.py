"""PII redaction for prompts that leave the machine, and restoration of replies.

:class:`Redactor` replaces e-mail addresses, phone numbers, payment card
numbers and configurable named patterns (such as order ids) with stable
placeholders like ``[EMAIL_1]``. The same value gets the same placeholder for
as long as one mapping is reused, so a conversation redacted message by
message stays consistent. :meth:`Redactor.restore` puts the values back into
the model's reply; :class:`StreamRestorer` does the same for a streamed reply
whose placeholders may arrive split over several chunks.

Detection order matters: named patterns first (they are the operator's
explicit intent, and order ids such as ``HL-12345`` must not look like phone
numbers), then e-mails, then Luhn-valid card numbers, then phone numbers.
Phone numbers need a ``+`` country code or the US ``(555) 123-4567`` /
``555-123-4567`` shapes, so dates, times, amounts and bare digit runs such as
order numbers are left alone.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm.settings import PIISettings
    from llm.types import ChatMessage

_LOGGER = logging.getLogger(__name__)

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
# 13 to 19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
_PHONE_INTL = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,5}(?![\w-])"
)
_PHONE_US = re.compile(
    r"(?<![\w+-])(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"(\[[A-Z][A-Z0-9_]*_\d+\])")

#: A name-to-value mapping such as ``{"EMAIL_1": "ann@example.com"}``.
Mapping = dict[str, str]


def luhn_ok(digits: str) -> bool:
    """Return whether the digit string passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_card(value: str) -> bool:
    digits = _digits(value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _is_intl_phone(value: str) -> bool:
    return 8 <= len(_digits(value)) <= 15


def _always(value: str) -> bool:
    return True


def _casefold_email(value: str) -> str:
    return value.lower()


class Redactor:
    """Replace PII with placeholders before a prompt leaves the machine.

    Args:
        settings: Whether redaction is on, and the extra named patterns
            (by default ``ORDER_ID`` for ids like ``HL-12345``); names are upper-case words.

    Raises:
        ValueError: A pattern name is not an upper-case word or the regex
            does not compile.
    """

    def __init__(self, settings: PIISettings) -> None:
        self.enabled = settings.enabled
        detectors: list[tuple[str, re.Pattern[str], Callable[[str], bool], Callable[[str], str]]]
        detectors = []
        for name, pattern in settings.patterns.items():
            if not _NAME.match(name):
                raise ValueError(f"PII pattern name {name!r} must be an upper-case word")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"PII pattern {name!r} does not compile: {exc}") from exc
            detectors.append((name, compiled, _always, str))
        detectors += [
            ("EMAIL", _EMAIL, _always, _casefold_email),
            ("CARD", _CARD, _is_card, _digits),
            ("PHONE", _PHONE_INTL, _is_intl_phone, _digits),
            ("PHONE", _PHONE_US, _always, lambda v: _digits(v)[-10:]),
        ]
        self._detectors = detectors

    def redact(self, text: str, mapping: Mapping | None = None) -> tuple[str, Mapping]:
        """Replace the PII in ``text`` with placeholders.

        Args:
            text: The text to redact.
            mapping: A mapping from earlier calls of the same conversation;
                it is extended in place so repeated values keep their
                placeholder.

        Returns:
            The redacted text and the mapping (placeholder name to value,
            e.g. ``{"EMAIL_1": "ann@example.com"}``).
        """
        mapping = {} if mapping is None else mapping
        if not self.enabled:
            return text, mapping
        for kind, pattern, accept, normalize in self._detectors:
            # Placeholders made so far are never redacted again.
            repl = functools.partial(
                self._placeholder, kind=kind, accept=accept, normalize=normalize, mapping=mapping
            )
            parts = _PLACEHOLDER.split(text)
            for index in range(0, len(parts), 2):
                parts[index] = pattern.sub(repl, parts[index])
            text = "".join(parts)
        return text, mapping

    def redact_messages(
        self, messages: Sequence[ChatMessage], mapping: Mapping | None = None
    ) -> tuple[list[ChatMessage], Mapping]:
        """Redact every message of a prompt with one shared mapping.

        Returns:
            The redacted messages (same roles, same order) and the mapping.
        """
        mapping = {} if mapping is None else mapping
        redacted = []
        for message in messages:
            content, mapping = self.redact(message.content, mapping)
            redacted.append(replace(message, content=content))
        return redacted, mapping

    @staticmethod
    def restore(text: str, mapping: Mapping) -> str:
        """Put the values of ``mapping`` back in place of their placeholders.

        Exact placeholders (``[EMAIL_1]``) are restored, and so are the forms a
        model tends to produce: lower case, inner spaces (``[ email_1 ]``) and
        a missing bracket (``EMAIL_1``, ``[EMAIL_1``).
        """
        pattern = _restore_pattern(mapping)
        if pattern is None:
            return text
        return pattern.sub(lambda m: mapping[(m.group(1) or m.group(2)).upper()], text)

    @staticmethod
    def _placeholder(
        match: re.Match[str],
        kind: str,
        accept: Callable[[str], bool],
        normalize: Callable[[str], str],
        mapping: Mapping,
    ) -> str:
        value = match.group(0)
        if not accept(value):
            return value
        key = normalize(value)
        for name, known in mapping.items():
            if name.rsplit("_", 1)[0] == kind and normalize(known) == key:
                return f"[{name}]"
        count = sum(1 for name in mapping if name.rsplit("_", 1)[0] == kind)
        name = f"{kind}_{count + 1}"
        mapping[name] = value
        return f"[{name}]"


def _restore_pattern(mapping: Iterable[str]) -> re.Pattern[str] | None:
    names = sorted(mapping, key=len, reverse=True)
    if not names:
        return None
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(
        rf"\[\s*({alternatives})\s*\]|\[?(?<![A-Za-z0-9_])({alternatives})(?![A-Za-z0-9_])\]?",
        re.IGNORECASE,
    )


class StreamRestorer:
    """Restore placeholders in a streamed reply, holding back split placeholders.

    A chunk that ends in what could be the start of a placeholder (``[EMA``)
    is held until the next chunk shows whether it is one.

    Args:
        mapping: The mapping returned by :meth:`Redactor.redact_messages`.
    """

    def __init__(self, mapping: Mapping) -> None:
        self._mapping = mapping
        self._held = ""
        self._longest = max((len(name) for name in mapping), default=0) + 4
        self._tail = re.compile(r"(?:\[\s*)?[A-Za-z0-9_]*$")

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the text that can be shown now."""
        if not self._mapping:
            return chunk
        text = self._held + chunk
        match = self._tail.search(text)
        start = match.start() if match and len(match.group(0)) <= self._longest else len(text)
        # A held tail may still complete "NAME]" at the front of the next chunk.
        self._held = text[start:]
        return Redactor.restore(text[:start], self._mapping)

    def flush(self) -> str:
        """Return whatever is still held, restored; call once at the end."""
        text, self._held = self._held, ""
        return Redactor.restore(text, self._mapping)
