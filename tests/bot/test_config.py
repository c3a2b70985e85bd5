from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.config import Config, load_config, validate_section
from bot.errors import ConfigError, HelplineError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "helpline.yml"
    path.write_text(text, encoding="utf-8")
    return path


class SlackSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    bot_token: str
    retries: int = 3


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.source is None
    assert config.bot.path == Path("flows")
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.max_message_chars == 2000
    assert config.storage.url == "sqlite+aiosqlite:///var/helpline.db"
    assert config.models.cache_dir == Path("var/models")
    assert config.nlu.backend == "embedded"
    assert config.nlu.threads == 1
    assert config.nlu.rasa.url is None
    assert config.dialogue.action_timeout_s == 5.0
    assert config.dialogue.turn_timeout_s == 30.0
    assert config.actions.endpoint is None
    assert config.logging.level == "INFO"
    assert config.logging.json_format is True
    assert config.connectors == {"rest": {"enabled": True}}


def test_no_path_uses_helpline_yml_in_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "server:\n  port: 9000\n")
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.server.port == 9000
    assert config.source == Path("helpline.yml")


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
bot: {path: /srv/bot}
server: {host: 0.0.0.0, port: 8443, max_message_chars: 500}
storage: {url: "postgresql+asyncpg://u:p@db/helpline"}
models: {cache_dir: /cache}
nlu: {backend: rasa, threads: 4, rasa: {url: "http://rasa:5005"}}
dialogue: {action_timeout_s: 2, turn_timeout_s: 10.5}
actions: {endpoint: "http://actions:5055/webhook"}
logging: {level: debug, json: false}
connectors:
  rest: {enabled: false}
  slack:
""",
    )
    config = load_config(path)
    assert config.source == path
    assert config.bot.path == Path("/srv/bot")
    assert (config.server.host, config.server.port, config.server.max_message_chars) == (
        "0.0.0.0",
        8443,
        500,
    )
    assert config.storage.url == "postgresql+asyncpg://u:p@db/helpline"
    assert config.models.cache_dir == Path("/cache")
    assert (config.nlu.backend, config.nlu.threads) == ("rasa", 4)
    assert config.nlu.rasa.url == "http://rasa:5005"
    assert config.dialogue.action_timeout_s == 2.0
    assert config.actions.endpoint == "http://actions:5055/webhook"
    assert config.logging.level == "DEBUG"
    assert config.logging.json_format is False
    assert config.connectors == {"rest": {"enabled": False}, "slack": {}}


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "server: {port: 1}\n"))
    with pytest.raises(ValidationError):
        config.server.port = 2  # type: ignore[misc]


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bot: {path: mybot}\nstorage: {url: 'sqlite+aiosqlite:///data/h.db?timeout=5'}\n",
    )
    config = load_config(path)
    assert config.bot.path == tmp_path / "mybot"
    assert config.models.cache_dir == tmp_path / "var" / "models"
    assert config.storage.url == f"sqlite+aiosqlite:///{tmp_path}/data/h.db?timeout=5"


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:////abs/h.db", "sqlite:///:memory:", "sqlite://", "postgresql://db/x"],
)
def test_urls_that_are_not_relative_files_are_kept(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f"storage: {{url: '{url}'}}\n"))
    assert config.storage.url == url


def test_env_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HL_PORT", "9090")
    monkeypatch.setenv("HL_HOST", "10.0.0.1")
    monkeypatch.setenv("HL_TOKEN", "xoxb-secret")
    monkeypatch.setenv("HL_EMPTY", "")
    monkeypatch.delenv("HL_UNSET", raising=False)
    path = write(
        tmp_path,
        """
server:
  host: ${HL_HOST}
  port: ${HL_PORT}
storage:
  url: postgresql://${HL_UNSET:-localhost}:${HL_PORT:-1}/db
actions:
  endpoint: "${HL_EMPTY:-dflt}-${HL_EMPTY}x $${NOT_A_VAR}"
connectors:
  slack:
    bot_token: ${HL_TOKEN}
    extra: ["${HL_UNSET:-a}", 5]
""",
    )
    config = load_config(path)
    assert config.server.host == "10.0.0.1"
    assert config.server.port == 9090
    assert config.storage.url == "postgresql://localhost:9090/db"
    assert config.actions.endpoint == "dflt-x ${NOT_A_VAR}"
    assert config.connectors["slack"] == {"bot_token": "xoxb-secret", "extra": ["a", 5]}


def test_unset_env_without_default_names_variable_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HL_MISSING", raising=False)
    path = write(tmp_path, "server:\n  host: localhost\n  port: ${HL_MISSING}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:3: server.port: environment variable HL_MISSING is not set"


def test_wrong_type_names_key_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# comment\nbot:\n  path: flows\nserver:\n  host: x\n  port: eighty\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:6: server.port: Input should be a valid integer, " + (
        "unable to parse string as an integer"
    )
    assert isinstance(info.value, HelplineError)


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "nlu:\n  backend: spacy\n  threads: 0\nlogging: {level: LOUD}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:2: nlu.backend: Input should be 'embedded' or 'rasa'")
    assert lines[1].startswith(f"{path}:3: nlu.threads: Input should be greater than or equal")
    assert lines[2].startswith(f"{path}:4: logging.level: Input should be 'DEBUG'")


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("server:\n  port: 1\n  prot: 2\n", 3, "server.prot"),
        ("\n\nserverr: {}\n", 3, "serverr"),
        ("logging:\n  json_format: true\n", 2, "logging.json_format"),
    ],
)
def test_unknown_key_rejected(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:{line}: {key}: Extra inputs are not permitted"


def test_section_must_be_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {port: 1}\nconnectors:\n  rest: [1, 2]\n")
    with pytest.raises(ConfigError, match=r":3: connectors\.rest: Input should be a valid dict"):
        load_config(path)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yml")


def test_invalid_yaml_is_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: [1\n")
    with pytest.raises(ConfigError, match=r"helpline\.yml:\d+: invalid YAML"):
        load_config(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match=r":1: the configuration must be a mapping"):
        load_config(path)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing yet\n"))
    assert config.server.port == 8080
    assert config.bot.path == tmp_path / "flows"


def test_validate_section(tmp_path: Path) -> None:
    path = write(tmp_path, "connectors:\n  slack:\n    enabled: true\n    bot_token: abc\n")
    section = validate_section(load_config(path), "slack", SlackSection)
    assert section == SlackSection(enabled=True, bot_token="abc", retries=3)


def test_validate_section_error_names_connector_key_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "server: {port: 1}\nconnectors:\n  slack:\n    bot_token: abc\n    retries: many\n",
    )
    config = load_config(path)
    with pytest.raises(ConfigError) as info:
        validate_section(config, "slack", SlackSection)
    assert str(info.value) == (
        f"{path}:5: connectors.slack.retries: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


def test_validate_section_missing_key_points_at_section(tmp_path: Path) -> None:
    path = write(tmp_path, "connectors:\n  slack:\n    enabled: true\n")
    with pytest.raises(ConfigError) as info:
        validate_section(load_config(path), "slack", SlackSection)
    assert str(info.value) == f"{path}:2: connectors.slack.bot_token: Field required"


def test_validate_section_unconfigured_connector(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {port: 1}\n")
    with pytest.raises(ConfigError) as info:
        validate_section(load_config(path), "slack", SlackSection)
    assert str(info.value) == f"{path}:1: connectors.slack.bot_token: Field required"

    class Optional(BaseModel):
        enabled: bool = False

    assert validate_section(load_config(path), "other", Optional) == Optional()


def test_validate_section_with_defaults_has_no_location() -> None:
    with pytest.raises(ConfigError) as info:
        validate_section(Config(), "slack", SlackSection)
    assert str(info.value) == "connectors.slack.bot_token: Field required"


def test_redis_section(tmp_path: Path) -> None:
    path = tmp_path / "helpline.yml"
    path.write_text("redis:\n  url: ''\n")
    assert load_config(path).redis.url is None  # ${REDIS_URL:-} left empty: one replica
    path.write_text("redis:\n  url: redis://cache:6379/0\n  lock_lease_s: 3\n")
    assert load_config(path).redis.lock_lease_s == 3
    path.write_text("server:\n  port: 1\nredis:\n  url: http://cache\n")
    with pytest.raises(ConfigError, match=r"helpline\.yml:4: redis\.url: .*redis://"):
        load_config(path)
    path.write_text("redis:\n  url: redis://cache\n  lock_lease_s: 0\n")
    with pytest.raises(ConfigError, match=r"helpline\.yml:3: redis\.lock_lease_s"):
        load_config(path)
