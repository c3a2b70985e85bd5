"""A bot project on disk: flows, domain, NLU data, tests, KB and actions.

Every ``*.yml`` file at the top of the project folder is read; its top-level
keys decide what it holds (``flows``, domain keys, ``nlu``). Built-in
patterns and responses come first, so the project overrides them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yamlio
from bot.dialogue import checks
from bot.dialogue.domain import Domain, parse_domain
from bot.dialogue.flows import Flow, parse_flows
from bot.dialogue.validate import validate
from bot.errors import FlowError

_LOGGER = logging.getLogger(__name__)
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
    #: What looks wrong but may be meant, each ``file:line: text`` (also logged).
    warnings: list[str] = field(default_factory=list)

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
        """The bot's own flows: neither patterns nor built-in flows."""
        return [f for f in self.flows.values() if not f.is_pattern and f.path != str(DEFAULTS)]


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


def _check_kb(kb_dir: Path) -> None:
    """Refuse a knowledge-base article that is not UTF-8 text (a binary file).

    Raises:
        FlowError: With the line of the first bad byte or NUL character.
    """
    if not kb_dir.is_dir():
        return
    for path in sorted(kb_dir.glob("*.md")):
        text = yamlio.read_text(path)
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise FlowError(str(path), line, "a binary file (it holds NUL bytes), not an article")


def _warn(
    project: Project, user_flows: int, nlu: list[tuple[str, str, int | None]], found: list[str]
) -> None:
    """Collect and log what looks wrong but may be meant (see :mod:`bot.dialogue.checks`)."""
    warnings = found + checks.check_responses(project.flows, project.domain)
    warnings += checks.check_nlu_intents(nlu, project.domain)
    if not user_flows:
        warnings.append(f"{project.root}: the bot has no flows (only the built-in patterns)")
    for warning in warnings:
        _LOGGER.warning("%s", warning)
    project.warnings = warnings


def load_project(root: str | Path, has_action: Callable[[str], bool] = lambda _: False) -> Project:
    """Load and validate the bot project in ``root``.

    Args:
        root: The project folder.
        has_action: Whether a custom action name can be run (in process or
            remotely); names listed in the domain's ``actions`` count too.

    Raises:
        FlowError: A file is empty or malformed, the flows are inconsistent
            with each other or with the domain (see :mod:`bot.dialogue.checks`),
            or a knowledge-base article is not text.
        SourceError: A file cannot be read or is not UTF-8 text.
    """
    root = Path(root)
    if not root.is_dir():
        raise FlowError(str(root), None, "bot project folder does not exist")
    defaults = _read(DEFAULTS)
    domain = parse_domain(defaults, str(DEFAULTS))
    flows = {f.id: f for f in parse_flows(defaults, str(DEFAULTS))}
    user_flows: dict[str, Flow] = {}
    nlu_files: list[Path] = []
    nlu: list[tuple[str, str, int | None]] = []
    for path in sorted(root.glob("*.yml")) + sorted(root.glob("*.yaml")):
        data = _read(path)
        if not data:
            raise FlowError(str(path), 1, "the file is empty (remove it, or give it content)")
        if _DOMAIN_KEYS & set(data):
            domain.merge(parse_domain(data, str(path)))
        if "nlu" in data:
            nlu_files.append(path)
            nlu += [(str(path), name, line) for name, line in checks.nlu_intents(data)]
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
    triggers = checks.check_triggers(flows, domain, {name for _, name, _ in nlu})
    checks.check_set_slots(flows, domain)
    _check_kb(root / "kb")
    project = Project(root, flows, domain, nlu_files)
    _warn(project, len(user_flows), nlu, triggers)
    return project
