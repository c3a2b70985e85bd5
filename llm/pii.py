"""PII redaction for prompts that leave the machine, and restoration of replies.

:class:`Redactor` replaces PII with stable placeholders like ``[EMAIL_1]``.
The same value gets the same placeholder for as long as one mapping is
reused, so a conversation redacted message by message stays consistent.
:meth:`Redactor.restore` puts the values back into the model's reply;
:class:`StreamRestorer` does the same for a streamed reply whose placeholders
may arrive split over several chunks.

What is found, in this order (an earlier kind wins where two overlap):

1. named patterns (``ORDER_ID``): the operator's ``llm.pii.patterns``, and
   the bot's own NLU regex entities listed in ``llm.pii.entities`` (the
   runtime hands them over), so an order id is redacted in every form the
   bot itself accepts (``HL-10005``, ``hl10005``, ``HL 10005``);
2. e-mail addresses, also spelled out (``maria dot gonzalez at gmail dot com``);
3. IBANs, card numbers (Luhn), US SSNs, card security codes and expiry dates
   next to a keyword (``CVV 123``, ``exp 12/27``);
4. phone numbers, international and national (see :mod:`llm.pii_detect`).

Names, street addresses and other free-form PII are **not** detected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.redact import luhn_ok
from llm.pii_detect import Detector, builtin_detectors, regex_finder

if TYPE_CHECKING:
    from llm.settings import PIISettings
    from llm.types import ChatMessage

__all__ = ["Mapping", "Redactor", "StreamRestorer", "luhn_ok"]

_LOGGER = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PLACEHOLDER = re.compile(r"(\[[A-Z][A-Z0-9_]*_\d+\])")

#: A name-to-value mapping such as ``{"EMAIL_1": "ann@example.com"}``.
Mapping = dict[str, str]


def _named_detector(name: str, patterns: str | list[str]) -> Detector:
    """The detector of one named pattern (or several, for one name)."""
    if not _NAME.match(name):
        raise ValueError(f"PII pattern name {name!r} must be an upper-case word")
    compiled = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"PII pattern {name!r} does not compile: {exc}") from exc
    finders = [regex_finder(c, group=0) for c in compiled]

    def find(text: str) -> Iterator[tuple[int, int]]:
        for finder in finders:
            yield from finder(text)

    return Detector(name, find)


def _disjoint(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans without overlaps: the earliest first, the longer of two starting together."""
    chosen: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if end > start and (not chosen or start >= chosen[-1][1]):
            chosen.append((start, end))
    return chosen


class Redactor:
    """Replace PII with placeholders before a prompt leaves the machine.

    Args:
        settings: Whether redaction is on, the named patterns (names are
            upper-case words) and the phone settings.

    Raises:
        ValueError: A pattern name is not an upper-case word or the regex
            does not compile.
    """

    def __init__(self, settings: PIISettings) -> None:
        self.enabled = settings.enabled
        self._detectors = [_named_detector(n, p) for n, p in settings.patterns.items()]
        self._detectors += builtin_detectors(
            settings.phone_regions, settings.phone_leniency, settings.phone_min_digits
        )

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
        for detector in self._detectors:
            # Placeholders made so far are never redacted again.
            parts = _PLACEHOLDER.split(text)
            for index in range(0, len(parts), 2):
                parts[index] = self._replace(parts[index], detector, mapping)
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
    def _replace(text: str, detector: Detector, mapping: Mapping) -> str:
        """Replace what ``detector`` finds in ``text`` (no placeholder in it) with placeholders."""
        if not text:
            return text
        pieces = []
        done = 0
        for start, end in _disjoint(detector.find(text)):
            name = Redactor._placeholder(text[start:end], detector, mapping)
            pieces += [text[done:start], f"[{name}]"]
            done = end
        return "".join(pieces) + text[done:]

    @staticmethod
    def _placeholder(value: str, detector: Detector, mapping: Mapping) -> str:
        """The placeholder name of ``value``: its earlier one, or a new one in ``mapping``."""
        kind, normalize = detector.kind, detector.normalize
        key = normalize(value)
        for name, known in mapping.items():
            if name.rsplit("_", 1)[0] == kind and normalize(known) == key:
                return name
        count = sum(1 for name in mapping if name.rsplit("_", 1)[0] == kind)
        name = f"{kind}_{count + 1}"
        mapping[name] = value
        return name


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
