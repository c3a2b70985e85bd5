"""Extractive answers: quote the most relevant part of the best KB section.

No model writes anything here, so nothing can be invented. A section of an
article (a ``##`` heading and its body) is split into *units*: sentences,
list items and table rows, a table row rendered with its column names
("Standard: Delivery time after dispatch 3 to 5 business days; Price
$5.95"). Every unit is embedded once, with its article title and heading.

For a question, the sections of the retrieved passages compete: a section's
score mixes its passage's retrieval score with its best unit's similarity to
the question (:data:`PASSAGE_WEIGHT`). The winner's best unit is quoted with
the units around it that score nearly as well (within :data:`UNIT_MARGIN`),
up to :data:`MAX_UNITS` units and :data:`MAX_WORDS` words, in reading order.
A section of at most :data:`WHOLE_SECTION_WORDS` words (every section of the
default KB) is quoted whole: its sentences usually need each other, and on
the development sets whole sections held the answer more often than the best
sentences did. A runner-up section within :data:`SECOND_SECTION_MARGIN` is
quoted after the best one.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from llm.grounding import content_words, stem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.types import Passage

#: A section's score: this much retrieval score, the rest best-unit similarity.
PASSAGE_WEIGHT = 0.5
#: Units within this similarity of the best one are quoted with it.
UNIT_MARGIN = 0.08
#: Added to a section's score per share of the question's content words it contains.
LEXICAL_WEIGHT = 0.1
#: A runner-up section this close to the best is quoted too: the two often
#: share the answer ("Returns" and "Refund timing" for a refund question).
SECOND_SECTION_MARGIN = 0.05
MAX_UNITS = 3
MAX_WORDS = 80
WHOLE_SECTION_WORDS = 150

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(*])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")


class Embedder(Protocol):
    """A sentence encoder returning L2-normalised rows."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


@dataclass(frozen=True)
class Unit:
    """One quotable piece of a section: a sentence, list item or table row."""

    text: str
    listed: bool = False


@dataclass
class Section:
    """An article section split into units, with their embeddings once computed."""

    source: str
    title: str
    heading: str
    units: list[Unit]
    vectors: np.ndarray | None = field(default=None, repr=False)

    @property
    def words(self) -> int:
        """How many words the section has."""
        return sum(len(u.text.split()) for u in self.units)

    def context(self, unit: Unit) -> str:
        """What is embedded for ``unit``: title, heading and the unit."""
        head = f"{self.title}: {self.heading}" if self.heading else self.title
        return f"{head}. {unit.text}"


@dataclass(frozen=True)
class Extract:
    """The quote chosen for a question.

    Attributes:
        text: The quoted units, ready to show.
        source: The article file, e.g. ``warranty.md``.
        title: The article title (the citation).
        heading: The section heading.
        similarity: The best unit's cosine similarity to the question.
        score: The section's combined score.
        runner_up: The next section's combined score (0 when there was none).
        coverage: The IDF-weighted share of the question's content words that
            the section contains; a word the KB never uses weighs the most.
        quoted: Every quoted section as ``(passage id, article title)``, best first.
    """

    text: str
    source: str
    title: str
    heading: str
    similarity: float
    score: float
    runner_up: float
    coverage: float = 0.0
    quoted: tuple[tuple[str, str], ...] = ()

    @property
    def titles(self) -> tuple[str, ...]:
        """The titles of the quoted articles, best first, each once."""
        return tuple(dict.fromkeys(title for _, title in self.quoted)) or (self.title,)

    @property
    def citations(self) -> tuple[str, ...]:
        """The passage ids (``<article>#<chunk>``) of the quoted sections."""
        return tuple(passage_id for passage_id, _ in self.quoted)


def plain(text: str) -> str:
    """Drop Markdown emphasis and collapse whitespace."""
    text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


def _cells(line: str) -> list[str]:
    return [plain(c) for c in line.strip().strip("|").split("|")]


def split_units(body: str) -> list[Unit]:
    """Split a section body into sentences, list items and table rows."""
    units: list[Unit] = []
    header: list[str] | None = None
    paragraph: list[str] = []

    def flush() -> None:
        text = plain(" ".join(paragraph))
        units.extend(Unit(s) for s in _SENTENCE.split(text) if s.strip())
        paragraph.clear()

    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("|") or _LIST_ITEM.match(line):
            flush()
        if not stripped:
            header = None
        elif stripped.startswith("|"):
            if _TABLE_RULE.match(stripped.strip("|")):
                continue
            cells = _cells(stripped)
            if header is None:
                header = cells
                continue
            pairs = [f"{h} {c}" if h else c for h, c in zip(header[1:], cells[1:], strict=False)]
            units.append(Unit(f"{cells[0]}: {'; '.join(pairs)}", listed=True))
        elif _LIST_ITEM.match(line):
            units.append(Unit(plain(_LIST_ITEM.sub("", line)), listed=True))
        else:
            paragraph.append(stripped)
    flush()
    return [u for u in units if u.text]


def render(units: Sequence[Unit]) -> str:
    """Join quoted units: list items and rows one per line, sentences as prose."""
    if any(u.listed for u in units):
        return "\n".join(f"- {u.text}" if u.listed else u.text for u in units)
    return " ".join(u.text for u in units)


class Extractor:
    """Chooses and quotes the best units for a question among retrieved sections.

    Args:
        encoder: The sentence encoder (the KB's own, so scores are comparable).
        sections: The KB's sections, keyed by ``(source, heading)``.
    """

    def __init__(self, encoder: Embedder, sections: dict[tuple[str, str], Section]) -> None:
        self._encoder = encoder
        self.sections = sections
        self._stems = {key: _stems_of(section) for key, section in sections.items()}
        frequency: Counter[str] = Counter()
        for stems in self._stems.values():
            frequency.update(stems)
        total = len(sections) + 1
        self._idf = {s: math.log(total / (n + 1)) + 1.0 for s, n in frequency.items()}
        self._unknown_idf = math.log(total) + 1.0

    def coverage(self, question: str, key: tuple[str, str]) -> float:
        """The IDF-weighted share of the question's content words in the section ``key``."""
        words = {stem(w) for w in content_words(question)}
        if not words:
            return 0.0
        weights = {w: self._idf.get(w, self._unknown_idf) for w in words}
        found = self._stems.get(key, frozenset())
        return sum(v for w, v in weights.items() if w in found) / sum(weights.values())

    def _vectors(self, section: Section) -> np.ndarray:
        if section.vectors is None:
            texts = [section.context(u) for u in section.units]
            section.vectors = self._encoder.encode(texts)
        return section.vectors

    async def extract(self, question: str, passages: Sequence[Passage]) -> Extract | None:
        """Return the quote for ``question`` from the sections of ``passages``."""
        if not passages:
            return None
        return await asyncio.to_thread(self._extract, question, passages)

    def _extract(self, question: str, passages: Sequence[Passage]) -> Extract | None:
        query = self._encoder.encode([question])[0]
        scored: list[tuple[float, Section, np.ndarray, str]] = []
        seen: set[tuple[str, str]] = set()
        for passage in passages:
            key = (passage.source, passage.extra.get("heading", ""))
            section = self.sections.get(key)
            if section is None or key in seen or not section.units:
                continue
            seen.add(key)
            sims = self._vectors(section) @ query
            combined = PASSAGE_WEIGHT * passage.score + (1 - PASSAGE_WEIGHT) * float(sims.max())
            combined += LEXICAL_WEIGHT * self.coverage(question, key)
            scored.append((combined, section, sims, passage.id))
        if not scored:
            return None
        scored.sort(key=lambda item: -item[0])
        best, section, sims, passage_id = scored[0]
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        text = render(self._choose(section, sims))
        quoted = [(passage_id, section.title)]
        if len(scored) > 1 and best - runner_up <= SECOND_SECTION_MARGIN:
            _, other, other_sims, other_id = scored[1]
            text = f"{text}\n\n{render(self._choose(other, other_sims))}"
            quoted.append((other_id, other.title))
        return Extract(
            text=text,
            quoted=tuple(quoted),
            source=section.source,
            title=section.title,
            heading=section.heading,
            similarity=float(sims.max()),
            score=best,
            runner_up=runner_up,
            coverage=self.coverage(question, (section.source, section.heading)),
        )

    @staticmethod
    def _choose(section: Section, sims: np.ndarray) -> list[Unit]:
        if section.words <= WHOLE_SECTION_WORDS:
            return list(section.units)
        order = [int(i) for i in np.argsort(-sims)]
        top = float(sims[order[0]])
        chosen = [order[0]]
        words = len(section.units[order[0]].text.split())
        for index in order[1:MAX_UNITS]:
            size = len(section.units[index].text.split())
            if top - float(sims[index]) > UNIT_MARGIN or words + size > MAX_WORDS:
                break
            chosen.append(index)
            words += size
        return [section.units[i] for i in sorted(chosen)]


def _stems_of(section: Section) -> frozenset[str]:
    text = " ".join([section.title, section.heading, *(u.text for u in section.units)])
    return frozenset(stem(w) for w in content_words(text))


def sections_from_rows(
    rows: Sequence[dict[str, object]], overlap: int
) -> dict[tuple[str, str], Section]:
    """Rebuild each section's text from the KB's chunk rows and split it into units.

    A section longer than one chunk was cut into windows that overlap by
    ``overlap`` words; each later window's first ``overlap`` words are dropped.
    """
    bodies: dict[tuple[str, str], tuple[str, list[str]]] = {}
    ordered = sorted(rows, key=lambda r: (str(r["source"]), int(str(r["chunk_index"]))))
    for row in ordered:
        key = (str(row["source"]), str(row["heading"] or ""))
        _title, parts = bodies.setdefault(key, (str(row["title"]), []))
        text = str(row["text"])
        if parts:
            words = list(re.finditer(r"\S+", text))
            text = text[words[overlap].start() :] if len(words) > overlap else ""
        parts.append(text)
    return {
        key: Section(key[0], title, key[1], split_units("\n".join(parts)))
        for key, (title, parts) in bodies.items()
    }
