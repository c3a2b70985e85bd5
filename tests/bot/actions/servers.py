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

import subprocess
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
