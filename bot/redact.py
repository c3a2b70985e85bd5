"""Masking of payment card numbers and security codes before a message is kept.

The default knowledge base promises that full card numbers are never stored,
and no flow needs one, so :func:`mask_payment` is applied to every inbound
message's text as the message is built (:class:`bot.messages.InboundMessage`):
the store, the turn's events, the NLU and the live views only ever see
``••••••••••••4242``.

What counts:

- a card number is 13 to 19 digits that pass the Luhn checksum
  (:mod:`stdnum.luhn`), written in one run or in card-like groups: fours
  (``4242 4242 4242 4242``, also with ``-`` or ``.``) or Amex's and Diners'
  4-6-5 and 4-6-4, with one kind of separator. All digits but the last four
  become ``•``; the separators stay, so the text keeps its length.
- a security code is 3 or 4 digits right after (or before) CVV, CVC, CVN,
  CSC, CID, "security code" or "card verification code/value/number", e.g.
  ``CVV: 123``, ``my security code is 4321``, ``123 is my cvv``.

:mod:`llm.pii` uses the same finders to keep these values out of cloud prompts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from stdnum import luhn

MASK = "•"

_CARD = re.compile(
    r"(?<![\w.,+-])"
    r"(?:\d{13,19}"
    r"|\d{4}([ .-])\d{4}(?:\1\d{4}){1,3}(?:\1\d{1,3})?"
    r"|\d{4}([ .-])\d{6}\2\d{4,5})"
    r"(?![\w+-]|[.,]\d)"
)
_CVV_WORD = (
    r"(?:cvv2?|cvc2?|cvn|csc|cid|security\s+code"
    r"|card\s+(?:verification|security)\s+(?:code|value|number))"
)
_CVV_AFTER = re.compile(
    rf"\b{_CVV_WORD}\b(?:\s*(?:[:=#-]|\bis\b|\bnumber\b|\bno\b\.?)){{0,3}}\s*"
    r"(\d{3,4})(?![\w+-]|[.,/:]\d)",
    re.IGNORECASE,
)
_CVV_BEFORE = re.compile(
    # Not the last group of a longer number, masked or not ("•••• 4242 cvv 123").
    rf"(?<![\w.,/:+•-])(?<![\d•] )(\d{{3,4}})\s+(?:is\s+)?(?:the\s+|my\s+)?{_CVV_WORD}\b",
    re.IGNORECASE,
)


def luhn_ok(digits: str) -> bool:
    """Return whether the digit string passes the Luhn checksum."""
    return digits.isdigit() and luhn.is_valid(digits)


def is_card_number(value: str) -> bool:
    """Whether ``value`` (digits and separators) is a Luhn-valid 13 to 19 digit number."""
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def find_cards(text: str) -> Iterator[tuple[int, int]]:
    """Yield the ``(start, end)`` spans of the card numbers in ``text``."""
    for match in _CARD.finditer(text):
        if is_card_number(match.group(0)):
            yield match.span()


def find_security_codes(text: str) -> Iterator[tuple[int, int]]:
    """Yield the spans of the CVV/CVC digits (only the digits) in ``text``."""
    for pattern in (_CVV_AFTER, _CVV_BEFORE):
        for match in pattern.finditer(text):
            yield match.span(1)


def _mask_digits(value: str, keep: int) -> str:
    """Replace every digit of ``value`` but the last ``keep`` with :data:`MASK`."""
    total = sum(char.isdigit() for char in value)
    seen = 0
    out = []
    for char in value:
        if char.isdigit():
            seen += 1
            out.append(char if seen > total - keep else MASK)
        else:
            out.append(char)
    return "".join(out)


def mask_payment(text: str) -> str:
    """Mask card numbers (all but the last four digits) and security codes in ``text``."""
    if not any(char.isdigit() for char in text):
        return text
    spans = [(start, end, 4) for start, end in find_cards(text)]
    # "4242 4242 4242 4242 cvv 123": the card's last group is not the code.
    spans += [
        (start, end, 0)
        for start, end in find_security_codes(text)
        if not any(start < c_end and c_start < end for c_start, c_end, _ in spans)
    ]
    for start, end, keep in sorted(spans, reverse=True):
        text = text[:start] + _mask_digits(text[start:end], keep) + text[end:]
    return text
