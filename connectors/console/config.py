"""The ``connectors.console`` section of ``helpline.yml``.

Every key is optional: the console is on by default and needs only agent
accounts (``helpline agents add``). Business hours have the widget's shape.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.widget.config import BusinessHours


class ConsoleConfig(BaseModel):
    """Settings of the agent console.

    Attributes:
        enabled: Serve ``/console`` and ``/console/api``.
        session_hours: How long a login lasts.
        login_max_failures: Failed logins per (email, client) before that
            client gets 429; the client is a known device (one that logged in
            as that email before) or else an IP.
        login_max_stranger_failures: Failed logins from clients that are not
            known devices, per email or per IP, before such clients get 429.
        login_window_min: The window those failures are counted in.
        device_cookie_key: Signs the device cookies; set the same on every
            replica (unset: a random key per process).
        trust_forwarded_for: Take the client IP from ``X-Forwarded-For``.
        session_check_interval_s: How often open console sockets are checked
            for ended sessions with no event to send (a logout or disable on
            this replica, or on another over the Redis bus, closes them at once).
        business_hours: When agents answer; always open when unset.
        unclaimed_notice_after_min: Tell a queued customer when to expect an
            answer once nobody claimed the conversation for this long.
        notice_check_interval_s: How often queued conversations are checked.
        unclaimed_notice: The text of that notice.
        offline_notice: The notice outside business hours.
        csat_question: The satisfaction question sent on resolve.
        slack_notify_channel: Post each new handoff to this Slack channel.
        slack_bot_token: The bot token for that (``${SLACK_BOT_TOKEN}``).
        slack_api_url: The Slack Web API base URL.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    session_hours: float = Field(default=12.0, gt=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_stranger_failures: int = Field(default=20, ge=1)
    login_window_min: float = Field(default=15.0, gt=0)
    device_cookie_key: SecretStr | None = None
    trust_forwarded_for: bool = False
    session_check_interval_s: float = Field(default=10.0, gt=0)
    business_hours: BusinessHours | None = None
    unclaimed_notice_after_min: float = Field(default=5.0, ge=0)
    notice_check_interval_s: float = Field(default=15.0, gt=0)
    unclaimed_notice: str = (
        "All our agents are busy right now. Someone will answer you as soon as possible."
    )
    offline_notice: str = "We're closed right now. An agent will answer you when we open again."
    csat_question: str = "How satisfied are you with the help you got?"
    slack_notify_channel: str | None = None
    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
