"""The Slack connector: the Events API over HTTP or Socket Mode, replies in threads."""

from bot.channels import ConnectorSpec
from connectors.slack.config import SlackConfig
from connectors.slack.connector import SlackConnector

SPEC = ConnectorSpec("slack", SlackConfig, lambda config, ctx: SlackConnector(config, ctx))

__all__ = ["SPEC", "SlackConfig", "SlackConnector"]
