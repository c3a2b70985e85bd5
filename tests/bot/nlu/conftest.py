"""Fixtures for the embedded NLU tests: one prepared encoder and one trained NLU per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.embedded import EmbeddedNLU
from bot.nlu.encoder import prepare_encoder

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "nlu"
# Shared with `make setup`, so the export runs once per machine, not per test run.
ENCODER_CACHE = ROOT / "var" / "models" / "minilm-int8"


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    return prepare_encoder(ENCODER_CACHE)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def trained_nlu(encoder_dir: Path) -> EmbeddedNLU:
    return EmbeddedNLU.train([DATA / "train.yml"], encoder_dir)
