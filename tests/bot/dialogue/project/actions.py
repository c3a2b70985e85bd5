"""In-process actions of the test bot."""

from __future__ import annotations

import asyncio

from bot.actions.registry import ActionDeps, action
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import SlotSet


@action("action_lookup")
async def lookup(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Pretend every order has shipped."""
    return ActionResult(events=(SlotSet("order_status", "shipped"),))


@action("action_fail")
async def fail(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Always fail."""
    raise RuntimeError("the lookup service is down")


@action("action_slow")
async def slow(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Take longer than any sensible timeout."""
    await asyncio.sleep(30)
    return ActionResult()
