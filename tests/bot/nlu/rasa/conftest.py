"""Fixtures for the Rasa NLU backend: the real Rasa 3.6 venv, a model and a server.

The model is trained once per machine on the default bot's NLU data with few
epochs, in the same cache ``helpline run`` uses, so reruns find it. The
session's Rasa server is a real ``rasa run --enable-api`` process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.nlu.rasa.server import free_port
from bot.nlu.rasa.train import rasa_environment, rasa_executable, train_model
from tests.processes import serve

ROOT = Path(__file__).resolve().parents[4]
SETUP_SCRIPT = ROOT / "scripts" / "setup-rasa-venv.sh"
BOT_NLU = ROOT / "flows" / "nlu.yml"
MODEL_CACHE = ROOT / "var" / "models" / "rasa"
#: Few epochs: the tests check the plumbing, `helpline nlu evaluate` the quality.
TEST_EPOCHS = 20
STARTUP_LIMIT_S = 240.0


@pytest.fixture(scope="session")
def rasa_venv() -> Path:
    """``.venv-rasa``, built by the setup script when missing (about 2 minutes)."""
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, timeout=1800)
    venv = ROOT / ".venv-rasa"
    rasa_executable(venv)
    return venv


@pytest.fixture(scope="session")
def rasa_model(rasa_venv: Path) -> Path:
    """A Rasa NLU model of the default bot (trained once, then cached)."""
    return train_model([BOT_NLU], MODEL_CACHE, venv=rasa_venv, epochs=TEST_EPOCHS)


@pytest.fixture(scope="session")
def rasa_server(
    rasa_venv: Path, rasa_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Run ``rasa run --enable-api`` with the model; yield its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("rasa") / "server.log"
    cmd = [str(rasa_executable(rasa_venv)), "run", "--enable-api", "--model", str(rasa_model)]
    cmd += ["--interface", "127.0.0.1", "--port", str(port)]
    with serve(
        cmd,
        cwd=log_path.parent,
        env=rasa_environment(),
        health_url=f"{base_url}/status",
        log_path=log_path,
        limit_s=STARTUP_LIMIT_S,
    ):
        yield base_url
