"""Flow conditions in the Rasa CALM syntax, parsed without ``eval``.

Conditions appear in a flow's ``if:``, in ``next: - if:`` branches and in a
collect step's ``rejections: - if:``. The grammar, loosest binding first::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := operand [ ("=" | "==" | "!=" | ">" | ">=" | "<" | "<=") operand
                          | "contains" operand | "matches" STRING
                          | "is" ["not"] ("empty" | "null" | "none" | "undefined" | operand) ]
    operand    := NUMBER | STRING | "true" | "false" | "null" | "none" | NAME

Keywords are case-insensitive. A dotted ``NAME`` such as ``slots.order_id`` is a
reference resolved in the namespace given to :meth:`Condition.evaluate`; a
missing one is ``None``. A bare word without a dot is a string literal, so
``slots.tier = gold`` works as Rasa users write it.

Comparisons never raise: ordering ``None`` or unrelated types is false, numeric
strings compare as numbers, and ``true``/``"true"`` equal a boolean ``True``.
A string ``"false"`` is falsy when tested on its own, for the same reason.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

from bot.errors import HelplineError

__all__ = ["Condition", "ConditionError", "condition_from_value", "parse_condition"]


class ConditionError(HelplineError):
    """A condition cannot be parsed; the message names the column and the reason.

    Attributes:
        text: The condition as written.
        column: The 1-based column of the problem.
        reason: What is wrong, without the location.
    """

    def __init__(self, text: str, column: int, reason: str) -> None:
        self.text = text
        self.column = column
        self.reason = reason
        super().__init__(f"{reason} at column {column} in {text!r}")


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<num>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<op>==|!=|>=|<=|=|>|<)
    | (?P<paren>[()])
    | (?P<quote>["'])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "contains", "matches", "is"})
_NUMERIC_RE = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


@dataclass(frozen=True)
class _Token:
    kind: str  # num, str, name, kw, op, (, ), end
    text: str
    pos: int
    value: Any = None


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Read the string quoted at ``start``; a backslash escapes only the quote."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            # Other backslashes stay, for regex patterns.
            chars.append(text[i + 1] if text[i + 1] == quote else text[i : i + 2])
            i += 2
            continue
        if char == quote:
            return "".join(chars), i + 1
        chars.append(char)
        i += 1
    raise ConditionError(text, start + 1, "unterminated string")


def _tokenize(text: str) -> list[_Token]:
    """Split a condition into tokens, ending with an ``end`` token."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ConditionError(text, pos + 1, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        word = match.group()
        if kind == "quote":
            value, end = _read_string(text, pos)
            tokens.append(_Token("str", text[pos:end], pos, value))
            pos = end
            continue
        if kind == "num":
            number: float = float(word) if any(c in word for c in ".eE") else int(word)
            tokens.append(_Token("num", word, pos, number))
        elif kind == "name":
            lowered = word.lower()
            tokens.append(_Token("kw" if lowered in _KEYWORDS else "name", word, pos, lowered))
        elif kind != "space":
            tokens.append(_Token(word if kind == "paren" else kind, word, pos, word))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _as_number(value: Any) -> float | None:
    """Return ``value`` as a number when it is one or a numeric string, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC_RE.fullmatch(value):
        return float(value)
    return None


def _as_bool(value: Any) -> bool | None:
    """Return ``value`` as a boolean when it is one or spells one, else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _truthy(value: Any) -> bool:
    """Test a value on its own; ``None``, empty values and ``"false"`` are false."""
    if isinstance(value, str) and value.strip().lower() == "false":
        return False
    return bool(value)


def _equals(left: Any, right: Any) -> bool:
    """Compare for ``=``: strings case-sensitively, numbers and booleans leniently."""
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        left_bool, right_bool = _as_bool(left), _as_bool(right)
        return left_bool is not None and left_bool == right_bool
    left_num, right_num = _as_number(left), _as_number(right)
    if (
        left_num is not None
        and right_num is not None
        and not (isinstance(left, str) and isinstance(right, str))
    ):
        return left_num == right_num
    try:
        return bool(left == right)
    except Exception:  # a foreign object's __eq__ must not break a turn
        return False


def _ordered(left: Any, right: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Apply an ordering; ``None``, booleans and unrelated types give ``False``."""
    left_num, right_num = _as_number(left), _as_number(right)
    if left_num is not None and right_num is not None:
        if math.isnan(left_num) or math.isnan(right_num):
            return False
        return compare(left_num, right_num)
    if isinstance(left, str) and isinstance(right, str):
        return compare(left, right)
    return False


def _contains(container: Any, item: Any) -> bool:
    """Substring for strings, membership for lists, sets and mapping keys."""
    if container is None or item is None:
        return False
    if isinstance(container, str):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            return False
        return str(item) in container
    if isinstance(container, Mapping):
        return any(_equals(key, item) for key in container)
    if isinstance(container, Sequence | set | frozenset):
        return any(_equals(element, item) for element in container)
    return False


def _is_empty(value: Any) -> bool:
    """``None``, ``""``, ``[]`` and ``{}`` are empty."""
    return value is None or (isinstance(value, Sized) and len(value) == 0)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _equals,
    "==": _equals,
    "!=": lambda a, b: not _equals(a, b),
    ">": lambda a, b: _ordered(a, b, operator.gt),
    ">=": lambda a, b: _ordered(a, b, operator.ge),
    "<": lambda a, b: _ordered(a, b, operator.lt),
    "<=": lambda a, b: _ordered(a, b, operator.le),
    "contains": _contains,
}


_Node = Callable[[Mapping[str, Any]], Any]


def _resolve(namespace: Mapping[str, Any], path: str) -> Any:
    """Walk a dotted path through mappings (and lists by index); missing is ``None``."""
    value: Any = namespace
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


class _Parser:
    """Recursive-descent parser producing closures over the namespace."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.references: set[str] = set()

    def parse(self) -> _Node:
        if self._peek().kind == "end":
            raise self._error("empty condition")
        node = self._or()
        if self._peek().kind != "end":
            raise self._error(f"unexpected {self._peek().text!r}")
        return node

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _next(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _keyword(self, *words: str) -> bool:
        token = self._peek()
        if token.kind == "kw" and token.value in words:
            self.index += 1
            return True
        return False

    def _error(self, reason: str, token: _Token | None = None) -> ConditionError:
        return ConditionError(self.text, (token or self._peek()).pos + 1, reason)

    def _or(self) -> _Node:
        nodes = [self._and()]
        while self._keyword("or"):
            nodes.append(self._and())
        if len(nodes) == 1:
            return nodes[0]
        return lambda ns: any(_truthy(node(ns)) for node in nodes)

    def _and(self) -> _Node:
        nodes = [self._not()]
        while self._keyword("and"):
            nodes.append(self._not())
        if len(nodes) == 1:
            return nodes[0]
        return lambda ns: all(_truthy(node(ns)) for node in nodes)

    def _not(self) -> _Node:
        if self._keyword("not"):
            inner = self._not()
            return lambda ns: not _truthy(inner(ns))
        if self._peek().kind == "(":
            self._next()
            inner = self._or()
            if self._peek().kind != ")":
                raise self._error("expected ')'")
            self._next()
            return inner
        return self._comparison()

    def _comparison(self) -> _Node:
        left = self._operand()
        token = self._peek()
        if token.kind == "op" or (token.kind == "kw" and token.value == "contains"):
            self._next()
            right = self._operand()
            compare = _COMPARISONS[token.value]
            return lambda ns: compare(left(ns), right(ns))
        if self._keyword("matches"):
            pattern = self._pattern()
            return lambda ns: _matches(left(ns), pattern)
        if self._keyword("is"):
            return self._is(left)
        return left

    def _is(self, left: _Node) -> _Node:
        negate = self._keyword("not")
        token = self._peek()
        if token.kind == "name" and token.value in ("empty", "null", "none", "undefined"):
            self._next()
            test = _is_empty if token.value == "empty" else (lambda value: value is None)
            return lambda ns: test(left(ns)) != negate
        right = self._operand()
        return lambda ns: _equals(left(ns), right(ns)) != negate

    def _pattern(self) -> re.Pattern[str]:
        token = self._peek()
        if token.kind != "str":
            raise self._error("'matches' needs a quoted pattern")
        self._next()
        try:
            return re.compile(token.value)
        except re.error as exc:
            raise self._error(f"invalid regular expression ({exc})", token) from exc

    def _operand(self) -> _Node:
        token = self._peek()
        if token.kind in ("num", "str"):
            self._next()
            value = token.value
            return lambda ns: value
        if token.kind != "name":
            raise self._error("expected an operand")
        self._next()
        literal = {"true": True, "false": False, "null": None, "none": None}
        if "." not in token.text:
            word = token.text
            constant = literal[word.lower()] if word.lower() in literal else word
            return lambda ns: constant
        path = token.text
        self.references.add(path)
        return lambda ns: _resolve(ns, path)


def _matches(value: Any, pattern: re.Pattern[str]) -> bool:
    """``re.search`` a pattern in a string or number; anything else does not match."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    return pattern.search(str(value)) is not None


# --- public API -----------------------------------------------------------------------


class Condition:
    """A parsed condition; immutable, so parsed conditions are shared from a cache.

    Attributes:
        text: The condition as written.
    """

    __slots__ = ("_node", "_references", "text")

    def __init__(self, text: str, node: _Node, references: frozenset[str]) -> None:
        self.text = text
        self._node = node
        self._references = references

    @property
    def references(self) -> frozenset[str]:
        """Every dotted reference, e.g. ``{"slots.order_id", "context.error_type"}``."""
        return self._references

    def evaluate(self, namespace: Mapping[str, Any]) -> bool:
        """Return whether the condition holds, e.g. for ``{"slots": {...}, "context": {...}}``.

        Evaluation never raises: missing references are ``None`` and comparisons
        between unrelated types are false.
        """
        return _truthy(self._node(namespace))

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


@functools.lru_cache(maxsize=1024)
def parse_condition(text: str) -> Condition:
    """Parse a condition; results are cached, since flows repeat the same ones.

    Raises:
        ConditionError: The text is not a valid condition.
    """
    parser = _Parser(text)
    node = parser.parse()
    return Condition(text, node, frozenset(parser.references))


def condition_from_value(value: object) -> Condition:
    """Build a condition from a YAML value: a string, or a bare boolean or number.

    YAML turns ``if: true`` into a boolean and ``if: 1`` into a number, so those
    become constant conditions.

    Raises:
        ConditionError: The value is empty, of another type or not a valid condition.
    """
    if isinstance(value, str):
        return parse_condition(value)
    if isinstance(value, bool | int | float):
        constant = bool(value)
        return Condition(str(value).lower(), lambda ns: constant, frozenset())
    if value is None:
        raise ConditionError("", 1, "empty condition")
    raise ConditionError(str(value), 1, f"a condition must be text, not {type(value).__name__}")
