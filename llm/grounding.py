"""Groundedness checks: may a model's draft be shown as the answer?

A draft is shown only when every check passes:

* ``numbers``: every number in it (prices, durations, counts, written as
  digits or as the words one to twenty) appears in the cited passages or in
  the question. This catches "at least 8 characters" where the article says 10.
* ``names``: every proper noun (a capitalised word that does not start a
  sentence) appears in the passages or the question.
* ``loop``: no repetition loop (a word 4-gram that occurs three times, or a
  sentence said twice).
* ``complete``: the model stopped by itself, not at the token cap.
* ``hedge``: no refusal, apology or "I'm not sure" (:func:`llm.confidence.hedges`).
* ``overlap``: at least :data:`MIN_OVERLAP` of its content words occur in
  the passages: a fluent answer about something else fails.
* ``empty``: it says something.

Citation markers (``[1]``) are removed before checking, and list numbering
such as "[1] Visa" at the start of a line is not a citation
(:func:`citation_numbers`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm.confidence import hedges

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: The share of a draft's content words that must occur in the passages.
MIN_OVERLAP = 0.6
#: A word n-gram of this length occurring :data:`LOOP_REPEATS` times is a loop.
LOOP_NGRAM = 4
LOOP_REPEATS = 3

_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16",
    "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "sixty": "60", "ninety": "90", "hundred": "100",
}  # fmt: skip
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile("[A-Za-z][A-Za-z'\u2019-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+|\n+")
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|apologies|as an ai)\b", re.IGNORECASE)
_MARKER = re.compile(r"\s*\[\d+\]")
_LIST_NUMBER = re.compile(r"^\s*\[(\d+)\]\s", re.MULTILINE)
_CITATION = re.compile(r"\[(\d+)\]")
# Function words and words any answer may use; the rest are content words.
_STOP = frozenset(
    """a an the and or but if then than so to of in on at by for from with without about
    as is are was were be been being it its this that these those there here you your yours
    we our us i me my they them their he she his her do does did done can could will would
    shall should may might must have has had not no yes any all some each every more most
    less least very just also only too up down out over under again once when where which who
    what why how into onto per via get got please thanks thank hi hello sure okay ok
    available same other such both either neither own one ones need needs use used""".split()
)
# Words a grounded answer may capitalise that are not names.
_COMMON_CAPS = frozenset({"i", "ok", "faq", "us", "et", "pt", "ct", "mt", "am", "pm", "id"})


@dataclass(frozen=True)
class Checks:
    """The outcome of the groundedness checks of one draft.

    Attributes:
        failures: The names of the checks that failed (empty: the draft may be shown).
        overlap: The share of the draft's content words found in the passages.
        unsupported: The numbers and names that the passages do not contain.
    """

    failures: tuple[str, ...]
    overlap: float
    unsupported: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return not self.failures


def citation_numbers(text: str, passages: int) -> list[int]:
    """Return the distinct valid ``[n]`` citations of ``text`` in order.

    A ``[n]`` that starts a line is list numbering ("[1] Visa"), not a citation.
    """
    body = _LIST_NUMBER.sub(" ", text)
    found = (int(m) for m in _CITATION.findall(body))
    return list(dict.fromkeys(n for n in found if 1 <= n <= passages))


def strip_markers(text: str) -> str:
    """Remove ``[n]`` citation markers (list numbering at a line start stays)."""
    kept: list[str] = []
    for line in text.splitlines():
        match = _LIST_NUMBER.match(line + " ")
        head, rest = (line[: match.end() - 1], line[match.end() - 1 :]) if match else ("", line)
        kept.append(head + _MARKER.sub("", rest))
    return "\n".join(kept).strip()


def numbers_in(text: str) -> set[str]:
    """Return the numbers of ``text``, digits and number words, normalised."""
    found = {_normal_number(n) for n in _NUMBER.findall(text)}
    for word in _WORD.findall(text.lower()):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found


def _normal_number(raw: str) -> str:
    digits = raw.replace(",", "")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits.lstrip("0") or "0"


def content_words(text: str) -> list[str]:
    """Return the lowercased content words of ``text`` (no function words)."""
    words = (w.lower().strip("'\u2019-") for w in _WORD.findall(text))
    return [w for w in words if len(w) > 2 and w not in _STOP]


def stem(word: str) -> str:
    """A crude stem, enough to match "refunds" with "refund" and "shipped" with "ship"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def proper_nouns(text: str) -> set[str]:
    """Return capitalised words that do not start a sentence or a line."""
    names: set[str] = set()
    for sentence in _SENTENCE_END.split(text):
        words = _WORD.findall(sentence)
        for word in words[1:]:
            if word[0].isupper() and word.lower() not in _COMMON_CAPS:
                names.add(word.strip("'\u2019-"))
    return names


def has_loop(text: str) -> bool:
    """Return whether ``text`` repeats itself: an n-gram thrice or a sentence twice."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = Counter(tuple(words[i : i + LOOP_NGRAM]) for i in range(len(words) - LOOP_NGRAM + 1))
    if grams and max(grams.values()) >= LOOP_REPEATS:
        return True
    sentences = [s.strip().lower() for s in _SENTENCE_END.split(text) if len(s.split()) >= 4]
    return len(sentences) != len(set(sentences))


def overlap(text: str, sources: Iterable[str]) -> float:
    """Return the share of the content words of ``text`` that occur in ``sources``."""
    words = content_words(text)
    if not words:
        return 0.0
    known = {stem(w) for source in sources for w in content_words(source)}
    return sum(stem(w) in known for w in words) / len(words)


def check(
    draft: str, passages: Sequence[str], question: str = "", *, finish_reason: str = "stop"
) -> Checks:
    """Run every groundedness check on ``draft`` against ``passages``.

    Args:
        draft: The model's answer as written (citation markers allowed).
        passages: The texts of the passages it may rely on (with their titles).
        question: The customer's question: numbers and names it gave may be repeated.
        finish_reason: The completion's: ``length`` means it hit the token cap.
    """
    text = strip_markers(draft)
    failures: list[str] = []
    if not content_words(text):
        return Checks(("empty",), 0.0)
    source = "\n".join([*passages, question])
    known_numbers = numbers_in(source)
    unsupported = sorted(n for n in numbers_in(text) if n not in known_numbers)
    if unsupported:
        failures.append("numbers")
    lowered = source.lower()
    names = sorted(n for n in proper_nouns(text) if n.lower() not in lowered)
    if names:
        failures.append("names")
    if has_loop(text):
        failures.append("loop")
    if finish_reason == "length":
        failures.append("complete")
    if hedges(text) or _APOLOGY.search(text):
        failures.append("hedge")
    share = overlap(text, [*passages, question])
    if share < MIN_OVERLAP:
        failures.append("overlap")
    return Checks(tuple(failures), share, tuple([*unsupported, *names]))
