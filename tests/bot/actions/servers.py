"""Real rasa-sdk action servers for the action tests, each in its own venv.

The ``rasa_sdk_server`` fixture (conftest.py) is parametrized over two
servers, so every test that uses it runs twice:

- ``rasa-sdk-3.6``: rasa-sdk 3.6.2, the one Rasa Open Source 3.6.21 brings, in
  ``.venv-rasa`` (Python 3.10; ``scripts/setup-rasa-venv.sh``).
- ``rasa-sdk-3.21``: the latest rasa-sdk, 3.21.1, in ``.venv-rasa-sdk``
  (``scripts/setup-rasa-sdk-venv.sh``).

A missing venv is built by its script on first use. Each server is one
process for the whole session, serving ``rasa_actions/actions.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ACTIONS_DIR = Path(__file__).resolve().parent / "rasa_actions"

#: How long a server may take to answer /health before the tests give up.
STARTUP_LIMIT_S = 120.0

#: How long a setup script may take: .venv-rasa is 2.7 GB (TensorFlow).
SETUP_LIMIT_S = 1800

#: Per-test timeout of the modules that use the servers: the first test of
#: each server may build its venv.
SERVER_TEST_TIMEOUT_S = SETUP_LIMIT_S + 300


@dataclass(frozen=True)
class ServerSpec:
    """Where one kind of action server comes from."""

    venv: str
    setup_script: str


SERVERS = {
    "rasa-sdk-3.6": ServerSpec(".venv-rasa", "scripts/setup-rasa-venv.sh"),
    "rasa-sdk-3.21": ServerSpec(".venv-rasa-sdk", "scripts/setup-rasa-sdk-venv.sh"),
}


@dataclass(frozen=True)
class ActionServer:
    """A running rasa-sdk action server.

    Attributes:
        url: Its base URL, ``http://127.0.0.1:PORT``.
        version: The rasa-sdk version it runs, as ``(major, minor, patch)``.
    """

    url: str
    version: tuple[int, ...]

    @property
    def webhook(self) -> str:
        """The webhook URL that runs actions."""
        return f"{self.url}/webhook"

    @property
    def keeps_domain(self) -> bool:
        """Whether it keeps the last domain and answers 449 without one (3.8+)."""
        return self.version >= (3, 8)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_venv(spec: ServerSpec) -> Path:
    """Build the server's venv with its setup script (a no-op when it is there)."""
    try:
        done = subprocess.run(
            ["bash", str(ROOT / spec.setup_script)],
            capture_output=True,
            text=True,
            timeout=SETUP_LIMIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{spec.setup_script} did not finish within {SETUP_LIMIT_S} s")
    if done.returncode != 0:
        pytest.fail(f"{spec.setup_script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return ROOT / spec.venv / "bin" / "python"


def sdk_version(python: Path, env: dict[str, str]) -> tuple[int, ...]:
    """Return the rasa-sdk version installed for ``python``."""
    out = subprocess.run(
        [str(python), "-c", "import rasa_sdk.version as v; print(v.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    return tuple(int(part) for part in out.strip().split(".")[:3] if part.isdigit())


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server and its Sanic worker: they share a process group we made."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while not healthy(base_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            log = log_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"rasa-sdk action server did not come up at {base_url}:\n{log}")
        time.sleep(0.2)
