"""Prompts and child processes of ``helpline bench llm``.

Every engine runs in a child process (its own venv's Python for the peers)
that prints one JSON line, so each engine's peak RSS is its own and a crash
or a missing peer only marks that row unavailable.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llm.bench_measure import Workload

_LOGGER = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PEER_VENVS = {"llama": ROOT / ".venv-bench-llama", "genai": ROOT / ".venv-genai"}
SYSTEM = "You are Helpline, the support assistant of an online shop. Answer from the passages."
PASSAGE = (
    "Passage {n}: Orders ship within {d} business days. Refunds go back to the original "
    "payment method within {r} days of the return reaching our warehouse. Customers can "
    "track a parcel from the order page, change the address until it ships, and reach a "
    "person by chat from 9:00 to 17:00 on weekdays."
)
QUESTION = "My order HL-10001 has not arrived yet. Where is it and can I still get a refund?"


class ChildError(RuntimeError):
    """A child process failed; the message says why in one line or a short tail."""


def _fit(ids: list[int], count: int, filler: int) -> list[int]:
    """Cut or pad ``ids`` to ``count`` tokens, keeping the assistant header at the end."""
    tail = ids[-min(8, count // 2) :] if count > 1 else []
    head = ids[: len(ids) - len(tail)]
    need = count - len(tail)
    head = head[:need] if len(head) >= need else head + [filler] * (need - len(head))
    return head + tail


def build_prompts(gguf: Path, prompt_tokens: int, short_tokens: int) -> tuple[list[int], list[int]]:
    """Chat-templated support prompts of exactly the asked lengths, as token ids.

    The long prompt is a system message, knowledge-base passages and a
    question; the short one is a bare question. Both are cut or padded in
    their middle so that their end is the assistant turn's header.
    """
    from transformers import AutoTokenizer

    from llm.bench_engines import hf_location

    folder, kwargs = hf_location(gguf)
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)

    def encode(messages: list[dict[str, str]]) -> list[int]:
        return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))

    passages: list[str] = []
    ids = encode([{"role": "user", "content": QUESTION}])
    while len(ids) < prompt_tokens:
        n = len(passages) + 1
        passages.append(PASSAGE.format(n=n, d=1 + n % 5, r=7 + n % 9))
        system = SYSTEM + "\n\n" + "\n".join(passages)
        ids = encode([{"role": "system", "content": system}, {"role": "user", "content": QUESTION}])
    short = encode([{"role": "user", "content": "What is the capital of France?"}])
    filler = int(tokenizer.encode(" please", add_special_tokens=False)[0])
    return _fit(ids, prompt_tokens, filler), _fit(short, short_tokens, filler)


def _tail(text: str, lines: int = 6) -> str:
    """The last few non-empty lines of a child's stderr, for the report."""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-800:]


def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child that prints a JSON object on its last stdout line.

    Raises:
        ChildError: it failed, timed out or printed no JSON.
    """
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    _LOGGER.info("Running %s.", " ".join(cmd))
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildError(f"timed out after {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise ChildError(f"exit code {done.returncode}: {_tail(done.stderr)}")
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ChildError(f"no JSON on stdout: {_tail(done.stderr)}")


def run_engine(
    engine: str, work: Workload, work_dir: Path, timeout: float, peer: str | None = None
) -> dict[str, Any]:
    """Run one engine on ``work`` in a child process and return its figures.

    Args:
        engine: the engine name of :mod:`llm.bench_engines` or :mod:`llm.bench_peers`.
        work: the workload.
        work_dir: where the workload file is written.
        timeout: seconds before the child is killed.
        peer: the peer venv's key in :data:`PEER_VENVS`, for a peer engine.

    Raises:
        ChildError: the child failed, or the peer venv is missing.
    """
    path = work_dir / f"workload-{engine}-{os.getpid()}.json"
    work.dump(path)
    if peer is None:
        return run_child([sys.executable, "-m", "llm.bench_engines", engine, str(path)], timeout)
    python = PEER_VENVS[peer] / "bin" / "python"
    if not (PEER_VENVS[peer] / ".ok").is_file():
        raise ChildError(f"no {PEER_VENVS[peer].name}; run scripts/setup-bench-peers.sh {peer}")
    return run_child([str(python), "-m", "llm.bench_peers", engine, str(path)], timeout)
