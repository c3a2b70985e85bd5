"""``helpline bench load``: N ``helpline run`` replicas under widget and Slack traffic.

N replicas (:func:`bot.bench.serve_process`) share one throw-away PostgreSQL
database (:func:`bot.bench.pg_database`) and the local Redis (a key prefix of
their own). Widget visitor ``i`` holds a WebSocket to replica ``i % N`` and
plays the flow script of ``bench widget``; Slack user ``j`` POSTs signed
Events API events to replica ``j % N`` and gets its replies through a local
Slack Web API (:mod:`bot.bench_slack`). Every conversation sends its next
message as soon as the last reply came (saturation) for ``--duration``
seconds. The baseline, measured in the same run on the same sockets, is the
widget's ``ping``/``pong``. The ``mixed`` run adds open-ended questions that
the embedded local model answers, each in a conversation of its own, on
``--llm-share`` of the conversations. At the end every widget history is
replayed and every Slack conversation read back from the database: nothing
acked may be lost, nothing delivered twice. :mod:`bot.bench_sample` says
where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm

from bot.bench import PG_ADMIN_URL, _ratio, pg_database, serve_process
from bot.bench_sample import Sampler, bottleneck
from bot.bench_slack import LocalSlack, SlackUser, local_slack, new_user, slack_section, slack_turn
from bot.bench_widget import (
    _UNLIMITED,
    SCRIPT,
    Run,
    Visitor,
    _audit,
    _echo,
    _greeted,
    _open,
    _turn,
    reply_counts,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
QUESTIONS = (
    "How long does international shipping to Canada usually take?",
    "Can I return a jacket I already wore once?",
    "How should I wash a merino wool sweater?",
)
#: One turn of a conversation loop: its latency in ms, or ``None`` if lost.
Turn = Callable[[int], Awaitable["float | None"]]


def _reply_count(counts: list[int], turn: int) -> int:
    """Replies of script turn ``turn``; from the second pass on the script repeats."""
    size = len(SCRIPT)
    return counts[turn] if turn < len(counts) else counts[size + (turn - size) % size]


async def _loop(
    turn: Turn, deadline: float, run: Run, bar: tqdm[Any], interval_s: float = 0.0
) -> None:
    """Run ``turn`` until ``deadline``: back to back, or one every ``interval_s``.

    Paced turns start on a schedule (from a random phase, so loops do not
    fire together); a turn that runs past its slot delays the next one.
    """
    index = 0
    start = time.perf_counter() + random.uniform(0, interval_s)  # not cryptographic
    while time.perf_counter() < deadline:
        if interval_s:
            await asyncio.sleep(max(0.0, start + index * interval_s - time.perf_counter()))
            if time.perf_counter() >= deadline:
                break
        latency = await turn(index)
        if latency is not None:
            run.latencies_ms.append(latency)
        bar.update()
        index += 1


async def _timed(label: str, seconds: float, loops: list[Callable[[float, Run, Any], Any]]) -> Run:
    """Run every loop for ``seconds``; one :class:`Run` gathers their latencies."""
    run = Run()
    bar = tqdm(desc=label, unit="turn", file=sys.stderr, leave=False)
    started = time.perf_counter()
    await asyncio.gather(*(loop(started + seconds, run, bar) for loop in loops))
    run.elapsed_s = time.perf_counter() - started
    bar.close()
    return run


class Load:
    """The conversations of one bench run and what they need."""

    def __init__(self, session: Any, bases: list[str], slack: LocalSlack, counts: list[int]):
        self.session, self.bases, self.slack, self.counts = session, bases, slack, counts
        self.visitors: list[Visitor] = []
        self.slack_users: list[SlackUser] = []
        self.slack_expected: dict[str, int] = {}
        self.turn_offset: dict[int, int] = {}
        self.question_replies: list[int] = []
        self.llm_run = Run()
        self.interval_s = 0.0  # 0: each loop sends back to back; else its pace

    async def open_visitors(self, n: int) -> None:
        """Open ``n`` widget visitors, visitor ``i`` on replica ``i % N``."""
        names = [f"bench-{uuid.uuid4().hex[:8]}-{i:05d}" for i in range(n)]
        bases = [self.bases[i % len(self.bases)] for i in range(n)]
        pairs = zip(bases, names, strict=True)
        sockets = await asyncio.gather(*(_open(self.session, b, v) for b, v in pairs))
        secrets = await asyncio.gather(*(_greeted(ws) for ws in sockets))
        self.visitors = [
            Visitor(ws, name, secret=secret)
            for ws, name, secret in zip(sockets, names, secrets, strict=True)
        ]

    def widget_loop(self, v: Visitor) -> Callable[[float, Run, Any], Any]:
        """The flow-turn loop of visitor ``v`` (it goes on where its last run stopped)."""

        async def turn(_: int) -> float | None:
            t = self.turn_offset.get(id(v), 0)
            self.turn_offset[id(v)] = t + 1
            return await _turn(v, SCRIPT[t % len(SCRIPT)], _reply_count(self.counts, t))

        return lambda deadline, run, bar: _loop(turn, deadline, run, bar, self.interval_s)

    def echo_loop(self, v: Visitor) -> Callable[[float, Run, Any], Any]:
        """The ping/pong baseline loop of visitor ``v``."""
        return lambda deadline, run, bar: _loop(lambda i: _echo(v, i), deadline, run, bar)

    def slack_loop(self, index: int) -> Callable[[float, Run, Any], Any]:
        """The flow-turn loop of a new Slack user posting to replica ``index % N``."""
        user = new_user(index)
        self.slack_users.append(user)
        base = self.bases[index % len(self.bases)]

        async def turn(t: int) -> float | None:
            replies = _reply_count(self.counts, t)
            self.slack_expected[user.channel] = self.slack_expected.get(user.channel, 0) + replies
            text = SCRIPT[t % len(SCRIPT)]
            return await slack_turn(self.session, base, self.slack, user, text, replies)

        return lambda deadline, run, bar: _loop(turn, deadline, run, bar, self.interval_s)

    def question_loop(self, index: int) -> Callable[[float, Run, Any], Any]:
        """Open-ended questions, each from a new visitor on replica ``index % N``."""
        base = self.bases[index % len(self.bases)]

        async def turn(t: int) -> float | None:
            name = f"bench-llm-{uuid.uuid4().hex[:8]}-{index:04d}"
            ws = await _open(self.session, base, name)
            v = Visitor(ws, name, secret=await _greeted(ws))
            self.visitors.append(v)
            q = t % len(QUESTIONS)
            try:
                return await _turn(v, QUESTIONS[q], self.question_replies[q])
            finally:
                await ws.close()

        # Its own Run: the flow figures stay flow-only.
        return lambda deadline, run, bar: _loop(turn, deadline, self.llm_run, bar)


def _replica_settings(api_url: str, redis_url: str | None, llm: bool) -> dict[str, Any]:
    """The config sections every replica gets on top of ``bench.serve``'s."""
    widget = {"visitor_rate": _UNLIMITED, "ip_rate": _UNLIMITED, "history_limit": 100_000}
    extra: dict[str, Any] = {
        "connectors": {
            "rest": {"enabled": True, "sender_rate": _UNLIMITED, "ip_rate": _UNLIMITED},
            "widget": widget,
            "slack": slack_section(api_url),
        },
        "llm": {"local": {"max_new_tokens": 48, "max_wait_s": 30}} if llm else {"enabled": False},
    }
    if redis_url is not None:
        extra["redis"] = {"url": redis_url, "key_prefix": f"bench-{uuid.uuid4().hex[:10]}"}
    return extra


async def _measured(
    label: str, args: argparse.Namespace, loops: list[Any], sampler_args: dict[str, Any]
) -> dict[str, Any]:
    """One saturated run of ``loops`` with the resources sampled alongside."""
    me = psutil.Process()
    client_start = sum(me.cpu_times()[:2])
    async with Sampler(**sampler_args) as sampler:
        run = await _timed(label, args.duration, loops)
    client_cpu = (sum(me.cpu_times()[:2]) - client_start) / max(sampler.elapsed_s, 1e-9)
    resources = sampler.report()
    resources["load_client_cpu_cores"] = round(client_cpu, 3)
    turns = max(len(run.latencies_ms), 1)  # the stats lag up to a second: an estimate
    resources["postgres_commits_per_turn"] = round(resources["postgres_commits"] / turns, 2)
    return {"turns": run.summary(), "resources": resources, "run": run, "client": client_cpu}


async def _paced(
    args: argparse.Namespace, load: Load, loops: list[Any], saturated_per_s: float
) -> dict[str, Any]:
    """Latency below saturation: the same loops offering a share of the measured rate."""
    offered = max(saturated_per_s * args.paced_share, 1.0)
    load.interval_s = len(loops) / offered
    try:
        run = await _timed(f"paced flow turns ({offered:.0f}/s)", args.duration, loops)
    finally:
        load.interval_s = 0.0
    return {
        "offered_per_s": round(offered, 1),
        "share_of_saturated": args.paced_share,
        **run.summary(),
    }


def _figures(flow: Run, echo: Run) -> dict[str, Any]:
    """Headline throughput and latency, with their ratios to the echo baseline."""
    turn, base = flow.summary(), echo.summary()
    return {
        "turns_per_s": turn["per_s"],
        "turn_p50_ms": turn["p50_ms"],
        "turn_p99_ms": turn["p99_ms"],
        "baseline_ws_echo": base,
        "turns_per_s_ratio_to_baseline": _ratio(turn["per_s"], base["per_s"]),
        "p50_ratio_to_baseline": _ratio(turn["p50_ms"] or 0.0, base["p50_ms"] or 0.0),
        "p99_ratio_to_baseline": _ratio(turn["p99_ms"] or 0.0, base["p99_ms"] or 0.0),
    }


async def _one_setup(args: argparse.Namespace, llm: bool) -> dict[str, Any]:
    """Start the replicas for one run (flow-only or mixed) and measure it."""
    import aiohttp

    redis_url = None if args.no_redis else args.redis_url
    n_slack = round(args.conversations * args.slack_share)
    n_widget = args.conversations - n_slack
    n_llm = max(1, round(args.conversations * args.llm_share)) if llm else 0
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(pg_database(args.pg_admin_url))
        slack, api_url = await stack.enter_async_context(local_slack())
        extra = _replica_settings(api_url, redis_url, llm)
        procs = [
            await stack.enter_async_context(serve_process(args.bot, url, args.models, extra))
            for _ in range(args.replicas)
        ]
        bases = [base for base, _ in procs]
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        counts = await reply_counts(session, bases[0], 2 * len(SCRIPT))
        load = Load(session, bases, slack, counts)
        if llm:
            load.question_replies = await _question_replies(session, bases[0])
        await load.open_visitors(n_widget)
        sampler_args = {
            "replica_pids": [proc.pid for _, proc in procs],
            "admin_dsn": args.pg_admin_url,
            "database": url.rsplit("/", 1)[1],
            "redis_url": redis_url,
        }
        await _timed("warm-up", min(1.0, args.duration), [load.echo_loop(v) for v in load.visitors])
        echo = await _timed(
            "baseline ws echo", args.duration, [load.echo_loop(v) for v in load.visitors]
        )
        loops = [load.widget_loop(v) for v in load.visitors]
        loops += [load.slack_loop(j) for j in range(n_slack)]
        loops += [load.question_loop(k) for k in range(n_llm)]
        label = "mixed flow + local LLM" if llm else "flow turns"
        result = await _measured(label, args, loops, sampler_args)
        paced = None
        if not llm and args.paced_share > 0:
            paced = await _paced(args, load, loops, result["run"].summary()["per_s"])
        widget_audit = await _audit(session, bases[-1], load.visitors)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        from bot.bench_slack import slack_audit

        slack_audit_ = await slack_audit(dsn, slack, load.slack_users, load.slack_expected)
        sent = {
            "widget": sum(len(v.sent) for v in load.visitors),
            "slack": sum(u.sent for u in load.slack_users),
        }
        for v in load.visitors:
            await v.ws.close()
    lost = sum(widget_audit.values()) + sum(slack_audit_.values())
    return {
        "conversations": {"widget": n_widget, "slack": n_slack, "llm_question_loops": n_llm},
        "replies_per_turn": counts,
        **_figures(result["run"], echo),
        "turns": result["turns"],
        **({"paced": paced} if paced is not None else {}),
        "messages_sent": sent,
        **({"llm_turns": _llm_summary(load.llm_run, result)} if llm else {}),
        "audit": {"widget": widget_audit, "slack": slack_audit_, "lost_total": lost},
        "resources": result["resources"],
        "bottleneck": bottleneck(result["resources"], result["client"]),
    }


def _llm_summary(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """The open-ended turns of the mixed run, and their share of all turns."""
    run.elapsed_s = result["run"].elapsed_s
    summary = run.summary()
    flow_turns = result["turns"]["count"]
    summary["share_of_turns"] = round(summary["count"] / max(summary["count"] + flow_turns, 1), 4)
    return summary


async def _question_replies(session: Any, base: str) -> list[int]:
    """How many replies each open-ended question has (each asked once over REST)."""
    counts = []
    for question in QUESTIONS:
        body = {"sender": f"bench-llm-cal-{uuid.uuid4().hex[:8]}", "message": question}
        async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
            resp.raise_for_status()
            counts.append(len(await resp.json()))
    return counts


def _check(args: argparse.Namespace) -> None:
    """Refuse arguments the bench cannot run with, saying which."""
    if args.replicas < 1:
        raise SystemExit("error: --replicas must be at least 1")
    if args.conversations < 1:
        raise SystemExit("error: --conversations must be at least 1")
    if args.duration <= 0:
        raise SystemExit("error: --duration must be positive")
    if not 0 <= args.slack_share < 1 or not 0 <= args.llm_share < 1:
        raise SystemExit("error: --slack-share and --llm-share must be in [0, 1)")
    if not 0 <= args.paced_share < 1:
        raise SystemExit("error: --paced-share must be in [0, 1)")
    if args.no_redis and args.replicas > 1:
        raise SystemExit("error: several replicas need Redis (drop --no-redis)")


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    """Both runs, and the report."""
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "replicas": args.replicas,
        "conversations": args.conversations,
        "duration_s": args.duration,
        "storage": "postgresql",
        "redis": not args.no_redis,
        "script": list(SCRIPT),
        "targets": {"flow_turns_per_s": 500, "turn_p99_ms": 100, "asserted": False},
    }
    report["flow"] = await _one_setup(args, llm=False)
    if args.llm_share > 0:
        report["mixed"] = await _one_setup(args, llm=True)
        report["mixed"]["llm_questions"] = list(QUESTIONS)
    flow = report["flow"]
    report.update(
        turns_per_s=flow["turns_per_s"],
        turn_p50_ms=flow["turn_p50_ms"],
        turn_p99_ms=flow["turn_p99_ms"],
        lost=sum(report[k]["audit"]["lost_total"] for k in ("flow", "mixed") if k in report),
        bottleneck=flow["bottleneck"],
    )
    return report


def register(subparsers: Any) -> None:
    """Add ``bench load`` to the ``bench`` verb's subparsers."""
    parser = subparsers.add_parser("load", help="N replicas under widget + Slack load (JSON)")
    add = parser.add_argument
    add("--bot", type=Path, default=Path("flows"), help="bot project folder")
    add("--models", type=Path, default=Path("var/models"), help="model cache")
    add("--replicas", type=int, default=2, help="helpline run replicas")
    add("--conversations", type=int, default=100, help="concurrent conversations in all")
    add("--duration", type=float, default=20.0, help="seconds each measured run lasts")
    add("--slack-share", type=float, default=0.25, help="share of conversations on Slack")
    add("--llm-share", type=float, default=0.05, help="share on local-LLM questions (0: skip)")
    add(
        "--paced-share",
        type=float,
        default=0.5,
        help="then offer this share of the flow turns/s, for p50/p99 below saturation (0: skip)",
    )
    add("--redis-url", default=REDIS_URL, help="Redis the replicas share")
    add("--no-redis", action="store_true", help="one replica without Redis")
    add("--pg-admin-url", default=PG_ADMIN_URL, help="PostgreSQL to create a DB in")
    add("--json", action="store_true", help="print JSON (the default)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """Check the arguments, run the bench, print its JSON."""
    _check(args)
    report = asyncio.run(_bench(args))
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 else 1
