from __future__ import annotations

import itertools

from llm.retrieval.chunking import chunk_file, chunk_markdown, content_hash, overlap_words

from .conftest import KB_DIR

ARTICLE = """# Returns policy

Intro text before any section.

## The window

You can return items within 30 days.

## How to return

1. Ask the assistant.
2. Print the label.
"""


def test_sections_keep_title_heading_and_stable_ids() -> None:
    chunks = chunk_markdown("returns-policy.md", ARTICLE, 120)
    assert [(c.id, c.heading) for c in chunks] == [
        ("returns-policy.md#0", ""),
        ("returns-policy.md#1", "The window"),
        ("returns-policy.md#2", "How to return"),
    ]
    assert {c.title for c in chunks} == {"Returns policy"}
    assert chunks[2].text == "1. Ask the assistant.\n2. Print the label."
    assert chunks[1].embedding_text() == (
        "Returns policy: The window.\nYou can return items within 30 days."
    )
    assert chunk_markdown("returns-policy.md", ARTICLE, 120) == chunks


def test_untitled_article_takes_its_title_from_the_file_name() -> None:
    chunks = chunk_markdown("gift-cards.md", "## Buying\n\nBuy them online.\n", 50)
    assert chunks[0].title == "Gift cards"
    assert chunks[0].heading == "Buying"


def test_long_sections_become_balanced_overlapping_windows() -> None:
    words = [f"w{i}" for i in range(100)]
    text = "# T\n\n## Long\n\n" + " ".join(words[:50]) + "\n" + " ".join(words[50:]) + "\n"
    chunks = chunk_markdown("t.md", text, 30)
    pieces = [c.text.split() for c in chunks]
    overlap = overlap_words(30)
    assert all(len(p) <= 30 for p in pieces)
    assert max(map(len, pieces)) - min(map(len, pieces)) <= overlap
    for before, after in itertools.pairwise(pieces):
        assert before[-overlap:] == after[:overlap]
    covered = [w for p in pieces for w in p]
    assert set(covered) == set(words)
    assert covered[0] == "w0"
    assert covered[-1] == "w99"
    assert all(c.heading == "Long" for c in chunks)
    assert "\n" in "".join(c.text for c in chunks)  # the line break is kept


def test_real_articles_chunk_within_the_window() -> None:
    for path in sorted(KB_DIR.glob("*.md")):
        chunks = chunk_file(path, 60)
        assert chunks, path
        assert all(len(c.text.split()) <= 60 for c in chunks), path
        assert [c.index for c in chunks] == list(range(len(chunks)))


def test_content_hash_depends_on_text_and_window() -> None:
    assert content_hash("a", 120) == content_hash("a", 120)
    assert content_hash("a", 120) != content_hash("b", 120)
    assert content_hash("a", 120) != content_hash("a", 60)
