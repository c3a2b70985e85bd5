"""Persistence: SQLite by default, PostgreSQL for many replicas.

The dialogue core never imports this package; the runtime hands it a
:class:`Store`.
"""

from __future__ import annotations

from bot.storage.demo import demo_orders
from bot.storage.engine import DEFAULT_URL
from bot.storage.records import ConversationRow, StoredMessage, TurnRecord
from bot.storage.store import Store

__all__ = ["DEFAULT_URL", "ConversationRow", "Store", "StoredMessage", "TurnRecord", "demo_orders"]
