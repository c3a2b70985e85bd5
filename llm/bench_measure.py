"""Timing core shared by every engine of ``helpline bench llm``.

This module imports only the standard library: the peer drivers run it in
their own venvs (llama-cpp-python, onnxruntime-genai), where the platform's
packages are absent. Every engine is measured the same way, as a pair of
callables: ``prefill(ids) -> first token`` and ``decode(token) -> next token``
(greedy, with the engine's KV cache), so the figures compare like with like.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

Prefill = Callable[[list[int]], int]
Decode = Callable[[int], int]
Reset = Callable[[], None]
Run = Callable[[list[int], int], tuple[float, float]]


@dataclass
class Workload:
    """What every engine runs: the prompts as token ids and the decode length.

    Attributes:
        prompt_ids: the long prompt (512 tokens by default).
        short_ids: the short prompt, timed for TTFT only.
        new_tokens: greedy tokens generated after the long prompt, EOS ignored.
        threads: intra-op threads of the engine.
        model: engine-specific model path (a GGUF, an ONNX folder...).
        extra: engine-specific options.
    """

    prompt_ids: list[int]
    short_ids: list[int]
    new_tokens: int
    threads: int
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def dump(self, path: Path) -> None:
        """Write the workload as JSON for a child process."""
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Workload:
        """Read a workload written by :meth:`dump`."""
        return cls(**json.loads(path.read_text()))


def peak_rss_mb() -> float:
    """Return this process's peak resident set size (VmHWM) in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(prefill: Prefill, decode: Decode, ids: list[int], new: int) -> tuple[float, float]:
    """Run one greedy generation; return (seconds to first token, seconds in total)."""
    start = time.perf_counter()
    token = prefill(ids)
    first = time.perf_counter()
    for _ in range(new - 1):
        token = decode(token)
    return first - start, time.perf_counter() - start


def measure(
    prefill: Prefill, decode: Decode, reset: Reset, work: Workload, progress: Any = None
) -> dict[str, Any]:
    """Time an engine given as prefill/decode callables; see :func:`measure_runs`.

    Args:
        prefill: feeds a prompt to a fresh cache and returns the first greedy token.
        decode: feeds one token and returns the next greedy token.
        reset: empties the KV cache.
        work: the workload.
        progress: an optional callable told each finished phase's name.
    """

    def run(ids: list[int], new: int) -> tuple[float, float]:
        reset()
        return _generate(prefill, decode, ids, new)

    return measure_runs(run, work, progress)


def measure_runs(run: Run, work: Workload, progress: Any = None) -> dict[str, Any]:
    """Time prefill, TTFT and decode of ``work`` with a warm-up run first.

    Args:
        run: generates greedily from a fresh cache, ``run(ids, new_tokens)``,
            and returns (seconds to the first token, seconds in total).
        work: the workload.
        progress: an optional callable told each finished phase's name.

    Returns:
        The figures: ``ttft_ms`` and ``prefill_tok_s`` of the long prompt,
        ``ttft_short_ms`` of the short one (median of 3), ``decode_tok_s`` and
        ``decode_ms_per_token`` over the ``new_tokens - 1`` decode steps.
    """
    tell = progress or (lambda _name: None)
    run(work.short_ids, min(4, work.new_tokens))
    tell("warm-up")
    short_runs = sorted(run(work.short_ids, 1)[0] for _ in range(3))
    tell("short prompt")
    ttft, total = run(work.prompt_ids, work.new_tokens)
    tell("long prompt")
    steps = max(1, work.new_tokens - 1)
    decode_s = max(total - ttft, 1e-9)
    return {
        "prompt_tokens": len(work.prompt_ids),
        "short_prompt_tokens": len(work.short_ids),
        "new_tokens": work.new_tokens,
        "ttft_ms": round(ttft * 1000, 2),
        "prefill_tok_s": round(len(work.prompt_ids) / ttft, 2),
        "ttft_short_ms": round(short_runs[1] * 1000, 2),
        "decode_tok_s": round(steps / decode_s, 2),
        "decode_ms_per_token": round(decode_s * 1000 / steps, 3),
    }


def emit(result: dict[str, Any]) -> None:
    """Print a child's result as the last line of stdout, with its peak RSS."""
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


EngineBuilder = Callable[[Workload], tuple[Prefill, Decode, Reset, dict[str, Any]]]


def run_and_emit(build: EngineBuilder, work: Workload, log: logging.Logger) -> None:
    """Build one engine, time it on ``work`` and print its figures (a child's main)."""
    prefill, decode, reset, info = build(work)
    result = measure(prefill, decode, reset, work, lambda name: log.info("Done: %s.", name))
    emit({**info, **result})
