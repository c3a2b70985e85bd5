"""``helpline bench widget``: flow turns over the widget's WebSocket, end to end.

The server runs as ``bench dialogue`` runs it (:func:`bot.bench.serve`, a
``helpline run`` child with the default bot). N visitors open a socket each
and play pure flow turns (button payloads, no NLU and no model): the latency
of a turn is from sending the message to the frame of its last reply. How
many replies a turn has is read first from the REST channel, which answers a
turn in one exchange.

As in ``bench dialogue``, throughput is measured at saturation (each visitor
sends its next message as soon as the last reply came) and latency with each
visitor pausing ``--think-ms`` between messages, as people do (the offered
load is conversations / think time; keep it below the saturation rate). The
baseline, measured in the same run on the same sockets, is a ``ping`` round
trip (the server answers ``pong`` without touching the store). At the
end every visitor reconnects and has its whole history replayed; a reply
stored but never pushed live counts as lost, a reply pushed twice on a socket
as duplicated, and likewise for the acks of the visitor's messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.bench import PG_ADMIN_URL, _ratio, percentile, pg_database, serve

SCRIPT = ("/check_order_status", '/inform{"order_id": "HL-10001"}', "/thank")
REPLY_TIMEOUT_S = 60.0
_UNLIMITED = {"per_second": 1_000_000, "burst": 1_000_000}


@dataclass
class Visitor:
    """One bench conversation: its socket and what it saw."""

    ws: Any
    visitor: str
    out_ids: Counter[int] = field(default_factory=Counter)
    acks: Counter[str] = field(default_factory=Counter)
    sent: list[str] = field(default_factory=list)
    timeouts: int = 0
    secret: str | None = None  # the visitor secret that resumes the conversation


#: One timed operation of a visitor (its ``index``-th): milliseconds, or ``None`` if lost.
Step = Callable[[Visitor, int], Awaitable["float | None"]]


@dataclass
class Run:
    """Latencies and counts of one phase."""

    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Count, rate and percentiles of the phase."""
        n = len(self.latencies_ms)
        return {
            "count": n,
            "per_s": round(n / max(self.elapsed_s, 1e-9), 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 2) if n else None,
            "p99_ms": round(percentile(self.latencies_ms, 99), 2) if n else None,
        }


async def reply_counts(session: Any, base: str, turns: int) -> list[int]:
    """How many replies each turn of the script has, read over REST."""
    sender, counts = f"bench-calibrate-{uuid.uuid4().hex[:8]}", []
    for turn in range(turns):
        body = {"sender": sender, "message": SCRIPT[turn % len(SCRIPT)]}
        async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
            resp.raise_for_status()
            counts.append(len(await resp.json()))
    return counts


async def _open(
    session: Any, base: str, visitor: str, resume: bool = False, secret: str | None = None
) -> Any:
    ws = await session.ws_connect(
        base.replace("http", "ws", 1) + "/widget/ws", headers={"Origin": base}
    )
    hello = {"type": "hello", "visitor": visitor, "last_id": 0, "resume": resume}
    await ws.send_json({**hello, "secret": secret} if secret else hello)
    return ws


async def _greeted(ws: Any) -> str | None:
    """Read up to ``synced``; return the visitor secret the server's hello issued."""
    hello = await _until(ws, "hello")
    await _until(ws, "synced")
    secret = hello.get("secret")
    return secret if isinstance(secret, str) else None


async def _until(ws: Any, kind: str, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read frames up to the first of type ``kind``; keep the others in ``seen``."""
    while True:
        frame: dict[str, Any] = await ws.receive_json()
        if frame["type"] == kind:
            return frame
        if seen is not None:
            seen.append(frame)


async def _echo(v: Visitor, index: int) -> float:
    """One ``ping`` round trip: the baseline."""
    started = time.perf_counter()
    await v.ws.send_json({"type": "ping", "nonce": index})
    await _until(v.ws, "pong")
    return (time.perf_counter() - started) * 1000


async def _turn(v: Visitor, text: str, replies: int) -> float | None:
    """Send one message; return the time to its last reply, or ``None`` on timeout."""
    client_id = uuid.uuid4().hex
    v.sent.append(client_id)
    started = time.perf_counter()
    await v.ws.send_json({"type": "message", "client_id": client_id, "text": text})
    got = 0
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while got < replies or not v.acks[client_id]:
                frame = await v.ws.receive_json()
                if frame["type"] == "ack":
                    v.acks[frame["client_id"]] += 1
                elif frame["type"] == "message" and frame["direction"] == "out":
                    v.out_ids[frame["id"]] += 1
                    got += 1
    except TimeoutError:
        v.timeouts += 1
        return None
    return (time.perf_counter() - started) * 1000


def _flow(counts: list[int], offset: int) -> Step:
    """Turn ``offset + i`` of the script; ``counts`` holds every turn's reply count."""

    async def step(v: Visitor, index: int) -> float | None:
        turn = offset + index
        return await _turn(v, SCRIPT[turn % len(SCRIPT)], counts[turn])

    return step


async def _phase(
    label: str, visitors: list[Visitor], step: Step, rounds: int, think_s: float = 0.0
) -> Run:
    """Every visitor runs ``rounds`` steps, pausing ``think_s`` between them."""
    run = Run()
    bar = tqdm(total=len(visitors) * rounds, desc=label, unit="op", file=sys.stderr, leave=False)

    async def one(position: int, v: Visitor) -> None:
        if think_s:  # spread the first messages over one think time
            await asyncio.sleep(think_s * position / len(visitors))
        for index in range(rounds):
            latency = await step(v, index)
            if latency is not None:
                run.latencies_ms.append(latency)
            bar.update()
            if think_s:
                await asyncio.sleep(think_s)

    started = time.perf_counter()
    await asyncio.gather(*(one(i, v) for i, v in enumerate(visitors)))
    run.elapsed_s = time.perf_counter() - started
    bar.close()
    return run


async def _audit(session: Any, base: str, visitors: list[Visitor]) -> dict[str, int]:
    """Replay every history and compare it with what was delivered live."""
    lost_replies = lost_messages = 0
    for v in visitors:
        ws = await _open(session, base, v.visitor, resume=True, secret=v.secret)
        frames: list[dict[str, Any]] = []
        await _until(ws, "synced", frames)
        await ws.close()
        stored = [f for f in frames if f["type"] == "message"]
        lost_replies += len({f["id"] for f in stored if f["direction"] == "out"} - set(v.out_ids))
        stored_in = Counter(f.get("client_id") for f in stored if f["direction"] == "in")
        lost_messages += sum(1 for c in v.sent if stored_in[c] != 1 or v.acks[c] != 1)
    return {
        "lost_replies": lost_replies,
        "duplicated_replies": sum(n - 1 for v in visitors for n in v.out_ids.values()),
        "lost_or_duplicated_messages": lost_messages,
        "duplicated_acks": sum(n - 1 for v in visitors for n in v.acks.values() if n > 1),
        "timeouts": sum(v.timeouts for v in visitors),
    }


@contextlib.asynccontextmanager
async def _visitors(session: Any, base: str, n: int) -> AsyncIterator[list[Visitor]]:
    names = [f"bench-{uuid.uuid4().hex[:8]}-{i:05d}" for i in range(n)]
    sockets = await asyncio.gather(*(_open(session, base, name) for name in names))
    visitors = [Visitor(ws, name) for ws, name in zip(sockets, names, strict=True)]
    try:
        secrets = await asyncio.gather(*(_greeted(v.ws) for v in visitors))
        for v, secret in zip(visitors, secrets, strict=True):
            v.secret = secret
        yield visitors
    finally:
        await asyncio.gather(*(v.ws.close() for v in visitors))


async def bench_storage(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the baseline and the flow turns against one database."""
    import aiohttp

    extra = {
        "llm": {"enabled": False},
        "connectors": {
            "widget": {"visitor_rate": _UNLIMITED, "ip_rate": _UNLIMITED, "history_limit": 100_000}
        },
    }
    n, turns, think = args.conversations, args.turns, args.think_ms / 1000
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        serve(args.bot, url, args.models, extra) as base,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        counts = await reply_counts(session, base, 2 * turns)
        async with _visitors(session, base, n) as visitors:
            echo_sat = await _phase("echo saturation", visitors, _echo, turns)
            flow_sat = await _phase("turns saturation", visitors, _flow(counts, 0), turns)
            echo_lat = await _phase("echo latency", visitors, _echo, turns, think)
            flow_lat = await _phase("turns latency", visitors, _flow(counts, turns), turns, think)
        audit = await _audit(session, base, visitors)
    report = _summary(counts, n, args.think_ms, (flow_sat, echo_sat), (flow_lat, echo_lat))
    return {**report, **audit}


def _summary(
    counts: list[int],
    n: int,
    think_ms: float,
    saturated: tuple[Run, Run],
    thinking: tuple[Run, Run],
) -> dict[str, Any]:
    """The report of one storage: both phases, and the headline figures and ratios."""
    turns = len(counts) // 2
    saturation = _pair(*saturated)
    saturation["messages_per_s"] = round(
        n * (turns + sum(counts[:turns])) / max(saturated[0].elapsed_s, 1e-9), 1
    )  # each turn: one message in, its replies out
    latency = {"think_ms": think_ms, **_pair(*thinking)}
    return {
        "replies_per_turn": counts,
        "saturation": saturation,
        "latency_with_think_time": latency,
        "turns_per_s": saturation["flow_turn"]["per_s"],
        "messages_per_s": saturation["messages_per_s"],
        "turn_p50_ms": latency["flow_turn"]["p50_ms"],
        "turn_p99_ms": latency["flow_turn"]["p99_ms"],
        "turns_per_s_ratio_to_baseline": saturation["per_s_ratio_to_baseline"],
        "p50_ratio_to_baseline": latency["p50_ratio_to_baseline"],
        "p99_ratio_to_baseline": latency["p99_ratio_to_baseline"],
    }


def _pair(flow: Run, baseline: Run) -> dict[str, Any]:
    """The flow turns and the echo baseline of one phase, with their ratios."""
    turn, echo = flow.summary(), baseline.summary()
    return {
        "flow_turn": turn,
        "baseline_ws_echo": echo,
        "per_s_ratio_to_baseline": _ratio(turn["per_s"], echo["per_s"]),
        "p50_ratio_to_baseline": _ratio(turn["p50_ms"] or 0.0, echo["p50_ms"] or 0.0),
        "p99_ratio_to_baseline": _ratio(turn["p99_ms"] or 0.0, echo["p99_ms"] or 0.0),
    }


async def _widget(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "concurrent_conversations": args.conversations,
        "turns_per_conversation": args.turns,
        "script": list(SCRIPT),
    }
    with tempfile.TemporaryDirectory(prefix="helpline-bench-widget-") as tmp:
        report["sqlite"] = await bench_storage(f"sqlite+aiosqlite:///{tmp}/bench.db", args)
    if args.postgres:
        async with pg_database(args.pg_admin_url) as url:
            report["postgresql"] = await bench_storage(url, args)
    return report


def register(subparsers: Any) -> None:
    """Add ``bench widget`` to the ``bench`` verb's subparsers."""
    parser = subparsers.add_parser("widget", help="widget WebSocket flow-turn latency (JSON)")
    add = parser.add_argument
    add("--bot", type=Path, default=Path("flows"), help="bot project folder")
    add("--models", type=Path, default=Path("var/models"), help="model cache")
    add("--conversations", type=int, default=200, help="concurrent WebSocket conversations")
    add("--turns", type=int, default=6, help="flow turns per conversation and phase")
    add("--think-ms", type=float, default=4000, help="pause between turns in the latency run")
    add("--postgres", action="store_true", help="also run on a throw-away PostgreSQL database")
    add("--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL to create a DB in")
    add("--json", action="store_true", help="print JSON (the default)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    report = asyncio.run(_widget(args))
    print(json.dumps(report, indent=2))
    return 0
