"""The email channel: IMAP in (IDLE or polling), SMTP out, threads by headers."""

from bot.channels import ConnectorSpec
from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector

SPEC = ConnectorSpec("email", EmailConfig, lambda config, ctx: EmailConnector(config, ctx))

__all__ = ["SPEC", "EmailConfig", "EmailConnector"]
