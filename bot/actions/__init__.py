"""Custom actions: in-process Python actions and rasa-sdk action servers."""

from bot.actions.client import ActionServerClient
from bot.actions.registry import (
    DEFAULT_TIMEOUT,
    ActionDeps,
    ActionRegistry,
    LocalAction,
    OrderLookup,
    action,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ActionDeps",
    "ActionRegistry",
    "ActionServerClient",
    "LocalAction",
    "OrderLookup",
    "action",
]
