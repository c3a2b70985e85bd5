"""Custom actions of the Northwind Goods support bot.

The flows in ``flows.yml`` call these in-process actions. They read demo
orders through ``deps.orders`` and answer only with slot events: the flows
choose which response to send, so the conversation stays visible in YAML and
the e2e tests can stub any action with plain slot events.

Slots set by ``action_check_order`` (and reused by the other actions):
``order_found``, ``order_status``, ``order_items``, ``order_total``,
``order_placed_at``, ``order_delivered_at`` and ``order_address``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.actions.registry import ActionDeps, action
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import Event, SlotSet

_LOGGER = logging.getLogger(__name__)

#: Days after delivery during which an order may be returned.
RETURN_WINDOW_DAYS = 30

_ORDER_ID = re.compile(r"\b[Hh][Ll][- ]?(\d{5})\b")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def normalise_order_id(raw: object) -> str | None:
    """Return ``raw`` as a canonical order number such as ``HL-10003``.

    Args:
        raw: What the customer typed, e.g. ``hl 10003`` or ``HL-10003``.

    Returns:
        The canonical ``HL-`` plus five digits, or ``None`` when ``raw`` holds
        no order number.
    """
    match = _ORDER_ID.search(str(raw or ""))
    return f"HL-{match.group(1)}" if match else None


def parse_timestamp(value: object) -> datetime | None:
    """Read a timestamp stored as a datetime or an ISO 8601 string; naive means UTC.

    Args:
        value: A datetime, an ISO string such as ``2025-03-02T14:05:00Z``, or ``None``.

    Returns:
        An aware datetime, or ``None`` when ``value`` is empty or malformed.
    """
    if isinstance(value, datetime):
        parsed = value
    elif not value:
        return None
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_day(day: date | datetime | None) -> str | None:
    """Format a day for customers, e.g. ``March 2, 2025``.

    Args:
        day: The day to show, or ``None``.

    Returns:
        The formatted day, or ``None`` when ``day`` is ``None``.
    """
    if day is None:
        return None
    return f"{day:%B} {day.day}, {day.year}"


def format_items(items: list[dict[str, Any]] | None) -> str:
    """Summarise order lines, e.g. ``Ceramic Mug (x2) and Linen Throw``.

    Args:
        items: Order lines with ``name`` and ``quantity`` (or ``qty``) keys.

    Returns:
        A short human-readable list of the items.
    """
    names = []
    for item in items or []:
        name = str(item.get("name", "item"))
        quantity = int(item.get("quantity") or item.get("qty") or 1)
        names.append(f"{name} (x{quantity})" if quantity > 1 else name)
    if not names:
        return "no items"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def format_total(order: dict[str, Any]) -> str:
    """Format an order's total, stored as ``total_cents`` or as ``total`` dollars.

    Args:
        order: The order.

    Returns:
        The total such as ``$64.50`` (other currencies get their code, e.g. ``64.50 EUR``).
    """
    if order.get("total_cents") is not None:
        amount = int(order["total_cents"]) / 100
    else:
        amount = float(order.get("total") or 0.0)
    currency = str(order.get("currency") or "USD")
    return f"${amount:,.2f}" if currency == "USD" else f"{amount:,.2f} {currency}"


def format_address(address: object) -> str:
    """Render a shipping address stored as text or as a mapping of parts.

    Args:
        address: The order's ``shipping_address``.

    Returns:
        The address on one line.
    """
    if isinstance(address, dict):
        return ", ".join(str(part) for part in address.values() if part)
    return str(address or "the address on the order")


def order_slots(order: dict[str, Any]) -> dict[str, Any]:
    """Return the slot values that describe ``order`` to the flows.

    Args:
        order: An order as ``OrderLookup.get_order`` returns it.

    Returns:
        Slot names mapped to their values.
    """
    return {
        "order_found": True,
        "order_status": order.get("status"),
        "order_items": format_items(order.get("items")),
        "order_total": format_total(order),
        "order_placed_at": format_day(parse_timestamp(order.get("placed_at"))),
        "order_delivered_at": format_day(parse_timestamp(order.get("delivered_at"))),
        "order_address": format_address(order.get("shipping_address")),
    }


async def find_order(ctx: ActionContext, deps: ActionDeps) -> dict[str, Any] | None:
    """Look up the order named by the ``order_id`` slot.

    Args:
        ctx: The conversation, whose ``order_id`` slot names the order.
        deps: Shared services; ``deps.orders`` is the order store.

    Returns:
        The order, or ``None`` when the number is malformed or unknown.
    """
    order_id = normalise_order_id(ctx.slots.get("order_id"))
    if order_id is None:
        return None
    if deps.orders is None:
        _LOGGER.warning("No order store is configured, so order %s cannot be found.", order_id)
        return None
    return await deps.orders.get_order(order_id)


def slot_events(values: dict[str, Any]) -> tuple[Event, ...]:
    """Turn slot values into ``SlotSet`` events, in a stable order.

    Args:
        values: Slot names mapped to values.

    Returns:
        One event per slot.
    """
    return tuple(SlotSet(name, value) for name, value in values.items())


async def change_order(deps: ActionDeps, order_id: str | None, changes: dict[str, Any]) -> bool:
    """Write a change to the order store.

    Args:
        deps: Shared services; ``deps.orders`` is the order store.
        order_id: The order to change.
        changes: Columns to set (``status``, ``shipping_address``).

    Returns:
        Whether the order exists and was changed.
    """
    if deps.orders is None or not order_id:
        _LOGGER.warning("No order store or order id; %s was not changed.", order_id)
        return False
    return await deps.orders.update_order(order_id, changes)


@action("action_check_order")
async def check_order(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Look the order up and describe it in slots; ``order_found`` says whether it exists.

    Args:
        ctx: The conversation; reads the ``order_id`` slot.
        deps: Shared services; reads ``deps.orders``.

    Returns:
        Slot events only; the flow picks the response from ``order_status``.
    """
    raw = ctx.slots.get("order_id")
    values: dict[str, Any] = {}
    canonical = normalise_order_id(raw)
    if canonical is not None and canonical != raw:
        values["order_id"] = canonical
    order = await find_order(ctx, deps)
    values.update(order_slots(order) if order else {"order_found": False})
    return ActionResult(events=slot_events(values))


def refund_verdict(order: dict[str, Any], now: datetime) -> tuple[str | None, date | None]:
    """Decide whether ``order`` may be returned at ``now``.

    An order qualifies when it was delivered within the last
    :data:`RETURN_WINDOW_DAYS` days and is marked returnable.

    Args:
        order: The order to judge.
        now: The current time (aware).

    Returns:
        The reason it does not qualify (``None`` when it does: one of
        ``cancelled``, ``not_delivered``, ``not_returnable`` or
        ``window_passed``) and the last day of its return window, if delivered.
    """
    delivered = parse_timestamp(order.get("delivered_at"))
    window_end = (delivered + timedelta(days=RETURN_WINDOW_DAYS)).date() if delivered else None
    if order.get("status") == "cancelled":
        return "cancelled", window_end
    if order.get("status") != "delivered" or delivered is None:
        return "not_delivered", window_end
    if not order.get("returnable", False):
        return "not_returnable", window_end
    if now.date() > (window_end or now.date()):
        return "window_passed", window_end
    return None, window_end


@action("action_check_refund_eligibility")
async def check_refund_eligibility(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Check the return window and returnability of the order in ``order_id``.

    Args:
        ctx: The conversation; reads ``order_id``.
        deps: Shared services; reads ``deps.orders``.

    Returns:
        Slot events for ``refund_eligible``, ``refund_block_reason`` and
        ``return_window_end``, plus the order's own slots.
    """
    order = await find_order(ctx, deps)
    if order is None:
        return ActionResult(events=slot_events({"order_found": False, "refund_eligible": False}))
    reason, window_end = refund_verdict(order, datetime.now(UTC))
    values = order_slots(order)
    values.update(
        refund_eligible=reason is None,
        refund_block_reason=reason,
        return_window_end=format_day(window_end),
    )
    return ActionResult(events=slot_events(values))


@action("action_create_return")
async def create_return(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Open a return for the order and name it in ``return_reference``.

    Args:
        ctx: The conversation; reads ``order_id`` and ``refund_reason``.
        deps: Shared services; marks the order ``return_requested``.

    Returns:
        A ``return_reference`` slot event such as ``RT-10003``.
    """
    order_id = normalise_order_id(ctx.slots.get("order_id")) or "HL-00000"
    reason = ctx.slots.get("refund_reason") or "other"
    await change_order(deps, order_id, {"status": "return_requested"})
    _LOGGER.info("A return was opened for order %s (reason: %s).", order_id, reason)
    return ActionResult(events=(SlotSet("return_reference", order_id.replace("HL-", "RT-")),))


@action("action_send_password_reset")
async def send_password_reset(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Pretend to email a password reset link to the address in ``email``.

    No mail is sent in the demo. The reply never says whether an account
    exists, so the bot cannot be used to probe for customers' addresses.

    Args:
        ctx: The conversation; reads ``email``.
        deps: Shared services (unused).

    Returns:
        No events; the flow confirms with ``utter_password_reset_sent``.
    """
    email = str(ctx.slots.get("email") or "").strip()
    if _EMAIL.match(email):
        domain = email.rsplit("@", 1)[-1]
        _LOGGER.info("A password reset link would be sent to an address at %s.", domain)
    else:
        _LOGGER.warning("No reset link was sent: the email slot is not an address.")
    return ActionResult()


@action("action_update_shipping_address")
async def update_shipping_address(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Change the shipping address of an order that has not shipped.

    Args:
        ctx: The conversation; reads ``order_id`` and ``shipping_address``.
        deps: Shared services; writes the address to the order store.

    Returns:
        An ``order_address`` slot event with the new address.
    """
    order_id = normalise_order_id(ctx.slots.get("order_id"))
    address = str(ctx.slots.get("shipping_address") or "").strip()
    await change_order(deps, order_id, {"shipping_address": address})
    _LOGGER.info("The shipping address of order %s was changed.", order_id)
    return ActionResult(events=(SlotSet("order_address", address),))


@action("action_cancel_order")
async def cancel_order(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Cancel an order that has not shipped; the flow asked for a yes first.

    Args:
        ctx: The conversation; reads ``order_id``.
        deps: Shared services; marks the order ``cancelled``.

    Returns:
        An ``order_status`` slot event set to ``cancelled``.
    """
    order_id = normalise_order_id(ctx.slots.get("order_id"))
    await change_order(deps, order_id, {"status": "cancelled"})
    _LOGGER.info("Order %s was cancelled at the customer's request.", order_id)
    return ActionResult(events=(SlotSet("order_status", "cancelled"),))
