from __future__ import annotations

from bot.dialogue.nlu import Entity
from bot.nlu.extractors import EntityExtractor


def _extractor() -> EntityExtractor:
    return EntityExtractor(
        regexes={"order_id": [r"\b\d{5}\b"], "email": [r"[\w.]+@[\w.]+\.\w+"]},
        lookups={"product": ["coffee maker", "Coffee", "kettle"], "city": ["new york"]},
        synonyms={"coffee maker": "coffee_maker", "New York": "NYC"},
    )


def test_regex_entities_take_the_regex_name() -> None:
    found = _extractor().extract("order 12345 and 123456, mail me at a.b@example.com")
    assert found == (
        Entity("order_id", "12345", 6, 11, "regex"),
        Entity("email", "a.b@example.com", 35, 50, "regex"),
    )


def test_lookup_is_case_insensitive_on_word_boundaries_and_prefers_longer() -> None:
    found = _extractor().extract("My COFFEE MAKER broke, not the kettles")
    assert found == (Entity("product", "coffee_maker", 3, 15, "lookup"),)


def test_synonyms_map_values_whatever_the_case() -> None:
    found = _extractor().extract("ship it to new york please")
    assert found == (Entity("city", "NYC", 11, 19, "lookup"),)


def test_no_entities_in_plain_text() -> None:
    assert _extractor().extract("hello there") == ()
