"""Fixtures for the knowledge-base tests: the prepared MiniLM encoder, once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.nlu.encoder import Encoder

ROOT = Path(__file__).resolve().parents[3]
KB_DIR = ROOT / "flows" / "kb"
# Shared with `make setup`, so the export runs once per machine, not per test run.
ENCODER_CACHE = ROOT / "var" / "models" / "minilm-int8"


class CountingEncoder:
    """The real encoder, counting the texts it embeds; ``id`` can be overridden."""

    def __init__(self, encoder: Encoder, id_: str | None = None) -> None:
        self._encoder = encoder
        self.id = id_ or encoder.id
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self._encoder.encode(texts)


@pytest.fixture
def counting(encoder: Encoder) -> CountingEncoder:
    return CountingEncoder(encoder)
