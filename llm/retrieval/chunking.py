"""Split knowledge-base articles into passages small enough to embed and cite.

An article is a Markdown file: its first ``#`` heading is the title, each
``##`` (or deeper) heading starts a section. A section longer than
``chunk_words`` words is cut into balanced windows that overlap by a few
words, so a sentence that straddles a cut is still whole in one chunk. Every
chunk keeps the article title and its section heading, which go into the
embedding and the prompt, and gets a citation id ``<file name>#<index>``
(for example ``returns-policy.md#2``) that stays the same until the article
itself changes.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# Bump when the chunking changes, so every article is re-embedded.
CHUNKER_VERSION = "1"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """One passage of an article.

    Attributes:
        source: The article's file name, e.g. ``returns-policy.md``.
        index: The 0-based position of the chunk in the article.
        title: The article title.
        heading: The section heading (empty for text before the first one).
        text: The passage text, with its line breaks.
    """

    source: str
    index: int
    title: str
    heading: str
    text: str

    @property
    def id(self) -> str:
        """The stable citation id, ``<source>#<index>``."""
        return f"{self.source}#{self.index}"

    def embedding_text(self) -> str:
        """Return what is embedded: title, heading and text."""
        head = f"{self.title}: {self.heading}" if self.heading else self.title
        return f"{head}.\n{self.text}"


def overlap_words(chunk_words: int) -> int:
    """Return the overlap between windows: an eighth of the window, at least 5 words."""
    return max(5, chunk_words // 8)


def content_hash(text: str, chunk_words: int) -> str:
    """Hash an article's text together with what shapes its chunks."""
    digest = hashlib.sha256(f"v{CHUNKER_VERSION}|{chunk_words}|".encode())
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def _sections(text: str, fallback_title: str) -> tuple[str, list[tuple[str, str]]]:
    """Split Markdown into its title and ``(heading, body)`` sections."""
    title = ""
    heading = ""
    sections: list[tuple[str, str]] = []
    lines: list[str] = []
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        if len(match.group(1)) == 1 and not title:
            title = match.group(2)
        sections.append((heading, "\n".join(lines).strip()))
        lines = []
        if len(match.group(1)) > 1:
            heading = match.group(2)
    sections.append((heading, "\n".join(lines).strip()))
    return title or fallback_title, [(h, b) for h, b in sections if b]


def _windows(body: str, size: int, overlap: int) -> list[str]:
    """Cut ``body`` into balanced windows of at most about ``size`` words.

    Line breaks are kept, so Markdown lists stay lists in the prompt.
    """
    words: list[tuple[str, bool]] = []  # (word, starts a new line)
    for line in body.splitlines():
        for position, word in enumerate(line.split()):
            words.append((word, position == 0 and bool(words)))
    if len(words) <= size:
        return [body]
    count = math.ceil((len(words) - overlap) / (size - overlap))
    width = math.ceil((len(words) + (count - 1) * overlap) / count)
    pieces = []
    for start in range(0, len(words) - overlap, width - overlap):
        window = words[start : start + width]
        text = "".join(
            ("\n" if br and i else " " if i else "") + w for i, (w, br) in enumerate(window)
        )
        pieces.append(text)
    return pieces


def chunk_markdown(source: str, text: str, chunk_words: int) -> list[Chunk]:
    """Chunk one article by headings, then by about ``chunk_words`` words.

    Args:
        source: The article's file name, used in citation ids.
        text: The Markdown text.
        chunk_words: The largest window, in words.

    Returns:
        The chunks in reading order, indexed from 0.
    """
    stem = source.rsplit(".", 1)[0].replace("-", " ").capitalize()
    title, sections = _sections(text, stem)
    overlap = overlap_words(chunk_words)
    chunks: list[Chunk] = []
    for heading, body in sections:
        for piece in _windows(body, chunk_words, overlap):
            chunks.append(Chunk(source, len(chunks), title, heading, piece))
    return chunks


def chunk_file(path: Path, chunk_words: int) -> list[Chunk]:
    """Chunk the article at ``path`` (see :func:`chunk_markdown`)."""
    return chunk_markdown(path.name, path.read_text(encoding="utf-8"), chunk_words)
