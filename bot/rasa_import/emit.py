"""Writing the converted project's YAML: readable, key order kept, blocks for examples."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """A safe dumper that indents lists under their key, as Rasa files do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent block sequences inside mappings."""
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def plain(value: Any) -> Any:
    """Return ``value`` with line-tracking containers turned into plain ones."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def dump(data: dict[str, Any], header: str = "") -> str:
    """Return ``data`` as YAML text, after an optional comment ``header``."""
    text = yaml.dump(plain(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + text
