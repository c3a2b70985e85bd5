"""YAML loading that remembers line numbers, so errors can say ``file:line``.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; both
carry the 1-based ``line`` where they start, and a mapping knows the line of
each key through :meth:`LineDict.line_of`.

Every file is refused quickly, with its name and line, when it is not UTF-8
text, nests too deeply, or holds aliases that expand it by more than
:data:`ALIAS_BUDGET` nodes (a "billion laughs" bomb, which would otherwise
grow in memory as the configuration is walked) or that refer to themselves.
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


#: Nodes that aliases (``*name``) may add to a document beyond those it spells out.
ALIAS_BUDGET = 10_000


class _Loader(yaml.SafeLoader):
    """A safe loader whose containers carry line numbers and whose aliases are bounded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases: list[tuple[yaml.Mark, str, yaml.Node | None]] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose a node, noting where each alias is used and what it stands for."""
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        event = self.peek_event()
        node = super().compose_node(parent, index)
        self.aliases.append((event.start_mark, str(event.anchor), node))
        return node  # type: ignore[no-any-return]

    def get_single_node(self) -> yaml.Node | None:
        """Compose the document, then refuse aliases that expand it too far."""
        node = super().get_single_node()
        if node is not None and self.aliases:
            _check_aliases(self, node)
        return node  # type: ignore[no-any-return]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded_sizes(root: yaml.Node, name: str) -> dict[int, int]:
    """Return each node's size with aliases expanded (capped), by ``id``; iterative.

    Raises:
        SourceError: A node contains itself through an alias.
    """
    cap = ALIAS_BUDGET * 100
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(cap, 1 + sum(sizes[id(c)] for c in _children(node)))
        elif id(node) in open_nodes:
            raise SourceError(name, node.start_mark.line + 1, "invalid YAML: a recursive alias")
        elif id(node) not in sizes:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    return sizes


def _check_aliases(loader: _Loader, root: yaml.Node) -> None:
    """Refuse a document whose aliases add more than :data:`ALIAS_BUDGET` nodes."""
    name = str(loader.name)
    sizes = _expanded_sizes(root, name)
    if sizes[id(root)] <= len(sizes) + ALIAS_BUDGET:
        return
    # Name the alias that expands to the most.
    mark, anchor, _ = max(loader.aliases, key=lambda alias: sizes.get(id(alias[2]), 0))
    raise SourceError(
        name,
        mark.line + 1,
        f"invalid YAML: aliases expand the document by more than {ALIAS_BUDGET} nodes "
        f"(the alias *{anchor} here is one of them)",
    )


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
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise SourceError(
            name, line, f"invalid YAML: character U+{exc.character:04X} is not allowed"
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceError(name, None, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise SourceError(name, None, "invalid YAML: nested too deeply") from exc


def load(path: str | Path) -> Any:
    """Read and parse one YAML file.

    Raises:
        SourceError: The file cannot be read, is not UTF-8 text or is not
            valid YAML.
    """
    return loads(read_text(path), str(path))


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file of a bot or its configuration.

    Raises:
        SourceError: The file cannot be read, or is not UTF-8 text (with the
            line of the first bad byte).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SourceError(str(path), None, f"cannot read file: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SourceError(
            str(path), line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot be decoded)"
        ) from exc


def line_of(node: Any, key: str | None = None) -> int | None:
    """Return the line of ``node`` (or of its ``key``) when it was loaded from YAML."""
    if isinstance(node, LineDict):
        return node.line_of(key) if key is not None else node.line
    if isinstance(node, LineList):
        return node.line
    return None
