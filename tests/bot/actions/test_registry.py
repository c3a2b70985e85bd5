"""In-process actions: registration, the decorator, load_module, failures."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.actions import ActionDeps, ActionRegistry, action
from bot.actions.registry import marked_name
from bot.dialogue.actions import ActionContext, ActionResult, ActionRunner
from bot.dialogue.events import SlotSet
from bot.errors import ActionError


class Orders:
    """An order store with fixed contents, implementing OrderLookup."""

    def __init__(self, orders: dict[str, dict[str, Any]]) -> None:
        self._orders = orders

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self._orders.get(order_id)


@action("action_check_order")
async def check_order(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    assert deps.orders is not None
    order = await deps.orders.get_order(str(ctx.slots["order_id"]))
    status = order["status"] if order else "unknown"
    return ActionResult(
        events=(SlotSet("order_status", status),),
        responses=({"text": f"Order {ctx.slots['order_id']} is {status}."},),
    )


async def greet(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    return ActionResult(responses=({"response": "utter_greet"},))


def context(**slots: Any) -> ActionContext:
    return ActionContext(sender_id="conv-1", slots=slots)


def write_actions(path: Path, body: str) -> Path:
    header = """
        from bot.actions import ActionDeps, action
        from bot.dialogue.actions import ActionContext, ActionResult
    """
    path.write_text(textwrap.dedent(header) + textwrap.dedent(body))
    return path


def test_registry_is_an_action_runner() -> None:
    runner: ActionRunner = ActionRegistry()
    assert not runner.has("action_anything")


def test_decorator_marks_without_registering() -> None:
    registry = ActionRegistry()
    assert marked_name(check_order) == "action_check_order"
    assert marked_name(greet) is None
    assert not registry.has("action_check_order")


async def test_registered_action_runs_with_deps() -> None:
    orders = Orders({"A-17": {"status": "shipped"}})
    registry = ActionRegistry(deps=ActionDeps(orders=orders))
    registry.register("action_check_order", check_order)
    registry.register("action_greet", greet)

    result = await registry.run("action_check_order", context(order_id="A-17"))

    assert registry.has("action_check_order")
    assert registry.local_names == ["action_check_order", "action_greet"]
    assert result.events == (SlotSet("order_status", "shipped"),)
    assert result.responses == ({"text": "Order A-17 is shipped."},)
    assert (await registry.run("action_greet", context())).responses == (
        {"response": "utter_greet"},
    )


async def test_unknown_action_without_endpoint_is_an_error() -> None:
    registry = ActionRegistry()
    assert not registry.has("action_nope")
    with pytest.raises(ActionError, match="no action named 'action_nope'"):
        await registry.run("action_nope", context())


def test_duplicate_registration_names_both() -> None:
    registry = ActionRegistry()
    registry.register("action_greet", greet)
    with pytest.raises(ActionError, match="defined twice") as info:
        registry.register("action_greet", check_order)
    assert "greet" in str(info.value)
    assert "check_order" in str(info.value)


def test_sync_function_is_refused() -> None:
    def not_async(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        return ActionResult()

    with pytest.raises(ActionError, match="must be an async function"):
        ActionRegistry().register("action_sync", not_async)  # type: ignore[arg-type]


async def test_load_module_registers_marked_functions(tmp_path: Path) -> None:
    path = write_actions(
        tmp_path / "actions.py",
        """
        @action("action_hello")
        async def hello(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
            return ActionResult(responses=({"text": f"Hello {ctx.slots['name']}"},))

        alias = hello  # the same function twice is still one action

        async def helper(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
            return ActionResult()
        """,
    )
    registry = ActionRegistry()

    assert registry.load_module(path) == ["action_hello"]
    result = await registry.run("action_hello", context(name="Ada"))

    assert result.responses == ({"text": "Hello Ada"},)
    assert registry.local_names == ["action_hello"]


def test_load_module_duplicate_across_files_names_both(tmp_path: Path) -> None:
    body = """
        @action("action_refund")
        async def refund(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
            return ActionResult()
        """
    first = write_actions(tmp_path / "first.py", body)
    (tmp_path / "other").mkdir()
    second = write_actions(tmp_path / "other" / "actions.py", body)
    registry = ActionRegistry()
    registry.load_module(first)

    with pytest.raises(ActionError, match="'action_refund' is defined twice") as info:
        registry.load_module(second)

    assert str(first) in str(info.value)
    assert str(second) in str(info.value)


def test_load_module_is_all_or_nothing(tmp_path: Path) -> None:
    path = write_actions(
        tmp_path / "actions.py",
        """
        @action("action_a")
        async def a(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
            return ActionResult()

        @action("action_b")
        async def b(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
            return ActionResult()
        """,
    )
    registry = ActionRegistry()
    registry.register("action_b", greet)

    with pytest.raises(ActionError, match="'action_b' is defined twice"):
        registry.load_module(path)

    assert registry.local_names == ["action_b"]


def test_load_module_reports_import_errors(tmp_path: Path) -> None:
    path = write_actions(tmp_path / "actions.py", "raise RuntimeError('bad import')\n")
    with pytest.raises(ActionError, match="bad import"):
        ActionRegistry().load_module(path)
    with pytest.raises(ActionError, match="no such file"):
        ActionRegistry().load_module(tmp_path / "missing.py")


async def test_failing_local_action_is_an_action_error() -> None:
    async def broken(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        raise KeyError("order_id")

    registry = ActionRegistry()
    registry.register("action_broken", broken)
    with pytest.raises(ActionError, match="action 'action_broken' failed: KeyError") as info:
        await registry.run("action_broken", context())
    assert isinstance(info.value.__cause__, KeyError)


async def test_local_action_over_the_timeout_is_an_action_error() -> None:
    never = asyncio.Event()

    async def stuck(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        await never.wait()
        return ActionResult()

    registry = ActionRegistry(timeout=0.05)
    registry.register("action_stuck", stuck)
    with pytest.raises(ActionError, match=r"'action_stuck' timed out after 0\.05 s"):
        await registry.run("action_stuck", context())


async def test_timeout_error_raised_by_the_action_is_a_failure() -> None:
    async def own_timeout(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        raise TimeoutError("the carrier API timed out")

    registry = ActionRegistry()
    registry.register("action_carrier", own_timeout)
    with pytest.raises(ActionError, match="failed: TimeoutError"):
        await registry.run("action_carrier", context())


async def test_wrong_return_type_is_an_action_error() -> None:
    async def sloppy(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        return {"text": "hi"}  # type: ignore[return-value]

    registry = ActionRegistry()
    registry.register("action_sloppy", sloppy)
    with pytest.raises(ActionError, match="returned dict, not ActionResult"):
        await registry.run("action_sloppy", context())
