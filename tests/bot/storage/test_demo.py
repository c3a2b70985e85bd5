from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.storage import Store, demo_orders

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def test_demo_orders_cover_the_refund_cases() -> None:
    orders = {order["order_id"]: order for order in demo_orders(NOW)}
    assert sorted(orders) == [f"HL-1000{n}" for n in range(1, 9)]
    assert {o["status"] for o in orders.values()} == {
        "shipped",
        "delivered",
        "processing",
        "cancelled",
    }
    window = timedelta(days=30)
    eligible = {
        oid
        for oid, o in orders.items()
        if o["status"] == "delivered" and o["returnable"] and NOW - o["delivered_at"] <= window
    }
    assert eligible == {"HL-10002", "HL-10006"}
    assert NOW - orders["HL-10003"]["delivered_at"] > window
    for order in orders.values():
        expected = sum(i["quantity"] * i["price_cents"] for i in order["items"])
        assert order["total_cents"] == expected > 0
        assert (order["delivered_at"] is not None) == (order["status"] == "delivered")


async def test_demo_orders_seed_idempotently(store: Store) -> None:
    await store.seed_orders(demo_orders(NOW))
    later = NOW + timedelta(days=1)
    await store.seed_orders(demo_orders(later))
    order = await store.get_order("HL-10002")
    assert order is not None
    assert order["delivered_at"] == later - timedelta(days=5)
    assert order["email"] == "maria.lopez@example.com"
    assert order["items"][1] == {
        "sku": "CBL-2M",
        "name": "USB-C cable, 2 m",
        "quantity": 2,
        "price_cents": 1200,
    }
