"""Real ``helpline serve-model`` processes for the worker and pool tests.

Each worker serves the embedded SmolLM2 that ``make setup`` prepared under
``var/models`` with one thread and ``max_queue: 1``, so two requests fill it: one
generating, one waiting. :func:`saturate` does exactly that and waits until the
worker's ``/healthz`` shows it full.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import clean_env, free_port, serve

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "var" / "models"
HELPLINE = str(Path(sys.executable).with_name("helpline"))
WORKER_CONFIG = """\
models:
  cache_dir: {models}
logging:
  level: INFO
  json: false
llm:
  local: {{max_queue: 1, max_wait_s: 120, threads: 1, max_new_tokens: 16}}
  api: {{max_tokens: 4000}}
"""
# Sampled at temperature 2 the model almost never ends an answer by itself: with
# this seed it writes on until the client goes away.
LONG = {"max_tokens": 4000, "temperature": 2.0, "seed": 7}
QUESTION = [{"role": "user", "content": "Write a long story about a dragon."}]


@dataclass
class WorkerProcess:
    """A started worker: its base URL (``.../v1``), root URL and process."""

    url: str
    root: str
    proc: Any
    log: Path


@contextlib.contextmanager
def start_worker(folder: Path, config: str | None = None) -> Iterator[WorkerProcess]:
    """Run ``helpline serve-model`` on a free port until the block ends."""
    if not (MODELS / "llm").is_dir():
        pytest.skip("the embedded model is not prepared (run make setup)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "worker.yml"
    path.write_text(config or WORKER_CONFIG.format(models=MODELS))
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    cmd = [HELPLINE, "serve-model", "--config", str(path), "--port", str(port)]
    log = folder / "worker.log"
    with serve(
        cmd, cwd=folder, env=clean_env(), health_url=f"{root}/healthz", log_path=log, limit_s=120
    ) as proc:
        yield WorkerProcess(f"{root}/v1", root, proc, log)


async def health(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's ``/healthz`` body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{worker.root}/healthz") as resp,
    ):
        data: dict[str, Any] = await resp.json()
        return data


async def wait_health(worker: WorkerProcess, key: str, value: object) -> dict[str, Any]:
    """Poll ``/healthz`` until ``key`` has ``value`` (a hang ends with the test's timeout)."""
    while True:
        data = await health(worker)
        if data.get(key) == value:
            return data
        await asyncio.sleep(0.05)


def chat_body(**extra: Any) -> dict[str, Any]:
    """A streamed chat request for the worker."""
    return {"messages": QUESTION, "stream": True, **extra}


@contextlib.asynccontextmanager
async def saturate(worker: WorkerProcess) -> AsyncIterator[None]:
    """Fill the worker (one long answer generating, one short one queued) for the block.

    Afterwards the long answer is dropped (which stops it), the queued one runs and
    the block waits until the worker is idle again.
    """
    async with aiohttp.ClientSession() as session:
        url = f"{worker.url}/chat/completions"
        running = await session.post(url, json=chat_body(**LONG))
        assert running.status == 200  # Headers come with the first token: it generates.
        queued = asyncio.create_task(_read_all(session, url, chat_body(max_tokens=2)))
        try:
            await wait_health(worker, "queue_depth", 1)
            yield
        finally:
            running.close()
            await queued
            await wait_health(worker, "in_flight", 0)


async def _read_all(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> str:
    async with session.post(url, json=body) as resp:
        return await resp.text()


def sse_payloads(text: str) -> list[Any]:
    """The JSON payloads of an SSE body (``[DONE]`` as the string)."""
    out: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            out.append(data if data == "[DONE]" else json.loads(data))
    return out
