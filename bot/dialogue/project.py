"""A bot project on disk: flows, domain, NLU data, tests, KB and actions.

Every ``*.yml`` file at the top of the project folder is read; its top-level
keys decide what it holds (``flows``, domain keys, ``nlu``). Built-in
patterns and responses come first, so the project overrides them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yamlio
from bot.dialogue.domain import Domain, parse_domain
from bot.dialogue.flows import Flow, parse_flows
from bot.dialogue.validate import validate
from bot.errors import FlowError

DEFAULTS = Path(__file__).with_name("defaults.yml")
_DOMAIN_KEYS = {"responses", "slots", "intents", "entities", "actions", "session_config", "forms"}
_NLU_KEYS = {"nlu", "rules", "stories"}
_KNOWN_KEYS = _DOMAIN_KEYS | _NLU_KEYS | {"flows", "version", "test_cases", "fixtures"}


@dataclass
class Project:
    """Everything a bot is made of, loaded and validated."""

    root: Path
    flows: dict[str, Flow]
    domain: Domain
    nlu_files: list[Path] = field(default_factory=list)

    @property
    def tests_dir(self) -> Path:
        """Folder of the e2e tests."""
        return self.root / "tests"

    @property
    def kb_dir(self) -> Path:
        """Folder of the knowledge-base articles."""
        return self.root / "kb"

    @property
    def actions_file(self) -> Path | None:
        """The project's in-process actions module, if it has one."""
        path = self.root / "actions.py"
        return path if path.exists() else None

    def user_flows(self) -> list[Flow]:
        """Flows that are not patterns."""
        return [f for f in self.flows.values() if not f.is_pattern]


def _read(path: Path) -> dict[str, Any]:
    data = yamlio.load(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FlowError(str(path), yamlio.line_of(data), "the file must hold a mapping")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise FlowError(
            str(path),
            yamlio.line_of(data, sorted(unknown)[0]),
            f"unknown top-level key(s) {', '.join(sorted(unknown))}",
        )
    return data


def load_project(root: str | Path, has_action: Callable[[str], bool] = lambda _: False) -> Project:
    """Load and validate the bot project in ``root``.

    Args:
        root: The project folder.
        has_action: Whether a custom action name can be run (in process or
            remotely); names listed in the domain's ``actions`` count too.

    Raises:
        FlowError: A file is malformed or the flows are inconsistent.
    """
    root = Path(root)
    if not root.is_dir():
        raise FlowError(str(root), None, "bot project folder does not exist")
    defaults = _read(DEFAULTS)
    domain = parse_domain(defaults, str(DEFAULTS))
    flows = {f.id: f for f in parse_flows(defaults, str(DEFAULTS))}
    user_flows: dict[str, Flow] = {}
    nlu_files: list[Path] = []
    for path in sorted(root.glob("*.yml")) + sorted(root.glob("*.yaml")):
        data = _read(path)
        if _DOMAIN_KEYS & set(data):
            domain.merge(parse_domain(data, str(path)))
        if "nlu" in data:
            nlu_files.append(path)
        if "flows" in data:
            for flow in parse_flows(data, str(path)):
                if flow.id in user_flows:
                    other = user_flows[flow.id]
                    raise FlowError(
                        str(path),
                        flow.line,
                        f"flow '{flow.id}' is also defined in {other.path}:{other.line}",
                    )
                user_flows[flow.id] = flow
    flows.update(user_flows)
    declared = set(domain.actions)
    validate(flows, domain, lambda name: name in declared or has_action(name))
    return Project(root, flows, domain, nlu_files)
