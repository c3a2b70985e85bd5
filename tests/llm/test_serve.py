"""``helpline serve-model`` as a real process: its endpoints, load headers and SIGTERM drain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.cli import build_parser
from llm.pool import CAPACITY_HEADER, LOAD_HEADER
from tests.llm.workers import (
    HELPLINE,
    WorkerProcess,
    chat_body,
    health,
    sse_payloads,
    start_worker,
    wait_health,
)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    with start_worker(tmp_path_factory.mktemp("serve")) as started:
        yield started


async def test_health_models_and_metrics(worker: WorkerProcess) -> None:
    assert await health(worker) == {
        "status": "ready",
        "model": "helpline-local",
        "queue_depth": 0,
        "busy": False,
        "in_flight": 0,
        "capacity": 2,
    }
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{worker.url}/models") as resp:
            models = await resp.json()
        body = chat_body(max_tokens=4, logprobs=True, stream_options={"include_usage": True})
        async with session.post(f"{worker.url}/chat/completions", json=body) as resp:
            assert resp.status == 200
            assert resp.headers[LOAD_HEADER] == "1"  # this request, generating
            assert resp.headers[CAPACITY_HEADER] == "2"
            events = sse_payloads(await resp.text())
        async with session.get(f"{worker.root}/metrics") as resp:
            exposition = await resp.text()
    assert [m["id"] for m in models["data"]] == ["helpline-local"]
    assert events[-1] == "[DONE]"
    usage = events[-2]["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["prompt_tokens"] > 0
    assert all(e["choices"][0]["logprobs"]["content"] for e in events[1:5])
    assert 'helpline_model_server_requests_total{status="200"}' in exposition
    assert "helpline_model_server_queue_depth 0.0" in exposition


async def test_sigterm_finishes_in_flight_and_refuses_new(tmp_path: Path) -> None:
    with start_worker(tmp_path) as doomed:
        url = f"{doomed.url}/chat/completions"
        # Sampled at temperature 2 it writes all 400 tokens: seconds of work in flight.
        long = chat_body(max_tokens=400, temperature=2.0, seed=7)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=long) as running:
                assert running.status == 200
                os.killpg(doomed.proc.pid, signal.SIGTERM)
                state = await wait_health(doomed, "status", "draining")
                assert state["in_flight"] == 1
                async with session.post(url, json=chat_body(max_tokens=2)) as refused:
                    assert refused.status == 503
                    assert refused.headers["Retry-After"] == "2"
                    error = (await refused.json())["error"]
                events = sse_payloads(await running.text())
        code = await asyncio.to_thread(doomed.proc.wait, 60)
    assert error["code"] == "model_busy"
    assert "draining" in error["message"]
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert code == 0
    log = doomed.log.read_text()
    assert "Draining: 1 request(s) in flight." in log
    assert "The model worker stopped." in log


def test_a_bad_worker_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "worker.yml"
    config.write_text("llm:\n  local:\n    max_queue: 0\n")
    result = subprocess.run(
        [HELPLINE, "serve-model", "--config", str(config), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"{config}:3: llm.local.max_queue:" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["serve-model", "--config", "w.yml", "--port", "9"],
        ["--config", "w.yml", "serve-model", "--port", "9"],
    ],
)
def test_config_may_come_before_or_after_the_verb(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.verb, args.config, args.host, args.port) == (
        "serve-model",
        "w.yml",
        "127.0.0.1",
        9,
    )
