"""Statements for the demo orders that the default bot's actions read and change."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, select, update

from bot.errors import StorageError
from bot.storage.models import Order
from bot.storage.queries import dialect_insert

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection

ORDERS: Table = Order.__table__  # type: ignore[assignment]
# Built once: the default bot reads an order on most order turns (see statements.py).
_ORDER_BY_ID = select(ORDERS).where(ORDERS.c.order_id == bindparam("p_order_id"))


_ORDER_DEFAULTS: dict[str, Any] = {
    "items": [],
    "currency": "USD",
    "delivered_at": None,
    "shipping_address": None,
    "returnable": True,
}


def _order_values(order: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and parse ISO timestamps of one order dict."""
    values = {**_ORDER_DEFAULTS, **order}
    unknown = set(values) - set(ORDERS.c.keys())
    if unknown:
        raise StorageError(f"Order {order.get('order_id')!r} has unknown fields {sorted(unknown)}.")
    for key in ("placed_at", "delivered_at"):
        if isinstance(values[key], str):
            values[key] = datetime.fromisoformat(values[key])
    return values


async def seed_orders(conn: AsyncConnection, orders: Sequence[dict[str, Any]]) -> None:
    """Insert the orders, or update those that exist (keyed on ``order_id``)."""
    rows = [_order_values(order) for order in orders]
    if not rows:
        return
    insert = dialect_insert(conn, ORDERS)
    columns = [name for name in ORDERS.c.keys() if name != "order_id"]
    upsert = insert.on_conflict_do_update(
        index_elements=["order_id"], set_={name: insert.excluded[name] for name in columns}
    )
    await conn.execute(upsert, rows)


async def get_order(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    """Return one order as a dict of its columns, or ``None``."""
    row = (await conn.execute(_ORDER_BY_ID, {"p_order_id": order_id})).one_or_none()
    return None if row is None else dict(row._mapping)


async def update_order(conn: AsyncConnection, order_id: str, changes: dict[str, Any]) -> bool:
    """Change some columns of one order; return whether the order exists."""
    allowed = {"status", "shipping_address", "returnable"}
    unknown = set(changes) - allowed
    if unknown:
        raise StorageError(f"Order fields {sorted(unknown)} cannot be changed.")
    query = update(ORDERS).where(ORDERS.c.order_id == order_id).values(**changes)
    result = await conn.execute(query)
    return bool(result.rowcount)
