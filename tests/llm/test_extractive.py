"""Extractive answers: units of a section, and quotes chosen from the real KB."""

from __future__ import annotations

import pytest

from llm.extractive import Extractor, Unit, render, sections_from_rows, split_units
from llm.retrieval import KnowledgeBase

TABLE = """Intro sentence one. Intro sentence two!

| Option | Time | Price |
|---|---|---|
| Standard | 3 to 5 days | **$5.95** |
| Express | 1 to 2 days | $14.95 |

- first item
- second **bold** item
"""


def test_a_section_splits_into_sentences_rows_and_items() -> None:
    assert split_units(TABLE) == [
        Unit("Intro sentence one."),
        Unit("Intro sentence two!"),
        Unit("Standard: Time 3 to 5 days; Price $5.95", listed=True),
        Unit("Express: Time 1 to 2 days; Price $14.95", listed=True),
        Unit("first item", listed=True),
        Unit("second bold item", listed=True),
    ]


def test_render_keeps_lists_as_lists() -> None:
    assert render([Unit("A."), Unit("B.")]) == "A. B."
    assert render([Unit("A."), Unit("b", listed=True)]) == "A.\n- b"


def test_a_section_cut_into_windows_is_joined_again() -> None:
    rows = [
        {"source": "a.md", "chunk_index": 0, "title": "A", "heading": "H", "text": "one two three"},
        {
            "source": "a.md",
            "chunk_index": 1,
            "title": "A",
            "heading": "H",
            "text": "two three four.",
        },
    ]
    sections = sections_from_rows(rows, overlap=2)
    assert [u.text for u in sections[("a.md", "H")].units] == ["one two three four."]


@pytest.mark.parametrize(
    ("question", "fact", "title"),
    [
        ("how many characters does a password need?", "10 characters", "Password and account"),
        ("how much is express shipping", "$14.95", "Shipping times and costs"),
        ("how many days do I have to return an item?", "30 days", "Returns policy"),
    ],
)
async def test_the_quote_holds_the_fact(
    default_kb: KnowledgeBase, extractor: Extractor, question: str, fact: str, title: str
) -> None:
    passages = await default_kb.search(question)
    extract = await extractor.extract(question, passages)
    assert extract is not None
    assert fact in extract.text
    assert extract.title == title
    assert 0.0 < extract.similarity <= 1.0
    assert extract.score >= extract.runner_up


async def test_no_passages_no_quote(extractor: Extractor) -> None:
    assert await extractor.extract("anything", []) is None
