"""``helpline bench llm``: prefill, decode, TTFT and peak RSS of the local model.

Every engine runs the same token ids (a 512-token support prompt, then 128
greedy tokens with EOS ignored; a 37-token prompt for TTFT) in a child
process of its own, so peak RSS is per engine. The baseline, PyTorch eager
fp32 on the same dequantized weights, runs in the same invocation and every
row carries its ratios to it, since absolute figures on a shared 2-core
machine are noisy. Engines:

- ``pytorch_fp32``: the baseline (:mod:`llm.bench_engines`).
- ``ort_fp32``, ``ort_int8``, ``ort_int4``: our runtime's loop on folders
  from :func:`llm.local.prepare.prepare_model` (:mod:`llm.bench_ours`).
- ``llama_cpp``: llama-cpp-python on the original Q4_1 GGUF (its own venv).
- ``ort_genai_int4``: onnxruntime-genai on its model builder's int4 output.

Then the memory read bandwidth (:mod:`llm.bench_bandwidth`) and the
Phi-4-mini-shaped int4 extrapolation (:mod:`llm.bench_phi`). The JSON goes to
stdout; progress bars and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from llm.bench_children import build_prompts, run_engine
from llm.bench_measure import Workload

_LOGGER = logging.getLogger(__name__)

ENGINES = (
    "pytorch_fp32",
    "ort_fp32",
    "ort_int8",
    "ort_int4",
    "ours_on_genai_graph_int4",
    "ours_genai_int4",
    "llama_cpp",
    "ort_genai_int4",
)
BASELINE = "pytorch_fp32"
# Bits per weight of the quantized matrices, scales included (approximate).
BITS = {
    "pytorch_fp32": 32.0,
    "ort_fp32": 32.0,
    "ort_int8": 8.0,  # per output channel scales: negligible
    "ort_int4": 4.0 + 32 / 32,  # block 32, symmetric, one fp32 scale per block
    "llama_cpp": 4.0 + 32 / 32,  # Q4_1: 32 weights + fp16 scale + fp16 min per block
    "ort_genai_int4": 4.0 + 32 / 32,  # builder default: block 32, fp32 scales
    "ours_on_genai_graph_int4": 4.0 + 32 / 32,  # the same graph, run by our ORT loop
    "ours_genai_int4": 4.0 + 32 / 32,  # the same graph, our loop on genai's runtime (serving)
}
TIMING_METHOD = (
    "each engine in its own child process; same token ids for all; greedy, EOS ignored. "
    "Warm-up run first. TTFT = prompt fed on an empty cache until the first greedy token; "
    "prefill tok/s = prompt tokens / TTFT; decode tok/s = (new_tokens - 1) / (time from the "
    "first to the last token); ttft_short_ms = median of 3 on the short prompt; peak RSS = "
    "the child's VmHWM (load included)."
)


def _engine(name: str, args: argparse.Namespace, base: Workload) -> dict[str, Any]:
    """Prepare what ``name`` needs and run it in a child process."""
    timeout = args.timeout
    if name == BASELINE:
        return run_engine("torch", base, args.work_dir, timeout)
    if name == "llama_cpp":
        return run_engine("llama", base, args.work_dir, timeout, peer="llama")
    from llm.local.prepare import prepare_model

    # The embedded model is named None so that `make setup`'s cache is reused.
    source = None if args.gguf == _default_gguf() else args.gguf
    if name.startswith("ort_") and name != "ort_genai_int4":
        quant = name.removeprefix("ort_")
        folder = prepare_model(source, quant=quant, cache_dir=args.models, progress=True)
        return run_engine("ours", _with_model(base, folder), args.work_dir, timeout)
    folder = prepare_model(source, quant="int4", cache_dir=args.models, builder="genai")
    if name == "ours_on_genai_graph_int4":
        # The model builder's graph (fused GroupQueryAttention), run by our ORT loop.
        return run_engine("ours", _with_model(base, folder, "ort"), args.work_dir, timeout)
    if name == "ours_genai_int4":
        # What `helpline run` serves: our sampling loop over genai's runtime.
        return run_engine("ours", _with_model(base, folder, "genai"), args.work_dir, timeout)
    return run_engine("genai", _with_model(base, folder), args.work_dir, timeout, peer="genai")


def _with_model(work: Workload, model: Path, loop: str | None = None) -> Workload:
    """A copy of ``work`` on another model path (and, for ours, a decode loop)."""
    extra = {"loop": loop} if loop else {}
    return Workload(
        work.prompt_ids, work.short_ids, work.new_tokens, work.threads, str(model), extra
    )


def _ratios(row: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float]:
    """Decode, prefill and TTFT ratios of ``row`` to the baseline row."""
    if not baseline or not baseline.get("available") or not row.get("available"):
        return {}
    return {
        "decode_x": round(row["decode_tok_s"] / baseline["decode_tok_s"], 2),
        "prefill_x": round(row["prefill_tok_s"] / baseline["prefill_tok_s"], 2),
        "ttft_x": round(baseline["ttft_ms"] / row["ttft_ms"], 2),
        "ttft_short_x": round(baseline["ttft_short_ms"] / row["ttft_short_ms"], 2),
        "peak_rss_ratio": round(row["peak_rss_mb"] / baseline["peak_rss_mb"], 2),
    }


def _targets(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Check the issue's targets for each of our rows."""
    base, llama = rows.get(BASELINE, {}), rows.get("llama_cpp", {})
    result: dict[str, Any] = {}
    ours = ("ort_fp32", "ort_int8", "ort_int4", "ours_on_genai_graph_int4", "ours_genai_int4")
    for name in ours:
        row = rows.get(name, {})
        if not row.get("available"):
            continue
        checks: dict[str, Any] = {
            "ttft_short_le_300ms": row["ttft_short_ms"] <= 300,
            "ttft_512_le_300ms": row["ttft_ms"] <= 300,
        }
        if base.get("available"):
            checks["decode_ge_4x_pytorch"] = row["decode_tok_s"] >= 4 * base["decode_tok_s"]
        if llama.get("available") and BITS[name] <= BITS["llama_cpp"]:
            checks["decode_ge_llama_cpp"] = row["decode_tok_s"] >= llama["decode_tok_s"]
            checks["decode_vs_llama_cpp"] = round(row["decode_tok_s"] / llama["decode_tok_s"], 2)
        result[name] = checks
    return result


def run_engines(args: argparse.Namespace, base: Workload) -> dict[str, dict[str, Any]]:
    """Run every selected engine; a failure marks its row unavailable with the reason."""
    rows: dict[str, dict[str, Any]] = {}
    for name in tqdm(args.engines, desc="engines", file=sys.stderr):
        try:
            rows[name] = {"available": True, **_engine(name, args, base)}
        except Exception as exc:
            _LOGGER.warning("Engine %s is unavailable: %s", name, exc)
            rows[name] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
        rows[name]["bits_per_weight"] = round(BITS[name], 2)
    for row in rows.values():
        row["vs_baseline"] = _ratios(row, rows.get(BASELINE))
    return rows


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole benchmark and return the report."""
    from llm.bench_bandwidth import measure_bandwidth
    from llm.bench_phi import measure_phi

    args.work_dir.mkdir(parents=True, exist_ok=True)
    prompt, short = build_prompts(args.gguf, args.prompt_tokens, args.short_prompt_tokens)
    base = Workload(prompt, short, args.new_tokens, args.threads, str(args.gguf))
    report: dict[str, Any] = {
        "workload": {
            "model": args.gguf.name,
            "prompt_tokens": len(prompt),
            "short_prompt_tokens": len(short),
            "new_tokens": args.new_tokens,
            "threads": args.threads,
        },
        "method": TIMING_METHOD,
        "engines": run_engines(args, base),
    }
    report["targets"] = _targets(report["engines"])
    if args.bandwidth_mb > 0:
        report["bandwidth"] = measure_bandwidth(args.bandwidth_mb, threads=(1, args.threads))
    if args.phi_layers:
        gb_s = report.get("bandwidth", {}).get("gb_s", {}).get(str(args.threads), 0.0)
        kv_tokens = args.prompt_tokens + args.new_tokens
        try:
            report["phi4_mini_shaped"] = measure_phi(
                args.phi_layers, args.work_dir, args.threads, args.phi_new_tokens, kv_tokens, gb_s
            )
        except Exception as exc:
            _LOGGER.warning("The Phi-4-mini-shaped figure failed: %s", exc)
            report["phi4_mini_shaped"] = {"available": False, "reason": f"{exc}"}
    return report


def _layers(text: str) -> list[int]:
    """Parse ``--phi-layers`` (``2,4``; empty to skip)."""
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if values and len(values) < 2:
        raise argparse.ArgumentTypeError("give two depths, e.g. 2,4 (or '' to skip)")
    return values


def _engines(text: str) -> list[str]:
    """Parse ``--engines`` (comma-separated names of :data:`ENGINES`)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(ENGINES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown engines {sorted(unknown)}; known: {ENGINES}")
    return names


def _default_gguf() -> Path:
    """The embedded SmolLM2 GGUF, or a placeholder path when it is absent."""
    from llm.local.source import EMBEDDED_GGUF, embedded_source

    try:
        return embedded_source().path
    except Exception:
        return Path(EMBEDDED_GGUF)


def register(subparsers: Any) -> None:
    """Add ``bench llm`` to the ``bench`` verb's subparsers."""
    parser = subparsers.add_parser("llm", help="local model speed vs PyTorch and peers (JSON)")
    add = parser.add_argument
    add("--prompt-tokens", type=int, default=512, help="long prompt length")
    add("--short-prompt-tokens", type=int, default=37, help="short prompt length (TTFT)")
    add("--new-tokens", type=int, default=128, help="greedy tokens after the long prompt")
    add("--threads", type=int, default=2, help="intra-op threads of every engine")
    add(
        "--gguf",
        type=Path,
        default=None,
        help="GGUF file or checkpoint (default: embedded SmolLM2)",
    )
    add("--models", type=Path, default=Path("var/models/llm"), help="prepared model cache")
    add("--work-dir", type=Path, default=Path("var/bench/llm"), help="bench scratch folder")
    add("--engines", type=_engines, default=list(ENGINES), help="comma-separated engines")
    add("--phi-layers", type=_layers, default=[2, 4], help="Phi-4-mini-shaped depths ('' skips)")
    add("--phi-new-tokens", type=int, default=32, help="decode steps timed per Phi depth")
    add("--bandwidth-mb", type=int, default=1024, help="bandwidth array size (0 skips)")
    add("--timeout", type=float, default=1800, help="seconds per engine child")
    add("--json", action="store_true", help="print JSON (the default)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """Run ``bench llm`` and print the report as JSON on stdout."""
    if args.gguf is None:
        args.gguf = _default_gguf()
    args.gguf = args.gguf.resolve()
    if not args.gguf.exists():
        print(f"error: no GGUF model or checkpoint at {args.gguf}", file=sys.stderr)
        return 2
    args.work_dir = args.work_dir.resolve()
    args.models = args.models.resolve()
    report = bench(args)
    print(json.dumps(report, indent=2))
    return 0
