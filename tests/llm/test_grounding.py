"""The groundedness checks a model's draft must pass to be shown."""

from __future__ import annotations

import pytest

from llm.grounding import check, citation_numbers, has_loop, numbers_in, strip_markers

PASSWORD = (
    "Password and account: Password rules\n"
    "Passwords need at least 10 characters. After 5 wrong passwords in a row, the account "
    "is locked for 15 minutes. The reset link works for 60 minutes."
)


def test_a_faithful_draft_passes() -> None:
    checks = check("Passwords need at least 10 characters [1].", [PASSWORD], "password length?")
    assert checks.passed, checks


@pytest.mark.parametrize(
    ("draft", "failure"),
    [
        # The example: the article says 10.
        ("The minimum password length is 8 characters.", "numbers"),
        ("The minimum password length is eight characters.", "numbers"),
        ("Passwords need 10 characters, and Visa cards are locked.", "names"),
        ("The link works for 60 minutes. " * 3, "loop"),
        ("Passwords need at least 10 characters. I'm not sure, though.", "hedge"),
        ("Sorry, passwords need at least 10 characters.", "hedge"),
        ("Our sofas come in three colours and ship from warehouses nationwide.", "overlap"),
        ("", "empty"),
    ],
)
def test_an_ungrounded_draft_fails(draft: str, failure: str) -> None:
    checks = check(draft, [PASSWORD], "how long must my password be?")
    assert failure in checks.failures, checks


def test_a_draft_cut_at_the_token_cap_fails() -> None:
    checks = check("Passwords need at least 10", [PASSWORD], finish_reason="length")
    assert checks.failures == ("complete",)


def test_numbers_the_customer_gave_may_be_repeated() -> None:
    checks = check("For order 40, passwords need 10 characters.", [PASSWORD], "my order 40")
    assert "numbers" not in checks.failures


def test_numbers_are_normalised() -> None:
    assert numbers_in("$5.95, 1,000 items, 30 days, ten links") == {"5.95", "1000", "30", "10"}
    assert numbers_in("3.0 and 03") == {"3"}


def test_list_numbering_is_not_a_citation() -> None:
    text = "We accept:\n[1] Visa\n[2] Mastercard, see [3]."
    assert citation_numbers(text, 3) == [3]
    assert strip_markers(text) == "We accept:\n[1] Visa\n[2] Mastercard, see."


def test_loops() -> None:
    assert has_loop("You can return it. You can return it.")
    assert not has_loop("You can return most items within 30 days of delivery.")
