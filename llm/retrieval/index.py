"""The knowledge-base index: embeddings in the database, search in memory.

:meth:`KnowledgeBase.sync` brings the database in line with ``flows/kb``:
an article is re-chunked and re-embedded only when its content hash or the
encoder id changed, and articles that are gone are deleted. The index is
small (tens to thousands of chunks), so :meth:`KnowledgeBase.load` reads it
into one normalised matrix and :meth:`KnowledgeBase.search` is a matrix-vector
product: with L2-normalised rows the dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm import tqdm

from llm.extractive import Section, sections_from_rows
from llm.retrieval.chunking import chunk_markdown, content_hash, overlap_words
from llm.types import Passage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.retrieval.chunking import Chunk

_LOGGER = logging.getLogger(__name__)
# Show a progress bar when a sync embeds at least this many chunks.
PROGRESS_MIN_CHUNKS = 64


class Embedder(Protocol):
    """A sentence encoder, such as :class:`bot.nlu.encoder.Encoder`."""

    id: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


class KBStore(Protocol):
    """The knowledge-base methods of :class:`bot.storage.Store`."""

    async def replace_kb_source(self, source: str, chunks: Sequence[dict[str, Any]]) -> None:
        """Replace every chunk of one article."""
        ...

    async def delete_kb_sources(self, keep: Sequence[str]) -> int:
        """Delete the articles not in ``keep``; return how many chunks went."""
        ...

    async def kb_hashes(self) -> dict[str, tuple[str, str]]:
        """Return each article's ``(content_hash, model)``."""
        ...

    async def kb_chunks(self) -> list[dict[str, Any]]:
        """Return every chunk."""
        ...


@dataclass
class SyncReport:
    """What :meth:`KnowledgeBase.sync` did, by article file name."""

    embedded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed_chunks: int = 0
    chunks_embedded: int = 0


def _read_articles(kb_dir: Path) -> dict[str, str]:
    """Return the text of each ``*.md`` article of ``kb_dir`` by file name, sorted."""
    return {p.name: p.read_text("utf-8") for p in sorted(kb_dir.glob("*.md"))}


class KnowledgeBase:
    """Chunks, embeds, stores and searches the knowledge-base articles.

    Args:
        store: Where chunks and embeddings are kept.
        encoder: The sentence encoder; its ``id`` is stored with each chunk.
        chunk_words: The largest chunk, in words.
        min_score: Passages below this cosine similarity are never returned.
        top_k: How many passages :meth:`search` returns by default.
        progress_min_chunks: Show a progress bar from this many chunks to embed.
    """

    def __init__(
        self,
        store: KBStore,
        encoder: Embedder,
        *,
        chunk_words: int = 120,
        min_score: float = 0.35,
        top_k: int = 3,
        progress_min_chunks: int = PROGRESS_MIN_CHUNKS,
    ) -> None:
        self._store = store
        self._encoder = encoder
        self.chunk_words = chunk_words
        self.min_score = min_score
        self.top_k = top_k
        self.progress_min_chunks = progress_min_chunks
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        """Return how many chunks are loaded."""
        return len(self._rows)

    @property
    def encoder(self) -> Embedder:
        """The sentence encoder the chunks were embedded with."""
        return self._encoder

    def sections(self) -> dict[tuple[str, str], Section]:
        """Return the loaded articles' sections, split into quotable units."""
        return sections_from_rows(self._rows, overlap_words(self.chunk_words))

    async def sync(self, kb_dir: Path) -> SyncReport:
        """Index the ``*.md`` articles of ``kb_dir``, embedding only what changed.

        Returns:
            Which articles were embedded, which were unchanged and how many
            chunks of deleted articles were removed.
        """
        texts = await asyncio.to_thread(_read_articles, Path(kb_dir))
        indexed = await self._store.kb_hashes()
        report = SyncReport()
        stale: list[tuple[str, str, list[Chunk]]] = []
        for name, text in texts.items():
            digest = content_hash(text, self.chunk_words)
            if indexed.get(name) == (digest, self._encoder.id):
                report.unchanged.append(name)
                continue
            stale.append((name, digest, chunk_markdown(name, text, self.chunk_words)))
        vectors = await asyncio.to_thread(self._embed_all, [chunks for _, _, chunks in stale])
        for (name, digest, chunks), matrix in zip(stale, vectors, strict=True):
            await self._store.replace_kb_source(name, self._rows_of(chunks, matrix, digest))
            report.embedded.append(name)
            report.chunks_embedded += len(chunks)
        report.removed_chunks = await self._store.delete_kb_sources(list(texts))
        _LOGGER.info(
            "The KB index is in sync: %d articles embedded (%d chunks), %d unchanged, "
            "%d stale chunks removed.",
            len(report.embedded),
            report.chunks_embedded,
            len(report.unchanged),
            report.removed_chunks,
        )
        return report

    def _embed_all(self, articles: Sequence[Sequence[Chunk]]) -> list[np.ndarray]:
        """Embed each article's chunks one by one, as queries are, with a progress bar.

        Runs in a worker thread: the encoder and tqdm both block.
        """
        total = sum(len(chunks) for chunks in articles)
        disable = total < self.progress_min_chunks
        matrices = []
        with tqdm(total=total, desc="Embedding KB", unit="chunk", disable=disable) as bar:
            for chunks in articles:
                rows = []
                for chunk in chunks:
                    rows.append(self._encoder.encode([chunk.embedding_text()])[0])
                    bar.update(1)
                matrices.append(np.asarray(rows, dtype=np.float32))
        return matrices

    def _rows_of(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, digest: str
    ) -> list[dict[str, Any]]:
        """Turn chunks and their vectors into Store rows."""
        return [
            {
                "source": c.source,
                "chunk_index": c.index,
                "title": c.title,
                "heading": c.heading,
                "text": c.text,
                "embedding": np.ascontiguousarray(v, dtype=np.float32).tobytes(),
                "model": self._encoder.id,
                "content_hash": digest,
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]

    async def load(self) -> int:
        """Read every chunk made with the current encoder into memory.

        Returns:
            How many chunks are searchable.
        """
        every = await self._store.kb_chunks()
        rows = [r for r in every if r["model"] == self._encoder.id]
        if len(rows) < len(every):
            _LOGGER.warning(
                "%d KB chunks were embedded by another encoder and are skipped; run a sync.",
                len(every) - len(rows),
            )
        vectors = [np.frombuffer(r["embedding"], dtype=np.float32) for r in rows]
        self._matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        self._rows = rows
        _LOGGER.info("Loaded %d KB chunks for search.", len(rows))
        return len(rows)

    async def search(self, query: str, k: int | None = None) -> list[Passage]:
        """Return up to ``k`` passages most similar to ``query``, best first.

        Only passages with a cosine similarity of at least ``min_score`` are
        returned, so an empty list means the KB has nothing relevant. The
        query is embedded off the event loop.
        """
        if not self._rows or not query.strip():
            return []
        vector = await asyncio.to_thread(self._encoder.encode, [query])
        scores = self._matrix @ vector[0]
        best = np.argsort(-scores)[: k or self.top_k]
        return [
            self._passage(int(i), float(scores[i])) for i in best if scores[i] >= self.min_score
        ]

    def _passage(self, row: int, score: float) -> Passage:
        data = self._rows[row]
        return Passage(
            id=f"{data['source']}#{data['chunk_index']}",
            title=data["title"],
            text=data["text"],
            score=score,
            source=data["source"],
            extra={"heading": data["heading"] or ""},
        )
