"""The ``connectors.slack`` section of ``helpline.yml``.

Events mode (the Events API over HTTP) needs the signing secret; Socket Mode
needs an app-level token (``xapp-...``); both need the bot token. These are
checked only when the connector is enabled, and each error names its key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

SLACK_API_URL = "https://slack.com/api/"


def _given(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


class SlackConfig(BaseModel):
    """Settings of the Slack connector.

    Attributes:
        enabled: Slack is off unless configured and enabled.
        mode: ``events`` (Slack POSTs to ``/webhooks/slack/events``) or
            ``socket`` (Socket Mode, for installs without a public URL).
        bot_token: The bot token (``xoxb-...``), for the Web API.
        signing_secret: Verifies the requests Slack sends in events mode.
        app_token: The app-level token (``xapp-...``, scope
            ``connections:write``) that opens Socket Mode connections.
        conversation: ``per_user``: one conversation per Slack user in each
            place (their DM with the bot, and each channel they mention it
            in, are apart); ``per_thread``: one per thread.
        api_url: The Web API base URL (tests and proxies point it elsewhere).
        agent_name_style: How a human agent's reply shows the agent:
            ``username`` posts under the agent's name and icon (needs the
            ``chat:write.customize`` scope), ``prefix`` starts the text with
            ``Name: ``.
        agent_icon_emoji: The icon of agent replies without an ``icon_url``.
        request_timeout_s: The time limit of one Web API call.
        button_clicks: Who may answer the bot's buttons: ``owner`` (the
            user the reply answered; others get a note only they see and
            the buttons stay) or ``anyone`` in the channel.
        identify_retry_s: The first wait before asking Slack who the bot is
            again, when it could not be reached at start; it doubles, with
            jitter, up to ``identify_retry_max_s``.
        identify_retry_max_s: The longest wait between those attempts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    mode: Literal["events", "socket"] = "events"
    conversation: Literal["per_user", "per_thread"] = "per_user"
    bot_token: SecretStr | None = Field(default=None, validate_default=True)
    signing_secret: SecretStr | None = Field(default=None, validate_default=True)
    app_token: SecretStr | None = Field(default=None, validate_default=True)
    api_url: str = SLACK_API_URL
    agent_name_style: Literal["username", "prefix"] = "username"
    agent_icon_emoji: str = ":bust_in_silhouette:"
    request_timeout_s: float = Field(default=10.0, gt=0)
    button_clicks: Literal["owner", "anyone"] = "owner"
    identify_retry_s: float = Field(default=1.0, gt=0)
    identify_retry_max_s: float = Field(default=60.0, gt=0)

    @field_validator("bot_token")
    @classmethod
    def _bot_token_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("enabled") and not _given(value):
            raise ValueError("is required when Slack is enabled (e.g. ${SLACK_BOT_TOKEN})")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _secret_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("enabled") and info.data.get("mode") == "events" and not _given(value):
            raise ValueError("is required in events mode (e.g. ${SLACK_SIGNING_SECRET})")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token_needed(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if not info.data.get("enabled") or info.data.get("mode") != "socket":
            return value
        if value is None or not _given(value):
            raise ValueError("is required in socket mode (e.g. ${SLACK_APP_TOKEN})")
        if not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token (xapp-...), not a bot or user token")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url_slash(cls, value: str) -> str:
        return value if value.endswith("/") else f"{value}/"
