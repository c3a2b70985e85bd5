"""The website chat widget: one script tag, a WebSocket, Shadow-DOM UI."""

from bot.channels import ConnectorSpec
from connectors.widget.config import WidgetConfig
from connectors.widget.connector import WidgetConnector

SPEC = ConnectorSpec("widget", WidgetConfig, lambda config, ctx: WidgetConnector(config, ctx))

__all__ = ["SPEC", "WidgetConfig", "WidgetConnector"]
