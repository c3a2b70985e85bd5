"""Demo orders that the default bot seeds, so order lookup and refunds work out of the box.

Dates are relative to ``now``, so that the 30-day return window gives the
same answers whenever the demo runs: HL-10002 (5 days ago) and HL-10006
(28 days ago) were delivered within the window, HL-10003 45 days ago (too
late), and HL-10007 is a gift card that cannot be returned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _item(sku: str, name: str, quantity: int, price_cents: int) -> dict[str, Any]:
    return {"sku": sku, "name": name, "quantity": quantity, "price_cents": price_cents}


def _order(
    order_id: str,
    email: str,
    status: str,
    items: list[dict[str, Any]],
    placed_at: datetime,
    delivered_at: datetime | None = None,
    *,
    address: str,
    returnable: bool = True,
) -> dict[str, Any]:
    total = sum(item["quantity"] * item["price_cents"] for item in items)
    return {
        "order_id": order_id,
        "email": email,
        "status": status,
        "items": items,
        "total_cents": total,
        "currency": "USD",
        "placed_at": placed_at,
        "delivered_at": delivered_at,
        "shipping_address": address,
        "returnable": returnable,
    }


def demo_orders(now: datetime | None = None) -> list[dict[str, Any]]:
    """Return eight demo orders, HL-10001 to HL-10008, dated relative to ``now``.

    Args:
        now: The reference time (aware); the current UTC time by default.

    Returns:
        Order dicts in the shape ``Store.seed_orders`` takes.
    """
    now = now or datetime.now(UTC)

    def ago(days: int, hours: int = 0) -> datetime:
        return (now - timedelta(days=days, hours=hours)).replace(microsecond=0)

    return [
        _order(
            "HL-10001",
            "maria.lopez@example.com",
            "shipped",
            [_item("HDP-200", "Wireless headphones", 1, 12900)],
            ago(3),
            address="12 Elm Street, Springfield, IL 62701",
        ),
        _order(
            "HL-10002",
            "maria.lopez@example.com",
            "delivered",
            [
                _item("CHG-65W", "65 W USB-C charger", 1, 3900),
                _item("CBL-2M", "USB-C cable, 2 m", 2, 1200),
            ],
            ago(9),
            ago(5),
            address="12 Elm Street, Springfield, IL 62701",
        ),
        _order(
            "HL-10003",
            "james.chen@example.com",
            "delivered",
            [_item("KBD-MX", "Mechanical keyboard", 1, 8900)],
            ago(52),
            ago(45),
            address="480 Pine Avenue, Portland, OR 97205",
        ),
        _order(
            "HL-10004",
            "james.chen@example.com",
            "processing",
            [_item("MSE-PRO", "Ergonomic mouse", 1, 4900)],
            ago(0, 6),
            address="480 Pine Avenue, Portland, OR 97205",
        ),
        _order(
            "HL-10005",
            "aisha.khan@example.com",
            "cancelled",
            [_item("CAM-4K", "4K webcam", 1, 9900)],
            ago(14),
            address="9 Harbour Road, Boston, MA 02110",
        ),
        _order(
            "HL-10006",
            "aisha.khan@example.com",
            "delivered",
            [_item("STD-ALU", "Aluminium laptop stand", 1, 5400)],
            ago(31),
            ago(28),
            address="9 Harbour Road, Boston, MA 02110",
        ),
        _order(
            "HL-10007",
            "tom.becker@example.com",
            "delivered",
            [_item("GFT-50", "Gift card, $50", 1, 5000)],
            ago(12),
            ago(10),
            address="77 Lake Shore Drive, Chicago, IL 60601",
            returnable=False,
        ),
        _order(
            "HL-10008",
            "tom.becker@example.com",
            "shipped",
            [
                _item("MON-27", "27-inch 4K monitor", 1, 32900),
                _item("HDMI-2", "HDMI 2.1 cable", 1, 1900),
            ],
            ago(2),
            address="77 Lake Shore Drive, Chicago, IL 60601",
        ),
    ]
