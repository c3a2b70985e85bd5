"""The REST channel, compatible with Rasa's ``/webhooks/rest/webhook``."""

from connectors.rest.connector import RestConfig, RestConnector

__all__ = ["RestConfig", "RestConnector"]
