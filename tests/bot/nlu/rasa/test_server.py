"""The supervised Rasa sidecar: real ``rasa run`` processes, killed and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.metrics import REGISTRY
from bot.nlu.rasa.client import RasaNLU
from bot.nlu.rasa.server import RasaSidecar
from bot.runtime import NoNLU

from .conftest import BOT_NLU, MODEL_CACHE, TEST_EPOCHS

pytestmark = pytest.mark.timeout(900)

#: Hang guard for one Rasa start (about 40 s here, more on a loaded machine).
START_GUARD_S = 400.0


async def _parse_until(nlu: RasaNLU, text: str, intent: str, guard_s: float) -> None:
    async with asyncio.timeout(guard_s):
        while True:
            result = await nlu.parse(text)
            if result.intent is not None and result.intent.name == intent:
                return
            await asyncio.sleep(0.5)


async def _wait_for(condition: Callable[[], bool], guard_s: float) -> None:
    """Poll ``condition`` until it holds; the guard only stops a hang."""
    for _ in range(int(guard_s * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still false after {guard_s} s")


async def test_sidecar_serves_survives_a_kill_and_stops(rasa_model: Path) -> None:
    sidecar = RasaSidecar([BOT_NLU], MODEL_CACHE, epochs=TEST_EPOCHS)
    restarts = REGISTRY.get_sample_value("helpline_rasa_restarts_total") or 0.0
    async with RasaNLU(lambda: sidecar.url, NoNLU(), owned=sidecar, threshold=0.3) as nlu:
        # Before Rasa is up the fallback answers at once: nothing waits for it.
        assert sidecar.url is None
        assert (await nlu.parse("where is my order HL-12345")).out_of_scope
        await _parse_until(nlu, "where is my order HL-12345", "check_order_status", START_GUARD_S)
        assert sidecar.model == rasa_model
        first_pid = sidecar.pid
        assert first_pid is not None

        os.killpg(first_pid, signal.SIGKILL)
        await _wait_for(lambda: sidecar.url is None, 60)
        assert (await nlu.parse("where is my order HL-12345")).out_of_scope  # fallback
        await _parse_until(nlu, "where is my order HL-12345", "check_order_status", START_GUARD_S)
        assert sidecar.pid not in (None, first_pid)
        assert sidecar.restarts == 1
        assert REGISTRY.get_sample_value("helpline_rasa_restarts_total") == restarts + 1
        last_pid = sidecar.pid
    assert sidecar.pid is None
    assert last_pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(last_pid, 0)  # the whole process group is gone


async def test_missing_rasa_leaves_the_fallback_answering(tmp_path: Path) -> None:
    sidecar = RasaSidecar([BOT_NLU], tmp_path / "models", venv=tmp_path / "no-venv")
    async with RasaNLU(lambda: sidecar.url, NoNLU(), owned=sidecar) as nlu:
        await _wait_for(lambda: sidecar.error is not None, 30)
        assert (await nlu.parse("hello")).out_of_scope
    error = sidecar.error or ""
    assert "make setup-rasa" in error
    assert str(tmp_path / "no-venv") in error
