"""Reading a Rasa 3.x project from disk, with the file and line of everything.

A project has ``domain.yml`` (or a ``domain/`` folder of files that are
merged), training data under ``data/`` (any ``*.yml`` there, each holding
``nlu``, ``rules`` and/or ``stories``), and optionally ``config.yml``,
``endpoints.yml`` and ``credentials.yml``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yamlio
from bot.errors import SourceError

_LOGGER = logging.getLogger(__name__)

DOMAIN_SECTIONS = (
    "intents",
    "entities",
    "slots",
    "responses",
    "actions",
    "forms",
    "session_config",
)
_DATA_SECTIONS = ("nlu", "rules", "stories", "responses")


@dataclass(frozen=True)
class Where:
    """A place in a source file."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


def where(path: str, node: Any, key: str | None = None) -> Where:
    """Return the place of ``node`` (or of its ``key``) in ``path``."""
    return Where(path, yamlio.line_of(node, key))


@dataclass(frozen=True)
class Entry:
    """One named item of a section: a slot, a response, a form, an intent..."""

    name: str
    spec: Any
    where: Where


@dataclass
class Document:
    """One loaded YAML file."""

    path: str
    data: dict[str, Any]


@dataclass
class RasaProject:
    """A Rasa project as read from disk; sections keep their source places."""

    root: Path
    domain: dict[str, dict[str, Entry]] = field(default_factory=dict)
    domain_extra: list[Entry] = field(default_factory=list)
    duplicates: list[Entry] = field(default_factory=list)
    data: list[Document] = field(default_factory=list)
    config: Document | None = None
    endpoints: Document | None = None
    credentials: Document | None = None

    def section(self, name: str) -> dict[str, Entry]:
        """Return one domain section (``slots``, ``responses``...) by item name."""
        return self.domain.get(name, {})

    def items(self, section: str) -> list[tuple[str, Any]]:
        """Return ``(path, item)`` for every item of a data section (``rules``...)."""
        found: list[tuple[str, Any]] = []
        for doc in self.data:
            found.extend((doc.path, item) for item in doc.data.get(section) or [])
        return found


def _load_mapping(path: Path) -> dict[str, Any]:
    data = yamlio.load(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SourceError(str(path), yamlio.line_of(data) or 1, "the file must hold a mapping")
    return data


def _optional(path: Path) -> Document | None:
    if not path.is_file():
        return None
    return Document(str(path), _load_mapping(path))


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _domain_files(root: Path) -> list[Path]:
    for name in ("domain.yml", "domain.yaml"):
        if (root / name).is_file():
            return [root / name]
    if (root / "domain").is_dir():
        files = _yaml_files(root / "domain")
        if files:
            return files
    raise SourceError(str(root / "domain.yml"), None, "no domain.yml or domain/ folder found")


def _named_items(value: Any, path: str, key: str, doc: dict[str, Any]) -> list[Entry]:
    """Read a domain section written as a mapping or as a list of names/mappings."""
    if isinstance(value, dict):
        return [Entry(str(k), v, where(path, value, str(k))) for k, v in value.items()]
    if isinstance(value, list):
        entries = []
        for item in value:
            if isinstance(item, dict) and len(item) == 1:
                name, spec = next(iter(item.items()))
                entries.append(Entry(str(name), spec, where(path, item)))
            elif isinstance(item, str | int | float | bool):
                entries.append(Entry(str(item), None, where(path, value)))
            else:
                raise SourceError(path, yamlio.line_of(item), f"malformed '{key}' item")
        return entries
    raise SourceError(path, yamlio.line_of(doc, key), f"'{key}' must be a list or a mapping")


def _add_domain(project: RasaProject, path: Path) -> None:
    data = _load_mapping(path)
    name = str(path)
    for key, value in data.items():
        if key == "version":
            continue
        if key not in DOMAIN_SECTIONS:
            project.domain_extra.append(Entry(key, value, where(name, data, key)))
            continue
        if value is None:
            continue
        section = project.domain.setdefault(key, {})
        if key == "session_config":
            section[key] = Entry(key, value, where(name, data, key))
            continue
        for entry in _named_items(value, name, key, data):
            if entry.name in section:
                project.duplicates.append(entry)
            section[entry.name] = entry


def _add_data(project: RasaProject, path: Path) -> None:
    data = _load_mapping(path)
    name = str(path)
    for key in _DATA_SECTIONS:
        if key in data and data[key] is not None and not isinstance(data[key], list | dict):
            raise SourceError(name, yamlio.line_of(data, key), f"'{key}' must be a list")
        if key != "responses" and isinstance(data.get(key), dict):
            raise SourceError(name, yamlio.line_of(data, key), f"'{key}' must be a list")
    if any(key in data for key in _DATA_SECTIONS):
        project.data.append(Document(name, data))


def read_project(root: str | Path) -> RasaProject:
    """Read the Rasa project in ``root``.

    Raises:
        SourceError: The folder or its domain is missing, or a file is not
            valid YAML or has the wrong shape (``file:line: reason``).
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(str(root), None, "Rasa project folder does not exist")
    project = RasaProject(root)
    for path in _domain_files(root):
        _add_domain(project, path)
    data_dir = root / "data"
    if data_dir.is_dir():
        for path in _yaml_files(data_dir):
            _add_data(project, path)
    project.config = _optional(root / "config.yml")
    project.endpoints = _optional(root / "endpoints.yml")
    project.credentials = _optional(root / "credentials.yml")
    _LOGGER.debug("Read the Rasa project in %s (%d data files).", root, len(project.data))
    return project
