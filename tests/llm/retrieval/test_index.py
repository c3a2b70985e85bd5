from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

import numpy as np
import pytest

from llm.retrieval import KnowledgeBase

from .conftest import KB_DIR, CountingEncoder

if TYPE_CHECKING:
    from pathlib import Path

    from bot.nlu.encoder import Encoder
    from bot.storage import Store

ARTICLES = ("gift-cards.md", "warranty.md", "contact-and-hours.md")


def _kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    for name in ARTICLES:
        shutil.copy(KB_DIR / name, folder / name)
    return folder


@pytest.mark.usefixtures("no_blocking")
async def test_sync_embeds_only_changed_articles_and_removes_deleted_ones(
    store: Store, counting: CountingEncoder, tmp_path: Path
) -> None:
    folder = await asyncio.to_thread(_kb_dir, tmp_path)
    kb = KnowledgeBase(store, counting, chunk_words=120)

    first = await kb.sync(folder)
    assert sorted(first.embedded) == sorted(ARTICLES)
    assert first.chunks_embedded == len(counting.texts) == len(await store.kb_chunks())

    counting.texts.clear()
    again = await kb.sync(folder)
    assert again.embedded == []
    assert sorted(again.unchanged) == sorted(ARTICLES)
    assert counting.texts == []

    warranty = folder / "warranty.md"
    extra = "\n## Extended cover\n\nThree more years for $20.\n"
    await asyncio.to_thread(lambda: warranty.write_text(warranty.read_text() + extra))
    await asyncio.to_thread((folder / "gift-cards.md").unlink)
    changed = await kb.sync(folder)
    assert changed.embedded == ["warranty.md"]
    assert changed.unchanged == ["contact-and-hours.md"]
    assert changed.removed_chunks == 3  # gift-cards.md had three sections
    assert all(t.startswith("Warranty") for t in counting.texts)
    assert set((await store.kb_hashes()).keys()) == {"warranty.md", "contact-and-hours.md"}
    assert await kb.load() == len(await store.kb_chunks())
    passages = await kb.search("Can I get three more years of cover?", k=1)
    assert passages[0].title == "Warranty"
    assert passages[0].extra["heading"] == "Extended cover"


async def test_a_new_encoder_or_window_re_embeds_everything(
    store: Store, encoder: Encoder, tmp_path: Path
) -> None:
    folder = _kb_dir(tmp_path)
    await KnowledgeBase(store, CountingEncoder(encoder)).sync(folder)
    other = CountingEncoder(encoder, id_="another-encoder")
    report = await KnowledgeBase(store, other).sync(folder)
    assert sorted(report.embedded) == sorted(ARTICLES)
    assert {model for _, model in (await store.kb_hashes()).values()} == {"another-encoder"}
    smaller = await KnowledgeBase(store, other, chunk_words=30).sync(folder)
    assert sorted(smaller.embedded) == sorted(ARTICLES)
    assert smaller.chunks_embedded > report.chunks_embedded


async def test_load_skips_chunks_of_another_encoder(
    store: Store, encoder: Encoder, tmp_path: Path
) -> None:
    folder = _kb_dir(tmp_path)
    await KnowledgeBase(store, CountingEncoder(encoder, id_="old")).sync(folder)
    kb = KnowledgeBase(store, CountingEncoder(encoder))
    assert await kb.load() == 0
    assert await kb.search("gift card") == []


async def test_stored_embeddings_are_the_encoder_vectors(
    store: Store, counting: CountingEncoder, tmp_path: Path
) -> None:
    folder = _kb_dir(tmp_path)
    await KnowledgeBase(store, counting).sync(folder)
    row = (await store.kb_chunks())[0]
    vector = np.frombuffer(row["embedding"], dtype=np.float32)
    expected = counting.encode([f"{row['title']}: {row['heading']}.\n{row['text']}"])[0]
    np.testing.assert_allclose(vector, expected, atol=1e-6)
    assert row["model"] == counting.id


async def test_many_chunks_show_a_progress_bar(
    store: Store,
    counting: CountingEncoder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _kb_dir(tmp_path)
    await KnowledgeBase(store, counting).sync(folder)
    assert "Embedding KB" not in capsys.readouterr().err  # a few chunks: no bar
    await KnowledgeBase(store, counting, chunk_words=60, progress_min_chunks=5).sync(folder)
    assert "Embedding KB" in capsys.readouterr().err
