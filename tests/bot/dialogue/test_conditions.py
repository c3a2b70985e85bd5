from __future__ import annotations

from typing import Any

import pytest

from bot.dialogue.conditions import (
    Condition,
    ConditionError,
    condition_from_value,
    parse_condition,
)
from bot.errors import HelplineError

SLOTS: dict[str, Any] = {
    "order_id": "A-1234",
    "age": 42,
    "price": 5.0,
    "count_text": "10",
    "tier": "gold",
    "confirmed": True,
    "declined": False,
    "flag_text": "true",
    "off_text": "false",
    "empty_text": "",
    "empty_list": [],
    "empty_dict": {},
    "tags": ["vip", "refund", 3],
    "meta": {"region": "eu", "nested": {"deep": 7}},
    "email": "jane@example.com",
    "nothing": None,
}
NS: dict[str, Any] = {"slots": SLOTS, "context": {"error_type": "rasa_internal_error"}}

CASES = [
    # equality
    ("slots.tier = 'gold'", True),
    ('slots.tier == "gold"', True),
    ("slots.tier = gold", True),
    ("slots.tier = 'Gold'", False),
    ("slots.tier != 'silver'", True),
    ("slots.tier != gold", False),
    ("slots.age = 42", True),
    ("slots.age = 42.0", True),
    ("slots.age = '42'", True),
    ("slots.price = 5", True),
    ("slots.count_text = 10", True),
    ("slots.count_text = '10.0'", False),
    ("slots.confirmed = true", True),
    ("slots.confirmed = 'true'", True),
    ("slots.confirmed = TRUE", True),
    ("slots.confirmed = false", False),
    ("slots.confirmed = 1", False),
    ("slots.declined = false", True),
    ("slots.flag_text = true", True),
    ("slots.off_text = true", False),
    ("slots.nothing = null", True),
    ("slots.nothing = None", True),
    ("slots.missing = null", True),
    ("slots.missing = 'x'", False),
    ("slots.tier = null", False),
    ("context.error_type = 'rasa_internal_error'", True),
    # ordering
    ("slots.age > 18", True),
    ("slots.age >= 42", True),
    ("slots.age < 42", False),
    ("slots.age <= 42", True),
    ("slots.age > -1", True),
    ("slots.age>41.5", True),
    ("slots.price < 5.5", True),
    ("slots.count_text > 9", True),
    ("slots.count_text > '9'", True),
    ("slots.tier > 'a'", True),
    ("slots.missing > 1", False),
    ("slots.missing < 1", False),
    ("slots.tier > 1", False),
    ("slots.tier < 1", False),
    ("slots.confirmed > 0", False),
    ("slots.tags > 1", False),
    ("-2.5e1 < -20", True),
    # contains
    ("slots.order_id contains 'A-'", True),
    ("slots.order_id contains 'B-'", False),
    ("slots.order_id contains 12", True),
    ("slots.tags contains 'vip'", True),
    ("slots.tags contains refund", True),
    ("slots.tags contains 'vi'", False),
    ("slots.tags contains 3", True),
    ("slots.tags contains '3'", True),
    ("slots.meta contains 'region'", True),
    ("slots.missing contains 'x'", False),
    ("slots.age contains 4", False),
    ("slots.order_id CONTAINS 'A'", True),
    # matches
    ("slots.order_id matches '^[A-Z]-\\d{4}$'", True),
    ("slots.order_id matches '\\d{5}'", False),
    ('slots.email matches "@example\\.com"', True),
    ("slots.age matches '^4'", True),
    ("slots.missing matches '.*'", False),
    ("slots.tags matches '.*'", False),
    # is empty / is null
    ("slots.empty_text is empty", True),
    ("slots.empty_list is empty", True),
    ("slots.empty_dict is empty", True),
    ("slots.missing is empty", True),
    ("slots.tier is empty", False),
    ("slots.tier is not empty", True),
    ("slots.empty_list is not empty", False),
    ("slots.age is not empty", True),
    ("slots.nothing is null", True),
    ("slots.empty_text is null", False),
    ("slots.tier is not null", True),
    ("slots.missing IS NOT NULL", False),
    ("slots.missing is none", True),
    ("slots.missing is undefined", True),
    ("slots.tier is 'gold'", True),
    ("slots.tier is not 'gold'", False),
    # truthiness of a bare reference or literal
    ("slots.confirmed", True),
    ("slots.declined", False),
    ("slots.missing", False),
    ("slots.empty_text", False),
    ("slots.off_text", False),
    ("slots.flag_text", True),
    ("slots.tags", True),
    ("true", True),
    ("False", False),
    ("0", False),
    ("1", True),
    ("null", False),
    # nested references
    ("slots.meta.region = 'eu'", True),
    ("slots.meta.nested.deep = 7", True),
    ("slots.meta.nested.deeper = 7", False),
    ("slots.tier.sub = 'x'", False),
    ("slots.tags.0 = 'vip'", True),
    ("slots.tags.9 is null", True),
    ("unknown.path is null", True),
    # boolean operators and precedence
    ("not slots.confirmed", False),
    ("not slots.declined", True),
    ("NOT not slots.confirmed", True),
    ("slots.confirmed and slots.age > 18", True),
    ("slots.confirmed AND slots.declined", False),
    ("slots.declined or slots.tier = gold", True),
    ("slots.declined Or slots.missing", False),
    ("true or false and false", True),
    ("(true or false) and false", False),
    ("not true or true", True),
    ("not (true or true)", False),
    ("not false and false", False),
    ("false and false or true", True),
    ("false and (false or true)", False),
    ("((slots.age > 18))", True),
    ("(slots.tier = gold and (slots.age < 18 or slots.confirmed)) and not slots.declined", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_evaluate(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate(NS) is expected


def test_evaluate_without_namespace_parts() -> None:
    assert parse_condition("slots.x is null").evaluate({}) is True
    assert parse_condition("slots.x = 1").evaluate({"slots": None}) is False


@pytest.mark.parametrize(
    ("text", "references"),
    [
        ("slots.order_id = 'x' and context.error_type", {"slots.order_id", "context.error_type"}),
        ("slots.a > slots.b or not slots.a", {"slots.a", "slots.b"}),
        ("tier = gold", set()),
        ("true", set()),
        ("slots.meta.region is not empty", {"slots.meta.region"}),
        ("'slots.quoted' = x", set()),
    ],
)
def test_references(text: str, references: set[str]) -> None:
    assert parse_condition(text).references == frozenset(references)


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("slots.x > ", 11, "expected an operand"),
        ("", 1, "empty condition"),
        ("   ", 4, "empty condition"),
        ("slots.x = 'abc", 11, "unterminated string"),
        ("(slots.x = 1", 13, "expected ')'"),
        ("slots.x = 1)", 12, "unexpected ')'"),
        ("slots.x = 1 slots.y", 13, "unexpected 'slots.y'"),
        ("slots.x = 1 = 2", 13, "unexpected '='"),
        ("slots.x ! 1", 9, "unexpected character '!'"),
        ("slots.x and", 12, "expected an operand"),
        ("and slots.x", 1, "expected an operand"),
        ("slots.x = or", 11, "expected an operand"),
        ("slots.x matches x", 17, "'matches' needs a quoted pattern"),
        ("slots.x matches '('", 17, "invalid regular expression"),
        ("slots.x is", 11, "expected an operand"),
        ("not", 4, "expected an operand"),
        ("()", 2, "expected an operand"),
        ("slots.x not contains 'a'", 9, "unexpected 'not'"),
    ],
)
def test_syntax_errors(text: str, column: int, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert info.value.column == column
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith(f"{reason}")
    assert f"at column {column} in {text!r}" in str(info.value)
    assert isinstance(info.value, HelplineError)


def test_error_message_format() -> None:
    with pytest.raises(ConditionError, match=r"^expected an operand at column 11 in 'slots.x > '$"):
        parse_condition("slots.x > ")


def test_string_literals_and_escapes() -> None:
    ns = {"slots": {"quote": "it's", "dq": 'say "hi"'}}
    assert parse_condition("slots.quote = 'it\\'s'").evaluate(ns)
    assert parse_condition('slots.quote = "it\'s"').evaluate(ns)
    assert parse_condition("slots.dq contains '\"hi\"'").evaluate(ns)
    assert parse_condition("slots.quote = 'and or not'").evaluate(
        {"slots": {"quote": "and or not"}}
    )


def test_parse_is_cached() -> None:
    assert parse_condition("slots.cached = 1") is parse_condition("slots.cached = 1")


def test_condition_is_reusable_across_namespaces() -> None:
    condition = parse_condition("slots.n >= 3")
    assert condition.evaluate({"slots": {"n": 3}})
    assert not condition.evaluate({"slots": {"n": 2}})
    assert condition.text == "slots.n >= 3"
    assert repr(condition) == "Condition('slots.n >= 3')"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), (0.5, True), ("slots.a = 1", True)],
)
def test_condition_from_value(value: object, expected: bool) -> None:
    condition = condition_from_value(value)
    assert isinstance(condition, Condition)
    assert condition.evaluate({"slots": {"a": 1}}) is expected
    assert condition.references == (
        frozenset({"slots.a"}) if isinstance(value, str) else frozenset()
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "empty condition"), ([1], "a condition must be text, not list"), ({}, "not dict")],
)
def test_condition_from_value_rejects(value: object, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason):
        condition_from_value(value)


def test_condition_from_value_reports_syntax_errors() -> None:
    with pytest.raises(ConditionError, match=r"unexpected character '\.' at column 6"):
        condition_from_value("slots.")


def test_backslashes_are_kept_for_patterns() -> None:
    ns = {"slots": {"path": "a\\b", "code": "x.1"}}
    assert parse_condition("slots.path = 'a\\b'").evaluate(ns)
    assert parse_condition("slots.path matches '^a\\\\b$'").evaluate(ns)
    assert parse_condition("slots.code matches '^x\\.\\d$'").evaluate(ns)
    assert not parse_condition("slots.code matches '^x\\d'").evaluate(ns)
