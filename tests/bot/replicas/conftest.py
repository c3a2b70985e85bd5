"""A live Redis for the replica tests, with a key prefix of their own.

``HELPLINE_TEST_REDIS_URL`` points at another server; without one reachable
the tests are skipped, unless ``HELPLINE_TEST_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

REDIS_URL = os.environ.get("HELPLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A client of the test Redis (skips when it is down)."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("HELPLINE_TEST_REQUIRE_REDIS") == "1":
            raise
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test run uses."""
    return f"helpline-test-{uuid.uuid4().hex[:12]}"
