"""Fixtures for action tests: a real rasa-sdk action server in its own venv."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SDK_PYTHON = ROOT / ".venv-rasa-sdk" / "bin" / "python"
SETUP_SCRIPT = ROOT / "scripts" / "setup-rasa-sdk-venv.sh"
ACTIONS_DIR = Path(__file__).resolve().parent / "rasa_actions"

#: How long the server may take to answer /health before the tests give up.
STARTUP_LIMIT_S = 90.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_sdk_venv() -> None:
    """Create .venv-rasa-sdk with the setup script; a no-op when it exists."""
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, timeout=900)


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server and its Sanic worker: they share a process group we made."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while not _healthy(base_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            log = log_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"rasa-sdk action server did not come up at {base_url}:\n{log}")
        time.sleep(0.2)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    return free_port()


@pytest.fixture(scope="session")
def rasa_sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``python -m rasa_sdk`` on the test actions; yield its base URL."""
    if sys.platform == "win32":
        pytest.skip("the rasa-sdk fixture uses POSIX process groups")
    _ensure_sdk_venv()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("rasa-sdk") / "server.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(SANIC_HOST="127.0.0.1", PYTHONDONTWRITEBYTECODE="1")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(SDK_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
            cwd=ACTIONS_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(proc, base_url, log_path)
        yield base_url
    finally:
        _stop(proc)
