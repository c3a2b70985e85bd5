"""Assembling the Rasa NLU backend from the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.nlu.rasa.client import RasaNLU
from bot.nlu.rasa.server import RasaSidecar

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bot.config import Config
    from bot.dialogue.nlu import NLU

#: Where trained Rasa models are cached, under ``models.cache_dir``.
RASA_MODELS = "rasa"


def build_rasa_nlu(nlu_paths: Sequence[Path], config: Config, fallback: NLU) -> RasaNLU:
    """Return a client of ``nlu.rasa.url``, or of a sidecar Helpline runs itself."""
    settings = config.nlu.rasa
    if settings.url:
        url = settings.url.rstrip("/")
        return RasaNLU(
            lambda: url, fallback, timeout_s=settings.timeout_s, threshold=settings.threshold
        )
    sidecar = RasaSidecar(
        nlu_paths,
        config.models.cache_dir / RASA_MODELS,
        venv=settings.venv,
        epochs=settings.epochs,
        port=settings.port,
        startup_timeout_s=settings.startup_timeout_s,
    )
    return RasaNLU(
        lambda: sidecar.url,
        fallback,
        timeout_s=settings.timeout_s,
        threshold=settings.threshold,
        owned=sidecar,
    )
