"""The explicit registry of connectors (CONVENTIONS 8).

Built-in connectors are listed here by module path, so a connector's
dependencies (slack-sdk, aioimaplib...) are imported only when it is used.
Third-party connectors register a :class:`bot.channels.ConnectorSpec` under
the ``helpline.connectors`` entry-point group. A name registered twice is a
startup error, whatever the import order.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.channels import ConnectorSpec

ENTRY_POINT_GROUP = "helpline.connectors"
#: name -> module exporting ``SPEC``.
BUILTIN: dict[str, str] = {
    "rest": "connectors.rest",
    "widget": "connectors.widget",
    "slack": "connectors.slack",
    "email": "connectors.email",
    "console": "connectors.console",
}
#: Connectors that run without a ``connectors.<name>`` section in the config.
ENABLED_BY_DEFAULT = frozenset({"rest", "widget", "console"})


def available() -> list[str]:
    """The names of every connector that can be configured."""
    names = [name for name, module in BUILTIN.items() if importlib.util.find_spec(module)]
    names.extend(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return names


def load(name: str) -> ConnectorSpec:
    """Return the spec of connector ``name``.

    Raises:
        ConfigError: No connector has that name, or two do.
    """
    found: list[ConnectorSpec] = []
    if name in BUILTIN and importlib.util.find_spec(BUILTIN[name]):
        found.append(importlib.import_module(BUILTIN[name]).SPEC)
    found.extend(ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP, name=name))
    if not found:
        raise ConfigError(f"connectors.{name}: there is no connector named {name!r}")
    if len(found) > 1:
        raise ConfigError(f"connectors.{name}: {len(found)} connectors are named {name!r}")
    return found[0]
