"""The ``connectors.slack`` section: what each mode needs, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.config import load_config, validate_section
from bot.errors import ChannelError, ConfigError
from connectors.slack import SlackConfig
from tests.connectors.slack.fake_slack import FakeSlack
from tests.connectors.slack.helpers import build_app


def section(tmp_path: Path, text: str) -> SlackConfig:
    path = tmp_path / "helpline.yml"
    path.write_text("connectors:\n  slack:\n" + text)
    return validate_section(load_config(path), "slack", SlackConfig)


def test_defaults_are_off_and_need_nothing(tmp_path: Path) -> None:
    config = section(tmp_path, "    enabled: false\n")
    assert not config.enabled
    assert config.mode == "events"
    assert config.conversation == "per_user"
    assert config.api_url == "https://slack.com/api/"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("    enabled: true\n    signing_secret: s\n", "bot_token", "is required"),
        ("    enabled: true\n    bot_token: xoxb-1\n", "signing_secret", "required in events"),
        (
            "    enabled: true\n    mode: socket\n    bot_token: xoxb-1\n",
            "app_token",
            "required in socket mode",
        ),
        (
            "    enabled: true\n    mode: socket\n    bot_token: xoxb-1\n    app_token: xoxb-2\n",
            "app_token",
            "app-level token",
        ),
        ("    enabled: true\n    mode: webhook\n", "mode", "'events' or 'socket'"),
        ("    enabled: false\n    conversation: per_channel\n", "conversation", "per_thread"),
        ("    enabled: false\n    tokn: x\n", "tokn", "Extra inputs"),
    ],
)
def test_invalid_sections_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        section(tmp_path, text)
    message = str(caught.value)
    assert re.search(
        rf"helpline\.yml:\d+: connectors\.slack\.{key}: .*{re.escape(reason)}", message
    )


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-from-env")
    config = section(
        tmp_path,
        "    enabled: true\n    mode: socket\n    bot_token: ${SLACK_BOT_TOKEN}\n"
        "    app_token: ${SLACK_APP_TOKEN}\n    api_url: http://127.0.0.1:9/api\n",
    )
    assert config.app_token is not None
    assert config.app_token.get_secret_value() == "xapp-from-env"
    assert "xoxb-from-env" not in repr(config)
    assert config.api_url == "http://127.0.0.1:9/api/"


def test_empty_env_value_counts_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"connectors\.slack\.signing_secret"):
        section(
            tmp_path,
            "    enabled: true\n    bot_token: xoxb-1\n"
            "    signing_secret: ${HELPLINE_TEST_UNSET_SECRET:-}\n",
        )


@pytest.mark.parametrize("mode", ["events", "socket"])
async def test_a_refused_token_stops_the_start(fake: FakeSlack, tmp_path: Path, mode: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    tokens = {"bot_token": "xoxb-revoked"} if mode == "events" else {"app_token": "xapp-revoked"}
    app = build_app(tmp_path / "helpline.yml", url, fake.api_url, mode=mode, **tokens)
    server = TestServer(app)
    key = next(iter(tokens))
    try:
        with pytest.raises(ChannelError, match=f"connectors.slack.{key}.*invalid_auth"):
            await server.start_server()
    finally:
        await server.close()  # runs the cleanup of what did start


async def test_slack_down_at_start_is_retried_in_the_background(
    fake: FakeSlack, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    fake.fail_next(1, status=503, method="auth.test")
    server = TestServer(build_app(tmp_path / "helpline.yml", url, fake.api_url))
    try:
        await server.start_server()  # starts although Slack did not answer
        (answered,) = await fake.wait_for("auth.test")
        assert [c.status for c in fake.calls if c.method == "auth.test"] == [503, 200]
        assert answered.token is not None
    finally:
        await server.close()
