"""``helpline bench dialogue``: NLU latency, REST turn latency and throughput.

The server runs in a child process (``helpline run``) so that the load
client and the server do not share an event loop. Every figure comes with a
baseline measured in the same run: a static aiohttp route of the same server
(``GET /webhooks/rest/``), so ratios stay comparable on noisy machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

SCRIPT = (
    "hello",
    "where is my order?",
    "HL-10001",
    "what are your opening hours?",
    "thanks, bye",
)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values`` by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(
    folder: Path, bot: Path, url: str, models: Path, extra: dict[str, Any] | None = None
) -> Path:
    config = folder / "helpline.yml"
    settings = {
        "bot": {"path": str(bot.resolve())},
        "storage": {"url": url},
        "models": {"cache_dir": str(models.resolve())},
        "logging": {"level": "WARNING"},
        # Benchmarks drive many turns per sender from one address on purpose.
        "connectors": {"rest": {"sender_rate": None, "ip_rate": None}},
        **(extra or {}),
    }
    config.write_text(json.dumps(settings))
    return config


@contextlib.asynccontextmanager
async def serve(
    bot: Path, url: str, models: Path, extra: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """Run ``helpline run`` in a child process with its own config (plus ``extra`` sections)."""
    async with serve_process(bot, url, models, extra) as (base, _):
        yield base


@contextlib.asynccontextmanager
async def serve_process(
    bot: Path, url: str, models: Path, extra: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`serve`, and yield the child process too (to sample its CPU)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        config = _write_config(Path(tmp), bot, url, models, extra)
        cmd = [sys.executable, "-m", "bot", "--config", str(config), "run", "--port", str(port)]
        proc = subprocess.Popen(cmd)  # noqa: ASYNC220 - a long-lived child, not awaited
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_ready(base, proc)
            yield base, proc
        finally:
            proc.terminate()  # the server drains (server.drain_timeout_s) before it exits
            try:
                await asyncio.to_thread(proc.wait, 90)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 30)


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready in 120 s")


async def _load(
    base: str,
    conversations: int,
    rounds: int,
    label: str,
    request: Callable[..., Awaitable[None]],
    think_s: float = 0.0,
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    total = conversations * rounds * len(SCRIPT)
    bar = tqdm(total=total, desc=label, unit="turn", file=sys.stderr, leave=False)

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        sender = f"bench-{uuid.uuid4().hex[:8]}-{index}"
        if think_s:
            # Spread the conversations' first messages over one think time.
            await asyncio.sleep(think_s * index / conversations)
        for _ in range(rounds):
            for text in SCRIPT:
                started = time.perf_counter()
                await request(session, base, sender, text)
                latencies.append((time.perf_counter() - started) * 1000)
                bar.update()
                if think_s:
                    await asyncio.sleep(think_s)

    connector = aiohttp.TCPConnector(limit=conversations)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, i) for i in range(conversations)))
        elapsed = time.perf_counter() - started
    bar.close()
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


async def _turn(session: Any, base: str, sender: str, text: str) -> None:
    async with session.post(
        f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text}
    ) as resp:
        resp.raise_for_status()
        await resp.read()


async def _static(session: Any, base: str, sender: str, text: str) -> None:
    async with session.get(f"{base}/webhooks/rest/") as resp:
        resp.raise_for_status()
        await resp.read()


def _ratio(a: float, b: float) -> float:
    return round(a / max(b, 1e-6), 3)


async def bench_backend(
    bot: Path, url: str, models: Path, args: argparse.Namespace, label: str
) -> dict[str, Any]:
    """Measure REST turns and the static baseline against one database.

    Throughput is measured with every conversation sending its next message
    as soon as the last one is answered (saturation); latency with each
    conversation pausing ``think_ms`` between messages, as people do.
    """
    n, rounds, think = args.conversations, args.rounds, args.think_ms / 1000
    async with serve(bot, url, models) as base:
        await _load(base, 5, 1, f"{label} warm-up", _turn)
        static_sat = await _load(base, n, rounds, f"{label} baseline saturation", _static)
        turns_sat = await _load(base, n, rounds, f"{label} turns saturation", _turn)
        static_lat = await _load(base, n, 1, f"{label} baseline latency", _static, think)
        turns_lat = await _load(base, n, 1, f"{label} turns latency", _turn, think)
    return {
        "saturation": {"turns": turns_sat, "baseline_static_route": static_sat},
        "latency_with_think_time": {
            "think_ms": args.think_ms,
            "turns": turns_lat,
            "baseline_static_route": static_lat,
        },
        "turns_per_s": turns_sat["per_s"],
        "turn_p50_ms": turns_lat["p50_ms"],
        "turn_p99_ms": turns_lat["p99_ms"],
        "turns_per_s_ratio_to_baseline": _ratio(turns_sat["per_s"], static_sat["per_s"]),
        "p50_ratio_to_baseline": _ratio(turns_lat["p50_ms"], static_lat["p50_ms"]),
        "p99_ratio_to_baseline": _ratio(turns_lat["p99_ms"], static_lat["p99_ms"]),
    }


def bench_nlu(bot: Path, models: Path, repeats: int) -> dict[str, Any]:
    """Measure the embedded NLU's parse latency, with the encoder alone as baseline."""
    from bot.dialogue.project import load_project
    from bot.nlu.embedded import EmbeddedNLU
    from bot.nlu.encoder import prepare_encoder

    project = load_project(bot, lambda _: True)
    encoder_dir = prepare_encoder(models / "minilm-int8")
    nlu = EmbeddedNLU.train(project.nlu_files, encoder_dir, cache_dir=models / "nlu")
    parse_ms: list[float] = []
    encode_ms: list[float] = []
    for _ in tqdm(range(repeats), desc="nlu", file=sys.stderr, leave=False):
        for text in SCRIPT:
            started = time.perf_counter()
            nlu.encoder.encode([text])
            encode_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            nlu.parse_sync(text)
            parse_ms.append((time.perf_counter() - started) * 1000)
    nlu.close()
    return {
        "parse_p50_ms": round(statistics.median(parse_ms), 3),
        "parse_p99_ms": round(percentile(parse_ms, 99), 3),
        "baseline_encode_p50_ms": round(statistics.median(encode_ms), 3),
        "parse_to_encode_ratio": round(
            statistics.median(parse_ms) / statistics.median(encode_ms), 2
        ),
    }


@contextlib.asynccontextmanager
async def pg_database(admin_url: str) -> AsyncIterator[str]:
    """Create a throw-away PostgreSQL database and yield its SQLAlchemy URL."""
    import asyncpg

    name = f"helpline_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def _dialogue(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "concurrent_conversations": args.conversations,
        "script": list(SCRIPT),
        "nlu": await asyncio.to_thread(bench_nlu, args.bot, args.models, args.nlu_repeats),
    }
    with tempfile.TemporaryDirectory(prefix="helpline-bench-db-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        report["sqlite"] = await bench_backend(args.bot, url, args.models, args, "sqlite")
    if not args.no_postgres:
        async with pg_database(args.pg_admin_url) as url:
            report["postgresql"] = await bench_backend(
                args.bot, url, args.models, args, "postgresql"
            )
    return report


def register(subparsers: Any) -> None:
    """Add ``bench dialogue``."""
    bench = subparsers.add_parser("bench", help="benchmarks that print JSON")
    sub = bench.add_subparsers(dest="bench_verb", metavar="SUBVERB", required=True)
    dialogue = sub.add_parser("dialogue", help="NLU latency, REST turn latency and turns/s")
    dialogue.add_argument("--bot", type=Path, default=Path("flows"), help="bot project folder")
    dialogue.add_argument("--models", type=Path, default=Path("var/models"), help="model cache")
    dialogue.add_argument("--conversations", type=int, default=50, help="concurrent conversations")
    dialogue.add_argument(
        "--rounds", type=int, default=4, help="script repetitions per conversation"
    )
    dialogue.add_argument(
        "--think-ms", type=float, default=500, help="pause between messages in the latency run"
    )
    dialogue.add_argument("--nlu-repeats", type=int, default=100, help="NLU parse repetitions")
    dialogue.add_argument(
        "--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL to create a DB in"
    )
    dialogue.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    dialogue.add_argument("--json", action="store_true", help="print JSON (the default)")
    dialogue.set_defaults(handler=_run)
    try:
        llm_bench = importlib.import_module("llm.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "llm.bench":
            raise
    else:
        llm_bench.register(sub)
    importlib.import_module("bot.bench_widget").register(sub)
    importlib.import_module("bot.bench_load").register(sub)


def _run(args: argparse.Namespace) -> int:
    report = asyncio.run(_dialogue(args))
    print(json.dumps(report, indent=2))
    return 0
