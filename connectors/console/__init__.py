"""The agent console connector: human handoff inbox, live over a WebSocket.

Exports its config model, its class and ``SPEC`` (see :mod:`connectors.registry`).
"""

from __future__ import annotations

from bot.channels import ConnectorSpec
from connectors.console.config import ConsoleConfig
from connectors.console.connector import ConsoleConnector

SPEC = ConnectorSpec("console", ConsoleConfig, ConsoleConnector)

__all__ = ["SPEC", "ConsoleConfig", "ConsoleConnector"]
