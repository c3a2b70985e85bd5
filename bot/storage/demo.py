"""Demo orders that the default bot seeds, so order lookup and refunds work out of the box.

Dates are relative to ``now``, so that the 30-day return window gives the
same answers whenever the demo runs: HL-10002 (5 days ago) and HL-10006
(28 days ago) were delivered within the window, HL-10003 45 days ago (too
late), and HL-10007 is a gift card that cannot be returned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

_ADDRESSES = {
    "maria.lopez@example.com": "12 Elm Street, Springfield, IL 62701",
    "james.chen@example.com": "480 Pine Avenue, Portland, OR 97205",
    "aisha.khan@example.com": "9 Harbour Road, Boston, MA 02110",
    "tom.becker@example.com": "77 Lake Shore Drive, Chicago, IL 60601",
}


class _Demo(NamedTuple):
    order_id: str
    email: str
    status: str
    items: tuple[tuple[str, str, int, int], ...]  # sku, name, quantity, price in cents
    placed_hours_ago: int
    delivered_hours_ago: int | None = None
    returnable: bool = True


_DAY = 24
_DEMOS = (
    _Demo("HL-10001", "maria.lopez@example.com", "shipped",
          (("HDP-200", "Wireless headphones", 1, 12900),), 3 * _DAY),
    _Demo("HL-10002", "maria.lopez@example.com", "delivered",
          (("CHG-65W", "65 W USB-C charger", 1, 3900), ("CBL-2M", "USB-C cable, 2 m", 2, 1200)),
          9 * _DAY, 5 * _DAY),
    _Demo("HL-10003", "james.chen@example.com", "delivered",
          (("KBD-MX", "Mechanical keyboard", 1, 8900),), 52 * _DAY, 45 * _DAY),
    _Demo("HL-10004", "james.chen@example.com", "processing",
          (("MSE-PRO", "Ergonomic mouse", 1, 4900),), 6),
    _Demo("HL-10005", "aisha.khan@example.com", "cancelled",
          (("CAM-4K", "4K webcam", 1, 9900),), 14 * _DAY),
    _Demo("HL-10006", "aisha.khan@example.com", "delivered",
          (("STD-ALU", "Aluminium laptop stand", 1, 5400),), 31 * _DAY, 28 * _DAY),
    _Demo("HL-10007", "tom.becker@example.com", "delivered",
          (("GFT-50", "Gift card, $50", 1, 5000),), 12 * _DAY, 10 * _DAY, False),
    _Demo("HL-10008", "tom.becker@example.com", "shipped",
          (("MON-27", "27-inch 4K monitor", 1, 32900), ("HDMI-2", "HDMI 2.1 cable", 1, 1900)),
          2 * _DAY),
)  # fmt: skip


def _order(demo: _Demo, now: datetime) -> dict[str, Any]:
    def ago(hours: int) -> datetime:
        return (now - timedelta(hours=hours)).replace(microsecond=0)

    items = [
        {"sku": sku, "name": name, "quantity": quantity, "price_cents": price}
        for sku, name, quantity, price in demo.items
    ]
    delivered = demo.delivered_hours_ago
    return {
        "order_id": demo.order_id,
        "email": demo.email,
        "status": demo.status,
        "items": items,
        "total_cents": sum(quantity * price for _, _, quantity, price in demo.items),
        "currency": "USD",
        "placed_at": ago(demo.placed_hours_ago),
        "delivered_at": None if delivered is None else ago(delivered),
        "shipping_address": _ADDRESSES[demo.email],
        "returnable": demo.returnable,
    }


def demo_orders(now: datetime | None = None) -> list[dict[str, Any]]:
    """Return eight demo orders, HL-10001 to HL-10008, dated relative to ``now``.

    Args:
        now: The reference time (aware); the current UTC time by default.

    Returns:
        Order dicts in the shape ``Store.seed_orders`` takes.
    """
    now = now or datetime.now(UTC)
    return [_order(demo, now) for demo in _DEMOS]
