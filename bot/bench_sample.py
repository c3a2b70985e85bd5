"""Where ``helpline bench load`` spends its time: CPU, PostgreSQL waits and Redis.

While the measured phase runs, :class:`Sampler` reads every few hundred
milliseconds the CPU time of each replica process and of the PostgreSQL
backends serving the bench database (``/proc`` through psutil), and the
``wait_event_type`` / ``wait_event`` of those backends (``pg_stat_activity``).
Redis is read before and after (``INFO commandstats`` and ``INFO cpu``): the
turn locks are ``SET NX PX`` plus a release script, so the time Redis spent in
those commands and its own CPU bound what the locks cost. :func:`bottleneck`
names the busiest part with the figures that back it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil


def _cpu_s(proc: psutil.Process) -> float:
    """User + system CPU seconds of ``proc`` (0 once it is gone)."""
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


@dataclass
class Sampler:
    """Samples replicas, PostgreSQL backends and wait events during one phase.

    Args:
        replica_pids: The ``helpline run`` processes.
        admin_dsn: An asyncpg DSN that may read ``pg_stat_activity``.
        database: The bench database's name (its backends are sampled).
        redis_url: The Redis the replicas share, or ``None``.
        interval_s: Time between samples.
    """

    replica_pids: list[int]
    admin_dsn: str
    database: str
    redis_url: str | None
    interval_s: float = 0.25
    waits: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    _backends: dict[int, psutil.Process] = field(default_factory=dict)
    _backend_start: dict[int, float] = field(default_factory=dict)
    _replica_start: list[float] = field(default_factory=list)
    _redis_start: dict[str, Any] = field(default_factory=dict)
    _started: float = 0.0
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sampler:
        """Take the starting figures and start sampling."""
        import asyncpg

        self._conn = await asyncpg.connect(self.admin_dsn)
        self._replicas = [psutil.Process(pid) for pid in self.replica_pids]
        self._replica_start = [_cpu_s(p) for p in self._replicas]
        self._redis_start = await _redis_info(self.redis_url)
        self._xact_start = await self._commits()
        psutil.cpu_percent(interval=None)  # starts the machine-wide measure
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop sampling and take the closing figures."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.elapsed_s = time.perf_counter() - self._started
        self._replica_end = [_cpu_s(p) for p in self._replicas]
        self._backend_end = {pid: _cpu_s(p) for pid, p in self._backends.items()}
        self._machine_percent = psutil.cpu_percent(interval=None)
        self._redis_end = await _redis_info(self.redis_url)
        self.commits = await self._commits() - self._xact_start
        await self._conn.close()

    async def _commits(self) -> int:
        """Transactions committed in the bench database so far (``pg_stat_database``)."""
        query = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
        return int(await self._conn.fetchval(query, self.database) or 0)

    async def _loop(self) -> None:
        """Sample until cancelled."""
        query = (
            "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()"
        )
        while True:
            for row in await self._conn.fetch(query, self.database):
                pid = int(row["pid"])
                if pid not in self._backends:
                    with contextlib.suppress(psutil.Error):
                        self._backends[pid] = proc = psutil.Process(pid)
                        self._backend_start[pid] = _cpu_s(proc)
                if row["state"] == "active":
                    kind = row["wait_event_type"] or "CPU"
                    event = row["wait_event"] or "running"
                    self.waits[f"{kind}:{event}"] += 1
                else:
                    self.waits[f"idle:{row['state']}"] += 1
            self.samples += 1
            await asyncio.sleep(self.interval_s)

    def report(self) -> dict[str, Any]:
        """CPU shares (1.0 = one core busy), wait events, and Redis figures."""
        span = max(self.elapsed_s, 1e-9)
        replicas = [
            round((end - start) / span, 3)
            for start, end in zip(self._replica_start, self._replica_end, strict=True)
        ]
        backend_cpu = sum(
            end - self._backend_start.get(pid, end) for pid, end in self._backend_end.items()
        )
        active = {k: v for k, v in self.waits.items() if not k.startswith("idle:")}
        total_active = max(sum(active.values()), 1)
        return {
            "sampled_s": round(self.elapsed_s, 2),
            "cpus": psutil.cpu_count(),
            "replica_cpu_cores": replicas,
            "postgres_backends": len(self._backends),
            "postgres_cpu_cores": round(backend_cpu / span, 3),
            "postgres_commits": self.commits,
            "postgres_active_backends_avg": round(sum(active.values()) / max(self.samples, 1), 2),
            "postgres_wait_events": {
                k: round(v / total_active, 3) for k, v in Counter(active).most_common(8)
            },
            "redis": _redis_delta(self._redis_start, self._redis_end, span),
            "machine_cpu_percent": self._machine_percent,
        }


async def _redis_info(url: str | None) -> dict[str, Any]:
    """``INFO commandstats`` and ``INFO cpu`` of the Redis at ``url`` (empty without one)."""
    if url is None:
        return {}
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        info: dict[str, Any] = await client.info("commandstats")
        info.update(await client.info("cpu"))
        return info
    finally:
        await client.aclose()


def _redis_delta(start: dict[str, Any], end: dict[str, Any], span: float) -> dict[str, Any]:
    """What Redis did between two ``INFO`` reads: CPU share and lock-command time."""
    if not end:
        return {}

    def cpu(info: dict[str, Any]) -> float:
        return float(info.get("used_cpu_sys", 0.0)) + float(info.get("used_cpu_user", 0.0))

    commands: dict[str, Any] = {}
    for key in ("cmdstat_set", "cmdstat_evalsha", "cmdstat_eval", "cmdstat_publish"):
        after, before = end.get(key, {}), start.get(key, {})
        calls = int(after.get("calls", 0)) - int(before.get("calls", 0))
        usec = int(after.get("usec", 0)) - int(before.get("usec", 0))
        if calls:
            commands[key.removeprefix("cmdstat_")] = {
                "calls": calls,
                "usec_per_call": round(usec / calls, 2),
            }
    return {"cpu_cores": round((cpu(end) - cpu(start)) / span, 3), "commands": commands}


def bottleneck(sample: dict[str, Any], client_cpu: float) -> dict[str, Any]:
    """Name the busiest part from a :meth:`Sampler.report` and the load client's CPU share."""
    cpus = max(int(sample["cpus"] or 1), 1)
    parts = {
        "replicas": sum(sample["replica_cpu_cores"]),
        "postgresql": sample["postgres_cpu_cores"],
        "redis": sample.get("redis", {}).get("cpu_cores", 0.0),
        "load_client": client_cpu,
    }
    used = sum(parts.values())
    busiest = max(parts, key=lambda k: parts[k])
    machine = float(sample["machine_cpu_percent"]) / 100 * cpus
    parts["other_processes"] = max(0.0, machine - used)
    waits = sample["postgres_wait_events"]
    lock_waits = sum(v for k, v in waits.items() if k.startswith(("Lock:", "LWLock:")))
    io_waits = sum(v for k, v in waits.items() if k.startswith(("IO:", "IPC:")))
    client_reads = float(waits.get("Client:ClientRead", 0.0))
    if machine >= 0.85 * cpus:
        verdict = (
            f"CPU-bound: {machine:.2f} of {cpus} cores busy ({used:.2f} by the bench, "
            f"most in {busiest}; {parts['other_processes']:.2f} by other processes)"
        )
    elif lock_waits > 0.3:
        verdict = f"PostgreSQL locks: {lock_waits:.0%} of active backend samples wait on locks"
    elif io_waits > 0.3:
        verdict = f"PostgreSQL I/O: {io_waits:.0%} of active backend samples wait on IO/IPC"
    elif client_reads > 0.5:
        verdict = (
            f"replicas: {client_reads:.0%} of active backend samples wait for the replica "
            f"(Client:ClientRead, a transaction open while Python runs), most CPU in {busiest}"
        )
    else:
        verdict = f"not saturated: {used:.2f} of {cpus} cores busy, most in {busiest}"
    return {
        "verdict": verdict,
        "cpu_cores_by_part": {k: round(v, 3) for k, v in parts.items()},
        "postgres_lock_wait_share": round(lock_waits, 3),
        "postgres_io_wait_share": round(io_waits, 3),
        "postgres_client_read_share": round(client_reads, 3),
    }
