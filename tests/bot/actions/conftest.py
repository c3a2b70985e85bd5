"""Fixtures for action tests: real rasa-sdk action servers (see servers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.bot.actions.servers import (
    ACTIONS_DIR,
    SERVERS,
    ActionServer,
    ensure_venv,
    free_port,
    sdk_version,
    stop,
    wait_healthy,
)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    return free_port()


@pytest.fixture(scope="session", params=sorted(SERVERS))
def rasa_sdk_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ActionServer]:
    """Run ``python -m rasa_sdk`` on the test actions, once per server kind."""
    if sys.platform == "win32":
        pytest.skip("the rasa-sdk fixture uses POSIX process groups")
    python = ensure_venv(SERVERS[request.param])
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(SANIC_HOST="127.0.0.1", PYTHONDONTWRITEBYTECODE="1")
    version = sdk_version(python, env)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp(request.param) / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
            cwd=ACTIONS_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(proc, base_url, log_path)
        yield ActionServer(base_url, version)
    finally:
        stop(proc)
