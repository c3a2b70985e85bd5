"""Quote and signature stripping on real-client-shaped samples in several languages."""

from __future__ import annotations

import pytest

from connectors.email.quotes import strip_reply
from tests.connectors.email.measure_quotes import expected, measure, stripped

#: Measured misses, kept visible: Gmail's Polish attribution ("pon., 3 mar 2025
#: o 10:02 X <x@y> napisał(a):") matches no pattern of the library.
KNOWN_MISSES = {"gmail_pl.eml"}


@pytest.mark.parametrize("name", sorted(expected()))
def test_sample_is_stripped_to_its_new_text(name: str) -> None:
    if name in KNOWN_MISSES:
        pytest.xfail("a known miss of the stripper")
    ours, _ = stripped(name)
    assert ours == expected()[name]["expected"]


def test_measurement_covers_clients_and_languages() -> None:
    result = measure()
    assert result["samples"] >= 30
    assert set(result["clients"]) >= {"gmail", "outlook", "apple"}
    assert set(result["languages"]) >= {"en", "de", "fr", "es", "sv", "nl"}
    assert [m["sample"] for m in result["misses"]] == sorted(KNOWN_MISSES)


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("", ""),
        ("> only a quote\n> nothing new", ""),
        ("On Mon, A <a@b> wrote:\n> quoted", ""),
        ("Sure.\nTake the blue one.", "Sure.\nTake the blue one."),
        ("Hi\n/check_order\n", "Hi\n/check_order"),
        ("I need:\n- a refund\n- a new lamp", "I need:\n- a refund\n- a new lamp"),
    ],
)
def test_strip_reply_edge_cases(text: str, new: str) -> None:
    assert strip_reply(text) == new
