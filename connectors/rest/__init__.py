"""The REST channel, compatible with Rasa's ``/webhooks/rest/webhook``."""

from bot.channels import ConnectorSpec
from connectors.rest.connector import RestConfig, RestConnector

SPEC = ConnectorSpec("rest", RestConfig, lambda config, ctx: RestConnector(config, ctx.handle))

__all__ = ["SPEC", "RestConfig", "RestConnector"]
