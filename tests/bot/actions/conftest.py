"""Fixtures for action tests: real rasa-sdk action servers (see servers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.bot.actions.servers import (
    ACTIONS_DIR,
    SERVERS,
    STARTUP_LIMIT_S,
    ActionServer,
    ensure_venv,
    sdk_version,
)
from tests.processes import clean_env, free_port, serve


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
    env = clean_env(SANIC_HOST="127.0.0.1")
    version = sdk_version(python, env)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp(request.param) / "server.log"
    with serve(
        [str(python), "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=ACTIONS_DIR,
        env=env,
        health_url=f"{base_url}/health",
        log_path=log_path,
        limit_s=STARTUP_LIMIT_S,
    ):
        yield ActionServer(base_url, version)
