"""The local Slack the tests run against lives in :mod:`connectors.slack.fake`."""

from connectors.slack.fake import (
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    GONE_CHANNELS,
    SIGNING_SECRET,
    TEAM_ID,
    Call,
    FakeSlack,
)

__all__ = [
    "APP_TOKEN",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "GONE_CHANNELS",
    "SIGNING_SECRET",
    "TEAM_ID",
    "Call",
    "FakeSlack",
]
