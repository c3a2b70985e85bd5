"""The one configuration file, ``helpline.yml``, validated by pydantic.

String values may use ``${NAME}`` or ``${NAME:-default}`` to read environment
variables (the default also replaces an empty value, as in the shell); ``$${``
stands for a literal ``${``. Substitution happens after YAML
parsing, so it never changes the structure of the file and a substituted value
is coerced to the field's type (``port: ${PORT}`` gives an int).

Relative paths (``bot.path``, ``models.cache_dir`` and the file of a
``sqlite`` storage URL) are resolved against the directory of the config file
when one is loaded, so a deployment works from any working directory. Without
a file they stay relative to the working directory.

Each connector owns its section under ``connectors:`` and validates it with
:func:`validate_section`, so this module knows nothing about connectors.
Every error names ``file:line`` and the key path, e.g.
``helpline.yml:7: server.port: Input should be a valid integer``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bot import yamlio
from bot.errors import ConfigError, SourceError

__all__ = [
    "ActionsSettings",
    "BotSettings",
    "Config",
    "DialogueSettings",
    "LoggingSettings",
    "ModelsSettings",
    "NLUSettings",
    "RasaNLUSettings",
    "RedisSettings",
    "ServerSettings",
    "StorageSettings",
    "load_config",
    "validate_section",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_FILE = "helpline.yml"
_ENV_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SQLITE_RE = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")

M = TypeVar("M", bound=BaseModel)
_Loc = tuple[str | int, ...]


class _Section(BaseModel):
    """Base of every section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSettings(_Section):
    """Where the bot project lives (flows, domain, NLU data, KB, actions, tests)."""

    path: Path = Path("flows")


class ServerSettings(_Section):
    """The HTTP server.

    ``drain_timeout_s``: on SIGTERM the server stops listening, refuses new
    messages, gives running turns this long to finish and deliver, then
    closes the widget and console sockets with a reconnect hint.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_message_chars: int = Field(default=2000, gt=0)
    drain_timeout_s: float = Field(default=30.0, ge=0)


class StorageSettings(_Section):
    """The database, as an SQLAlchemy async URL, and how long conversations are kept.

    ``retention_days`` unset keeps conversations forever; otherwise
    ``helpline db prune`` (and the server, once a day) deletes those with no
    activity for that many days.
    """

    url: str = "sqlite+aiosqlite:///var/helpline.db"
    retention_days: int | None = Field(default=None, ge=1)


class ModelsSettings(_Section):
    """Where exported and downloaded models are kept."""

    cache_dir: Path = Path("var/models")


class RasaNLUSettings(_Section):
    """The Rasa NLU backend (``nlu.backend: rasa``).

    With ``url`` unset Helpline trains a model and runs ``rasa run`` itself
    from ``venv`` (``make setup-rasa``); with ``url`` it uses that server
    (e.g. the ``rasa/rasa:3.6.21-full`` image), which must already serve a
    model trained by ``helpline rasa train``.
    """

    url: str | None = None
    venv: Path | None = None
    timeout_s: float = Field(default=1.0, gt=0)
    threshold: float = Field(default=0.5, ge=0, le=1)
    epochs: int = Field(default=100, ge=1)
    port: int = Field(default=0, ge=0, le=65535)
    startup_timeout_s: float = Field(default=300.0, gt=0)


class NLUSettings(_Section):
    """The NLU backend: the embedded one, or Rasa Open Source (see :class:`RasaNLUSettings`)."""

    backend: Literal["embedded", "rasa"] = "embedded"
    threads: int = Field(default=1, ge=1)
    rasa: RasaNLUSettings = Field(default_factory=RasaNLUSettings)


class DialogueSettings(_Section):
    """Time limits of the dialogue engine, in seconds, and how often a turn may fail.

    ``max_turn_attempts``: failed turns after which a message is set aside as
    ``failed`` and the customer told (see :mod:`bot.turn_guard`).
    """

    action_timeout_s: float = Field(default=5.0, gt=0)
    turn_timeout_s: float = Field(default=30.0, gt=0)
    max_turn_attempts: int = Field(default=3, ge=1, le=100)


class ActionsSettings(_Section):
    """Custom actions: the URL of a rasa-sdk action server, if any."""

    endpoint: str | None = None


class LoggingSettings(_Section):
    """Log level and format; the YAML key of ``json_format`` is ``json``."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # ``json`` would shadow BaseModel.json, so the field has another name.
    json_format: bool = Field(default=True, alias="json")

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class RedisSettings(_Section):
    """Redis for several replicas: the live-event bus, turn locks and recovery.

    Without ``url`` Helpline runs as one replica with in-process parts. See
    ``bot/replicas/`` for what each setting governs.
    """

    url: str | None = None
    key_prefix: str = Field(default="helpline", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    lock_lease_s: float = Field(default=10.0, gt=0)
    lock_wait_s: float = Field(default=60.0, gt=0)
    delivery_lease_s: float = Field(default=30.0, gt=0)
    recovery_interval_s: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None  # ``url: ${REDIS_URL:-}`` left empty: one replica
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class TracingSettings(_Section):
    """OpenTelemetry traces over OTLP/HTTP; off (nothing loaded) without ``otlp_endpoint``.

    ``otlp_endpoint`` is the collector's base URL (``http://collector:4318``)
    or its full traces URL (``.../v1/traces``).
    """

    otlp_endpoint: str | None = None
    service_name: str = Field(default="helpline", min_length=1)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def _default_connectors() -> dict[str, dict[str, Any]]:
    return {"rest": {"enabled": True}}


class Config(_Section):
    """The whole configuration; see the module docstring for the file format.

    Attributes:
        connectors: Raw section per connector; validate one with :func:`validate_section`.
        llm: Raw section of the language models; ``llm`` validates it with
            :func:`validate_llm_section`.
    """

    bot: BotSettings = Field(default_factory=BotSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    nlu: NLUSettings = Field(default_factory=NLUSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    actions: ActionsSettings = Field(default_factory=ActionsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    connectors: dict[str, dict[str, Any]] = Field(default_factory=_default_connectors)
    llm: dict[str, Any] = Field(default_factory=dict)

    _source: Path | None = PrivateAttr(None)
    _lines: dict[_Loc, int] = PrivateAttr(default_factory=dict)

    @field_validator("connectors", mode="before")
    @classmethod
    def _empty_sections(cls, value: Any) -> Any:
        # ``slack:`` with nothing under it enables a connector with its defaults.
        if isinstance(value, Mapping):
            return {key: {} if section is None else section for key, section in value.items()}
        return value

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from, or ``None`` for defaults."""
        return self._source


def _where(source: Path, lines: Mapping[_Loc, int], loc: _Loc) -> str:
    """Return ``file:line`` for the deepest known prefix of ``loc``."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line:
            return f"{source}:{line}"
    return str(source)


def _dotted(loc: _Loc) -> str:
    """Render a key path such as ``connectors.rest.origins[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _error(source: Path | None, lines: Mapping[_Loc, int], loc: _Loc, reason: str) -> str:
    """Format one error as ``file:line: key.path: reason`` (no location without a file)."""
    if source is None:
        return f"{_dotted(loc)}: {reason}"
    return f"{_where(source, lines, loc)}: {_dotted(loc)}: {reason}"


def _validation_error(
    exc: ValidationError, source: Path | None, lines: Mapping[_Loc, int], prefix: _Loc = ()
) -> ConfigError:
    """Translate a pydantic error into a ConfigError, one line per problem."""
    messages = [
        _error(source, lines, (*prefix, *(p for p in err["loc"] if p != "[key]")), err["msg"])
        for err in exc.errors(include_url=False)
    ]
    return ConfigError("\n".join(messages))


def _expand(text: str, source: Path, line: int, loc: _Loc) -> str:
    """Substitute ``${NAME}`` and ``${NAME:-default}`` in one string value."""

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group()[1:]
        value = os.environ.get(name)
        if default is not None and not value:
            return default  # like the shell, ``:-`` also replaces an empty value
        if value is not None:
            return value
        raise ConfigError(
            f"{source}:{line}: {_dotted(loc)}: environment variable {name} is not set"
        )

    return _ENV_RE.sub(replace, text)


def _walk(node: Any, loc: _Loc, line: int, source: Path, lines: dict[_Loc, int]) -> Any:
    """Return plain data with variables substituted, recording the line of each key path."""
    if isinstance(node, Mapping):
        result: dict[str, Any] = {}
        for key, value in node.items():
            key_line = node.line_of(key) if isinstance(node, yamlio.LineDict) else line
            lines[(*loc, key)] = key_line
            result[key] = _walk(value, (*loc, key), key_line, source, lines)
        return result
    if isinstance(node, list):
        list_line = getattr(node, "line", 0) or line
        items: list[Any] = []
        for index, value in enumerate(node):
            lines[(*loc, index)] = getattr(value, "line", 0) or list_line
            items.append(_walk(value, (*loc, index), lines[(*loc, index)], source, lines))
        return items
    if isinstance(node, str):
        return _expand(node, source, line, loc)
    return node


def _resolve_sqlite(url: str, base: Path) -> str:
    """Make the file of a relative ``sqlite:///file.db`` URL relative to ``base``."""
    match = _SQLITE_RE.match(url)
    if match is None:
        return url
    prefix, path, query = match.group(1), match.group(2), match.group(3) or ""
    if not path or path == ":memory:" or path.startswith(("/", "file:")):
        return url
    return f"{prefix}{base / path}{query}"


def _resolve_paths(config: Config, base: Path) -> Config:
    """Resolve relative paths against ``base``, the config file's directory."""
    return config.model_copy(
        update={
            "bot": config.bot.model_copy(update={"path": base / config.bot.path.expanduser()}),
            "models": config.models.model_copy(
                update={"cache_dir": base / config.models.cache_dir.expanduser()}
            ),
            "storage": config.storage.model_copy(
                update={"url": _resolve_sqlite(config.storage.url, base)}
            ),
        }
    )


def _read(path: Path) -> Any:
    """Read the YAML document of a config file."""
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        return yamlio.load(path)
    except SourceError as exc:
        raise ConfigError(str(exc)) from exc


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate the configuration.

    Args:
        path: The config file. Without one, ``./helpline.yml`` is used when it
            exists, and the built-in defaults otherwise.

    Raises:
        ConfigError: The file is missing, unreadable or invalid, or names an
            unset environment variable; the message names ``file:line``.
    """
    if path is None:
        if not Path(DEFAULT_FILE).is_file():
            _LOGGER.info("No %s found; using the built-in defaults.", DEFAULT_FILE)
            return Config()
        path = DEFAULT_FILE
    source = Path(path)
    document = _read(source)
    if document is None:
        document = yamlio.LineDict()
        document.line, document.key_lines = 1, {}
    if not isinstance(document, Mapping):
        line = yamlio.line_of(document) or 1
        raise ConfigError(f"{source}:{line}: the configuration must be a mapping of sections")
    lines: dict[_Loc, int] = {(): yamlio.line_of(document) or 1}
    data = _walk(document, (), lines[()], source, lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, source, lines) from exc
    config = _resolve_paths(config, source.absolute().parent)
    config._source = source
    config._lines = lines
    _LOGGER.debug("Loaded the configuration from %s.", source)
    return config


def validate_section(config: Config, name: str, model: type[M]) -> M:
    """Validate ``connectors.<name>`` with a connector's own model.

    A connector that is not configured gets its model's defaults.

    Raises:
        ConfigError: The section is invalid; each problem reads
            ``file:line: connectors.<name>.<key>: reason``.
    """
    section = config.connectors.get(name, {})
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        raise _validation_error(exc, config.source, config._lines, ("connectors", name)) from exc


def validate_llm_section(config: Config, model: type[M]) -> M:
    """Validate the ``llm`` section with the LLM package's own model.

    Raises:
        ConfigError: The section is invalid; each problem reads
            ``file:line: llm.<key>: reason``.
    """
    try:
        return model.model_validate(config.llm)
    except ValidationError as exc:
        raise _validation_error(exc, config.source, config._lines, ("llm",)) from exc
