"""The detectors behind :class:`llm.pii.Redactor`: what counts as which kind of PII.

Each detector is a kind (the placeholder's name, e.g. ``PHONE``), a finder
that returns the spans of its values in a text, and a normaliser that makes
two spellings of one value share a placeholder. Validation is left to
maintained libraries where one exists: phone numbers to ``phonenumbers``
(libphonenumber's matcher and metadata), IBANs, US SSNs and the Luhn checksum
to ``python-stdnum``; card numbers and security codes are found by
:mod:`bot.redact`, which also masks them in the transcript.

Phone numbers: :class:`phonenumbers.PhoneNumberMatcher` runs once per
configured default region (``US``, ``GB`` and ``DE`` unless configured), so
national forms of those countries (``020 7946 0958``, ``0049 30 12345678``,
``(212) 555-0100``) are found as well as any ``+`` international number. A
match counts when it passes the configured leniency (``strict_grouping`` by
default: on the default bot's texts ``valid`` also took ``1.687`` and
``397 / 932`` for German numbers, ``possible`` took thousands of short numbers
such as ``30`` and ``10005``), or, whatever the leniency, when it is a possible
number of at least ``phone_min_digits`` digits (10 by default). The second rule
keeps numbers that are well-formed but not allocated, such as the US ``555``
range and the UK's drama numbers (``07700 900123``), which are exactly what
people type as examples and are phone-shaped enough to be someone's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban
from stdnum.us import ssn

from bot.redact import find_cards, find_security_codes

if TYPE_CHECKING:
    from llm.settings import PhoneLeniency

#: Span finder: the ``(start, end)`` of every value of its kind in a text.
Finder = Callable[[str], Iterable[tuple[int, int]]]

LENIENCIES: dict[str, int] = {
    "possible": Leniency.POSSIBLE,
    "valid": Leniency.VALID,
    "strict_grouping": Leniency.STRICT_GROUPING,
    "exact_grouping": Leniency.EXACT_GROUPING,
}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
# "maria dot gonzalez at gmail dot com", "maria(at)example(dot)org", "ann @ x.io".
_AT = r"(?:\s*@\s*|\s+at\s+|\s*[\[(<{]\s*at\s*[\])>}]\s*)"
_DOT = r"(?:\.|\s+dot\s+|\s*[\[(<{]\s*dot\s*[\])>}]\s*)"
_SPELLED = re.compile(
    rf"(?<![\w.@+-])(?P<local>[\w%+-]+(?:{_DOT}[\w%+-]+){{0,5}}){_AT}"
    rf"(?P<domain>[A-Za-z0-9-]+(?:{_DOT}[A-Za-z0-9-]+){{0,4}}{_DOT}[A-Za-z]{{2,6}})\b",
    re.IGNORECASE,
)
_SPELLED_TOKEN = re.compile(r"@|[\[(<{]\s*(?:at|dot)\s*[\])>}]|\bdot\b", re.IGNORECASE)
# With a plain " at " and a plain domain ("bought it at amazon.com") more is needed:
# a local part that looks like a mailbox, or a well-known mail provider.
_MAILBOX_LOCAL = re.compile(r"[._+\d]")
_MAIL_PROVIDERS = frozenset(
    "gmail googlemail yahoo ymail hotmail outlook live msn icloud me mac aol "
    "proton protonmail pm gmx web mail yandex zoho fastmail".split()
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])")
_SSN_KEYWORD = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)(?:\s*(?:[:#]|\bis\b)){0,2}\s*"
    r"(\d{9})\b",
    re.IGNORECASE,
)
_EXPIRY = re.compile(
    r"\b(?:expiry|expiration|expires|expire|exp|valid\s+(?:thru|through|until)|good\s+thru)\b"
    r"\.?(?:\s*(?:[:=]|\bdate\b|\bis\b|\bon\b|\bof\b)){0,3}\s*"
    r"((?:0?[1-9]|1[0-2])\s*[/-]\s*(?:\d{4}|\d{2}))(?![\w/]|[.,]\d)",
    re.IGNORECASE,
)
_PHONE_PUNCTUATION = re.compile(r"\+?[\d\s().-]+")
# A phone match inside a longer number or word is a fragment of something else.
_DIGIT_BEFORE = re.compile(r"(?:\d[ .-]?|\w)$")
_DIGIT_AFTER = re.compile(r"[ .-]?\d|\w")


@dataclass(frozen=True)
class Detector:
    """One kind of PII: its placeholder name, finder and normaliser."""

    kind: str
    find: Finder
    normalize: Callable[[str], str] = str


def digits(text: str) -> str:
    """Only the digits of ``text``."""
    return re.sub(r"\D", "", text)


def regex_finder(
    pattern: re.Pattern[str], accept: Callable[[str], bool] | None = None, group: int | None = None
) -> Finder:
    """A finder for ``pattern``'s matches that ``accept`` takes.

    The span is that of ``group``: by default group 1 when the pattern has
    groups (the value after a keyword), else the whole match.
    """
    if group is None:
        group = 1 if pattern.groups else 0

    def find(text: str) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(text):
            if match.end(group) > match.start(group):
                if accept is None or accept(match.group(group)):
                    yield match.span(group)

    return find


def _spelled_email_ok(match: re.Match[str]) -> bool:
    if _SPELLED_TOKEN.search(match.group(0)):
        return True
    local, domain = match.group("local"), match.group("domain")
    return bool(_MAILBOX_LOCAL.search(local)) or domain.split(".")[0].lower() in _MAIL_PROVIDERS


def find_spelled_emails(text: str) -> Iterator[tuple[int, int]]:
    """Spans of e-mail addresses written out (``ann dot lee at example dot com``)."""
    for match in _SPELLED.finditer(text):
        if _spelled_email_ok(match):
            yield match.span()


def email_key(value: str) -> str:
    """One key for every spelling of an address: ``ann.lee@example.com``."""
    value = re.sub(r"\s*[\[(<{]\s*(at|dot)\s*[\])>}]\s*", r" \1 ", value.lower())
    value = re.sub(r"\s+dot\s+", ".", value)
    value = re.sub(r"\s*@\s*|\s+at\s+", "@", value)
    return value.strip()


def phone_finder(regions: Sequence[str], leniency: PhoneLeniency, min_digits: int) -> Finder:
    """A finder for phone numbers in the national forms of ``regions`` and any ``+`` form."""
    level = LENIENCIES[leniency]

    def find(text: str) -> list[tuple[int, int]]:
        if sum(char.isdigit() for char in text) < 5:
            return []
        spans = []
        for region in regions:
            spans += [(m.start, m.end) for m in PhoneNumberMatcher(text, region, leniency=level)]
            if min_digits and level != Leniency.POSSIBLE:
                matcher = PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE)
                long = [m for m in matcher if _long_plain_number(m.raw_string, min_digits)]
                spans += [(m.start, m.end) for m in long]
        return [span for span in spans if not _part_of_longer_number(text, *span)]

    return find


def _long_plain_number(raw: str, min_digits: int) -> bool:
    """Whether ``raw`` has ``min_digits`` digits or more and only phone punctuation."""
    return len(digits(raw)) >= min_digits and _PHONE_PUNCTUATION.fullmatch(raw) is not None


def _part_of_longer_number(text: str, start: int, end: int) -> bool:
    """Whether digits or a word go on right at the span (``4111 [1111 1111 1112]``)."""
    return bool(_DIGIT_BEFORE.search(text[:start]) or _DIGIT_AFTER.match(text, end))


def check_regions(regions: Sequence[str]) -> list[str]:
    """Upper-case the region codes; raise ``ValueError`` for one phonenumbers does not know."""
    upper = [region.upper() for region in regions]
    unknown = [region for region in upper if region not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown phone region(s) {unknown}: use ISO 3166 codes such as 'GB'")
    return upper


def builtin_detectors(
    regions: Sequence[str], leniency: PhoneLeniency, min_digits: int
) -> list[Detector]:
    """The built-in kinds, in the order they run (earlier kinds win an overlap)."""
    return [
        Detector("EMAIL", regex_finder(_EMAIL), email_key),
        Detector("EMAIL", find_spelled_emails, email_key),
        Detector("IBAN", regex_finder(_IBAN, iban.is_valid), iban.compact),
        Detector("CARD", find_cards, digits),
        Detector("SSN", regex_finder(_SSN, ssn.is_valid, group=0), digits),
        Detector("SSN", regex_finder(_SSN_KEYWORD, ssn.is_valid), digits),
        Detector("CVV", find_security_codes),
        Detector("EXPIRY", regex_finder(_EXPIRY), lambda v: re.sub(r"\s", "", v)),
        Detector("PHONE", phone_finder(regions, leniency, min_digits), digits),
    ]
