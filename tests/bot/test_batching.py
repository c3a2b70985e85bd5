"""Group commit: concurrent writes share flushes, errors reach their callers."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from bot.batching import Coalescer


class Recorder:
    """A flush that holds each batch until released, and records what it got.

    ``gate`` releases every flush; ``gates[i]`` releases only the i-th.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gates: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.started: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.fail_next = False

    async def __call__(self, items: list[int]) -> None:
        self.batches.append(list(items))
        mine = self.gates[len(self.batches) - 1]
        self.started[len(self.batches) - 1].set()
        gates = [asyncio.ensure_future(self.gate.wait()), asyncio.ensure_future(mine.wait())]
        try:
            await asyncio.wait(gates, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in gates:
                task.cancel()
        if self.fail_next:
            self.fail_next = False
            raise OSError("database went away")


async def test_a_lone_write_is_flushed_at_once() -> None:
    recorder = Recorder()
    recorder.gate.set()
    coalescer = Coalescer(recorder)
    await coalescer.add([1])
    await coalescer.add([2, 3])
    assert recorder.batches == [[1], [2, 3]]


async def test_writes_arriving_during_a_flush_share_the_next_one() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder)
    first = asyncio.create_task(coalescer.add([0]))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalescer.add([i])) for i in range(1, 11)]
    await asyncio.sleep(0)
    assert recorder.batches == [[0]]
    recorder.gate.set()
    await asyncio.gather(first, *rest)
    assert recorder.batches == [[0], list(range(1, 11))]
    assert coalescer.flushes == 2


async def test_a_failed_flush_fails_every_caller_of_its_batch_only() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder)
    first = asyncio.create_task(coalescer.add([0]))
    await asyncio.sleep(0)
    recorder.fail_next = True  # the first flush (still waiting) will fail
    later = [asyncio.create_task(coalescer.add([i])) for i in (1, 2)]
    await asyncio.sleep(0)
    recorder.gate.set()
    with pytest.raises(OSError, match="went away"):
        await first
    await asyncio.gather(*later)  # their batch was the next one, which worked
    assert recorder.batches == [[0], [1, 2]]


async def test_a_cancelled_flush_is_run_again_by_the_next_caller_of_its_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder)
    held = asyncio.create_task(coalescer.add([0]))  # flushing, holds the lock
    await asyncio.sleep(0)
    leader = asyncio.create_task(coalescer.add([1]))  # the next batch's callers
    follower = asyncio.create_task(coalescer.add([2]))
    await asyncio.sleep(0)
    recorder.gates[0].set()
    await held
    await recorder.started[1].wait()  # the leader's flush of [1, 2] has started
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    recorder.gates[2].set()
    await follower
    assert recorder.batches == [[0], [1, 2], [1, 2]]  # the follower wrote its batch again
