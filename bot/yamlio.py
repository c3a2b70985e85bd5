"""YAML loading that remembers line numbers, so errors can say ``file:line``.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; both
carry the 1-based ``line`` where they start, and a mapping knows the line of
each key through :meth:`LineDict.line_of`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import SourceError


class LineDict(dict[str, Any]):
    """A dict loaded from YAML that knows where it and each key came from."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Return the line of ``key``, or of the mapping when the key is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A list loaded from YAML that knows the line where it starts."""

    line: int = 0


class _Loader(yaml.SafeLoader):
    """A safe loader whose containers carry line numbers."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise SourceError(
                str(node.start_mark.name),
                key_node.start_mark.line + 1,
                "mapping key must be scalar",
            )
        skey = str(key)
        if skey in result:
            raise SourceError(
                str(node.start_mark.name), key_node.start_mark.line + 1, f"duplicate key {skey!r}"
            )
        result[skey] = loader.construct_object(value_node, deep=True)
        result.key_lines[skey] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def loads(text: str, name: str = "<string>") -> Any:
    """Parse YAML text; ``name`` is used in error messages.

    Raises:
        SourceError: The text is not valid YAML.
    """
    try:
        loader = _Loader(text)
        loader.name = name
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SourceError(name, line, f"invalid YAML: {reason}") from exc
    except yaml.YAMLError as exc:
        raise SourceError(name, None, f"invalid YAML: {exc}") from exc


def load(path: str | Path) -> Any:
    """Read and parse one YAML file.

    Raises:
        SourceError: The file cannot be read or is not valid YAML.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(str(path), None, f"cannot read file: {exc.strerror}") from exc
    return loads(text, str(path))


def line_of(node: Any, key: str | None = None) -> int | None:
    """Return the line of ``node`` (or of its ``key``) when it was loaded from YAML."""
    if isinstance(node, LineDict):
        return node.line_of(key) if key is not None else node.line
    if isinstance(node, LineList):
        return node.line
    return None
