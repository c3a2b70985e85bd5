"""Shared pieces of the tests that run real ``helpline run`` replicas.

A replica is a ``python -m bot run`` process in a process group of its own,
on a config written here (PostgreSQL URL, the live Redis with a key prefix of
the test's, short recovery interval and lock lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from tests.conftest import _asyncpg_dsn
from tests.processes import clean_env, serve

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Awaitable, Callable, Iterator

ROOT = Path(__file__).parents[3]
ORIGIN = {"Origin": "http://127.0.0.1"}


def config(folder: Path, db_url: str, prefix: str, port: int, **extra: Any) -> Path:
    """Write a replica's config; ``extra`` sections extend the defaults (``None`` drops one)."""
    settings: dict[str, Any] = {
        "bot": {"path": str(ROOT / "flows")},
        "storage": {"url": db_url},
        "models": {"cache_dir": str(ROOT / "var" / "models")},
        "server": {"port": port},
        "redis": {
            "url": "redis://127.0.0.1:6379/0",
            "key_prefix": prefix,
            "recovery_interval_s": 1,
            "lock_lease_s": 3,
        },
        "connectors": {"rest": {}, "widget": {"allowed_origins": ["*"]}},
        "llm": {"enabled": False},
        "logging": {"json": False},
    }
    for section, values in extra.items():
        if values is None:
            settings.pop(section, None)
        else:
            settings[section] = {**settings.get(section, {}), **values}
    path = folder / f"helpline-{port}.yml"
    path.write_text(json.dumps(settings))
    return path


@contextlib.contextmanager
def replica(config_path: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``helpline run`` on ``config_path`` until the block ends (its group then ends)."""
    with serve(
        [sys.executable, "-m", "bot", "--config", str(config_path), "run"],
        cwd=config_path.parent,
        env=clean_env(),
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=log_path,
        limit_s=180,
    ) as proc:
        yield proc


async def frames(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    """Append every JSON frame of ``ws`` to ``into`` until it closes."""
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            into.append(json.loads(msg.data))


async def rows(db_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on the test database."""
    conn = await asyncpg.connect(_asyncpg_dsn(db_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def delivered_ok(session: aiohttp.ClientSession, base: str) -> float:
    """The replica's count of widget replies delivered."""
    async with session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    pattern = r'^helpline_deliveries_total\{channel="widget",outcome="ok"\} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def until(check: Callable[[], Awaitable[Any]], limit_s: float = 60) -> Any:
    """Poll ``check`` until it returns something true (``limit_s`` is a hang guard)."""
    async with asyncio.timeout(limit_s):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)  # polling other processes and a database
