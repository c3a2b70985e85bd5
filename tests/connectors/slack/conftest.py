"""Fixtures: the fake Slack, and the whole Helpline app wired to it.

``client`` runs a test on SQLite and on PostgreSQL (``db_url``);
``sqlite_client`` on SQLite only, for the HTTP edge. Both are started before
the blocking guard is armed (startup reads files) and stopped after it is
disarmed; the database and the fake Slack outlive the app. A test changes
the ``connectors.slack`` section by parametrizing ``slack_settings``, e.g.
``@pytest.mark.parametrize("slack_settings", [{"mode": "socket"}])``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.connectors.slack.fake_slack import FakeSlack
from tests.connectors.slack.helpers import ClientFactory, build_app

Client = TestClient[Any, Any]


@pytest.fixture
async def fake(aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> FakeSlack:
    slack = FakeSlack()
    server = await aiohttp_server(slack.app)
    slack.api_url = str(server.make_url("/api/"))
    return slack


@pytest.fixture
def slack_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def _any_backend(
    db_url: str,
    fake: FakeSlack,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    slack_settings: dict[str, Any],
) -> Client:
    path = tmp_path / "helpline.yml"
    return await aiohttp_client(build_app(path, db_url, fake.api_url, **slack_settings))


@pytest.fixture
async def _sqlite(
    fake: FakeSlack, aiohttp_client: ClientFactory, tmp_path: Path, slack_settings: dict[str, Any]
) -> Client:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
    path = tmp_path / "helpline.yml"
    return await aiohttp_client(build_app(path, url, fake.api_url, **slack_settings))


@pytest.fixture
def client(_any_backend: Client, no_blocking: None) -> Client:
    """Helpline with Slack against the fake, on each backend; the loop is guarded."""
    return _any_backend


@pytest.fixture
def sqlite_client(_sqlite: Client, no_blocking: None) -> Client:
    """Helpline with Slack against the fake, on SQLite; the loop is guarded."""
    return _sqlite
