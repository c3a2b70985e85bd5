"""Slack away at start: one retry loop with capped backoff, cancelled on stop.

Each failed ``auth.test`` used to start another retry task, so an outage
grew a task storm (tens of thousands of warnings a minute, a SIGTERM that
took 26 s). These run Helpline against a closed port and a Slack that
answers 500, and count the attempts and the retry tasks. Timings only
guard against hangs; no test passes or fails on how fast something was.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.slack.identify import TASK_NAME, retry_delays
from tests.connectors.slack.fake_slack import FakeSlack
from tests.connectors.slack.helpers import ClientFactory, build_app
from tests.processes import free_port

#: Short waits, so a test sees many attempts.
FAST = {"identify_retry_s": 0.01, "identify_retry_max_s": 0.04}
ATTEMPTS = 8


def retry_tasks() -> int:
    """The identify retry tasks still running."""
    return sum(1 for t in asyncio.all_tasks() if t.get_name() == TASK_NAME and not t.done())


async def _one_loop_then_prompt_stop(
    aiohttp_client: ClientFactory, tmp_path: Path, api_url: str, attempts: Callable[[], int]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    client = await aiohttp_client(build_app(tmp_path / "helpline.yml", url, api_url, **FAST))
    most = 0
    async with asyncio.timeout(30):  # a hang guard
        while attempts() < ATTEMPTS:
            most = max(most, retry_tasks())
            await asyncio.sleep(0.002)
    assert most == 1
    assert retry_tasks() == 1
    async with asyncio.timeout(10):  # a hang guard: stop cancels the loop
        await client.close()
    assert retry_tasks() == 0
    stopped_at = attempts()
    await asyncio.sleep(0.2)  # longer than the longest wait: no attempt after stop
    assert attempts() == stopped_at


async def test_a_refused_connection_is_retried_by_one_loop(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.slack")

    def attempts() -> int:
        return sum(
            1
            for r in caplog.records
            if r.getMessage().startswith("Cannot ask Slack who the bot is yet")
        )

    api_url = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    await _one_loop_then_prompt_stop(aiohttp_client, tmp_path, api_url, attempts)


async def test_server_errors_are_retried_by_one_loop(
    aiohttp_client: ClientFactory, tmp_path: Path, fake: FakeSlack
) -> None:
    fake.fail_next(10_000, status=500, method="auth.test")

    def attempts() -> int:
        return sum(1 for c in fake.calls if c.method == "auth.test")

    await _one_loop_then_prompt_stop(aiohttp_client, tmp_path, fake.api_url, attempts)
    assert not fake.successful("auth.test")


async def test_the_loop_ends_once_slack_answers(
    aiohttp_client: ClientFactory, tmp_path: Path, fake: FakeSlack
) -> None:
    fake.fail_next(3, status=500, method="auth.test")
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    await aiohttp_client(build_app(tmp_path / "helpline.yml", url, fake.api_url, **FAST))
    await fake.wait_for("auth.test")
    loops = [t for t in asyncio.all_tasks() if t.get_name() == TASK_NAME]
    if loops:
        await asyncio.wait(loops, timeout=10)  # a hang guard
    assert retry_tasks() == 0
    assert [c.status for c in fake.calls if c.method == "auth.test"] == [500, 500, 500, 200]


def test_waits_double_up_to_the_cap_with_jitter() -> None:
    def first(n: int, rand: Callable[[], float]) -> list[float]:
        return list(itertools.islice(retry_delays(1.0, 8.0, rand), n))

    assert first(6, lambda: 1.0) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert first(6, lambda: 0.0) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(14)
    waits = first(40, rng.random)
    steps = [min(2.0**i, 8.0) for i in range(40)]
    assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps, strict=True))
    assert len(set(waits)) == len(waits)  # jittered: no two replicas wait in step
