"""Smoke test of ``helpline bench load``: one real replica on PostgreSQL and Redis.

No timing is asserted (the bench is not a test): only the report's shape,
that turns went through both the widget and Slack, and that the audit found
nothing lost or duplicated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.bot.replicas.conftest import REDIS_URL
from tests.conftest import DEFAULT_PG_URL, _admin_connection, _asyncpg_dsn

ROOT = Path(__file__).parents[2]
RUN_KEYS = {
    "conversations",
    "replies_per_turn",
    "turns_per_s",
    "turn_p50_ms",
    "turn_p99_ms",
    "baseline_ws_echo",
    "turns_per_s_ratio_to_baseline",
    "p50_ratio_to_baseline",
    "p99_ratio_to_baseline",
    "turns",
    "audit",
    "resources",
    "bottleneck",
}


async def _services() -> None:
    """Skip unless PostgreSQL and Redis answer."""
    admin = await _admin_connection(DEFAULT_PG_URL)
    await admin.close()
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        await client.aclose()


@pytest.mark.timeout(300)
async def test_bench_load_json_and_nothing_lost() -> None:
    await _services()
    cmd = [sys.executable, "-m", "bot", "bench", "load", "--json", "--replicas", "1"]
    cmd += ["--conversations", "4", "--duration", "2", "--slack-share", "0.5"]
    cmd += ["--llm-share", "0", "--redis-url", REDIS_URL]
    cmd += ["--pg-admin-url", _asyncpg_dsn(DEFAULT_PG_URL)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)  # noqa: ASYNC221
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["replicas"] == 1
    assert report["lost"] == 0
    assert "mixed" not in report
    flow = report["flow"]
    assert RUN_KEYS <= flow.keys()
    assert flow["conversations"] == {"widget": 2, "slack": 2, "llm_question_loops": 0}
    assert flow["turns"]["count"] > 0
    paced = flow["paced"]  # the same loops at half the measured rate
    assert paced["share_of_saturated"] == 0.5
    assert paced["offered_per_s"] >= 1.0
    assert paced["count"] > 0
    assert flow["baseline_ws_echo"]["count"] > 0
    for channel in ("widget", "slack"):
        assert flow["messages_sent"][channel] > 0
        assert set(flow["audit"][channel].values()) == {0}, flow["audit"]
    resources = flow["resources"]
    assert len(resources["replica_cpu_cores"]) == 1
    assert resources["postgres_backends"] > 0
    assert resources["redis"]["commands"]["set"]["calls"] > 0  # the turn locks
    assert resources["postgres_commits"] > 0
    assert flow["bottleneck"]["verdict"]
    assert set(flow["bottleneck"]["cpu_cores_by_part"]) == {
        "replicas",
        "postgresql",
        "redis",
        "load_client",
        "other_processes",
    }
