"""Owned background tasks: logged failures, cancel-and-await on stop, drain."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.tasks import OwnedTasks


async def test_stop_cancels_and_awaits_every_task() -> None:
    tasks = OwnedTasks()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    task = tasks.spawn(forever(), "forever")
    await asyncio.sleep(0)
    await tasks.stop()
    assert task.cancelled()
    assert cancelled.is_set()
    assert len(tasks) == 0


async def test_a_failure_is_logged_when_the_task_ends(caplog: pytest.LogCaptureFixture) -> None:
    tasks = OwnedTasks()

    async def boom() -> None:
        raise ValueError("broken")

    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        tasks.spawn(boom(), "boom")
        await tasks.drain()
    assert "Task boom failed." in caplog.text
    assert len(tasks) == 0


async def test_drain_waits_for_tasks_started_meanwhile() -> None:
    tasks = OwnedTasks()
    done: list[str] = []

    async def second() -> None:
        done.append("second")

    async def first() -> None:
        tasks.spawn(second(), "second")
        done.append("first")

    tasks.spawn(first(), "first")
    await tasks.drain()
    assert done == ["first", "second"]


async def test_wait_leaves_what_is_still_running_at_the_deadline_running() -> None:
    tasks, release = OwnedTasks(), asyncio.Event()
    tasks.spawn(release.wait(), "held")
    tasks.spawn(asyncio.sleep(0), "quick")
    assert not await tasks.wait(0.05)
    assert len(tasks) == 1  # the held task was not cancelled by the deadline
    release.set()
    assert await tasks.wait(5)
    assert len(tasks) == 0
