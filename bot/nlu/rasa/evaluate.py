"""Scoring the Rasa NLU backend on the same data and metrics as the embedded one.

The model is trained with ``rasa train nlu`` on the training files, served by
a real ``rasa run`` sidecar and every test example is parsed over HTTP, so
the latency is what a turn pays. There is no fallback during an evaluation:
if Rasa stops answering, the evaluation fails.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

from bot.dialogue.nlu import ParseResult
from bot.errors import NLUError
from bot.nlu.data import load_nlu
from bot.nlu.evaluate import score
from bot.nlu.rasa.client import RasaNLU
from bot.nlu.rasa.project import DEFAULT_EPOCHS
from bot.nlu.rasa.server import RasaSidecar
from bot.nlu.rasa.train import train_model

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

#: The threshold used when none is tuned: ``nlu.rasa.threshold``'s default.
DEFAULT_THRESHOLD = 0.5


class _NoFallback:
    """Fails the evaluation instead of scoring another NLU in Rasa's name."""

    async def parse(self, text: str) -> ParseResult:
        raise NLUError(f"Rasa stopped answering during the evaluation (at {text!r})")


async def _wait_ready(sidecar: RasaSidecar, limit_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not sidecar.ready.is_set():
        if sidecar.error:
            raise NLUError(sidecar.error)
        if loop.time() > deadline:
            raise NLUError(f"the Rasa server did not come up in {limit_s:g} s")
        await asyncio.sleep(0.5)


async def evaluate_rasa(
    train: Sequence[Path],
    test: Sequence[Path],
    cache_dir: Path,
    *,
    tune: Sequence[Path] = (),
    venv: Path | None = None,
    epochs: int = DEFAULT_EPOCHS,
    startup_timeout_s: float = 300.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train Rasa on ``train``, serve it and score ``test``.

    Returns:
        The metrics, and one prediction record per test example.

    Raises:
        NLUError: Rasa is missing, fails to train or to serve.
    """
    start = time.perf_counter()
    model = await asyncio.to_thread(
        train_model, train, cache_dir, venv=venv, epochs=epochs, echo=sys.stderr
    )
    train_seconds = time.perf_counter() - start
    sidecar = RasaSidecar(
        train, cache_dir, venv=venv, epochs=epochs, startup_timeout_s=startup_timeout_s
    )
    nlu = RasaNLU(
        lambda: sidecar.url,
        _NoFallback(),
        timeout_s=30.0,
        threshold=DEFAULT_THRESHOLD,
        owned=sidecar,
    )
    data = await asyncio.to_thread(load_nlu, train)
    async with nlu:
        await _wait_ready(sidecar, startup_timeout_s)
        report, rows = await score(
            nlu.parse, set(data.intents), test, default_threshold=DEFAULT_THRESHOLD, tune=tune
        )
    report.update(
        backend="rasa",
        n_intents=len(data.intents),
        n_train=len(data.examples),
        train_seconds=train_seconds,
        epochs=epochs,
        model=model.name,
    )
    return report, rows
