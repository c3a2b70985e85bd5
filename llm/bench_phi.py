"""The Phi-4-mini-shaped figure of ``helpline bench llm``.

A random ``Phi3Config`` with Phi-4-mini's exact width (hidden 3072, 24 heads,
8 KV heads, head_dim 128, intermediate 8192, vocab 200064, partial rotary
0.75, LongRoPE, tied embeddings) is built at reduced depth, untied, exported
and quantized to int4 with the prepare pipeline's own steps
(:mod:`llm.local.export`), then its decode is timed at each depth in a child
process. Two depths give a per-layer and a fixed cost, extrapolated to 32.

``python -m llm.bench_phi build LAYERS OUT`` builds one depth (a child, since
the fp32 export of the 200k vocab needs several GB).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

PHI4_MINI = {
    "hidden_size": 3072,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 8192,
    "vocab_size": 200064,
    "partial_rotary_factor": 0.75,
    "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "bos_token_id": 199999,
    "eos_token_id": 199999,
    "pad_token_id": 199999,
}
FULL_LAYERS = 32
DONE = "helpline-bench-phi.ok"


def phi_config(layers: int) -> Any:
    """Return Phi-4-mini's config with ``layers`` decoder layers."""
    from transformers import Phi3Config

    rotary_half = int(PHI4_MINI["head_dim"] * PHI4_MINI["partial_rotary_factor"]) // 2
    rope = {
        "type": "longrope",
        "short_factor": [1.0 + i / rotary_half for i in range(rotary_half)],
        "long_factor": [1.0 + 2 * i / rotary_half for i in range(rotary_half)],
    }
    return Phi3Config(num_hidden_layers=layers, rope_scaling=rope, **PHI4_MINI)


def _wait_for_memory(needed: int, patience_s: float = 900) -> None:
    """Wait until ``needed`` bytes of memory are available (the machine is shared).

    Raises:
        MemoryError: not within ``patience_s`` seconds.
    """
    import time

    import psutil

    deadline = time.monotonic() + patience_s
    while (free := psutil.virtual_memory().available) < needed:
        if time.monotonic() > deadline:
            raise MemoryError(f"{needed / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free")
        _LOGGER.info("Waiting for %.1f GiB of free memory.", needed / 2**30)
        time.sleep(10)


def export_fp32(layers: int, fp32: Path) -> None:
    """Build a random model of ``layers`` layers, untie its head and export it."""
    import shutil

    import torch
    from transformers import Phi3ForCausalLM

    from llm.local import export

    config = phi_config(layers)
    vocab_params = 2 * config.vocab_size * config.hidden_size
    # The export holds the weights about twice over.
    _wait_for_memory(int(2.3 * 4 * (vocab_params + layers * 100_700_000)))
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config).eval()
    export.untie_lm_head(model)
    shutil.rmtree(fp32, ignore_errors=True)
    fp32.mkdir(parents=True)
    _LOGGER.info("Exporting the %d-layer Phi-4-mini-shaped model.", layers)
    export.export_onnx(model, fp32)


def quantize(fp32: Path, int4: Path) -> None:
    """Quantize an export to int4 with the prepare pipeline's settings."""
    from llm.local import export

    _wait_for_memory(int(1.5 * sum(p.stat().st_size for p in fp32.iterdir())))
    int4.mkdir(parents=True, exist_ok=True)
    _LOGGER.info("Quantizing %s to int4.", fp32)
    export.quantize_int4(fp32, int4)
    export.copy_side_files(fp32, int4)


def build(layers: int, out: Path) -> Path:
    """Build, untie, export and int4-quantize a random model of ``layers`` layers.

    The export and the quantization run in separate child processes, so that
    their peaks (several GB each with the 200k vocab) never add up. Reruns skip
    a finished folder. Returns the int4 folder.
    """
    import shutil

    from llm.bench_children import run_child

    fp32, int4 = out / "fp32", out / "int4"
    if (int4 / DONE).is_file():
        return int4
    if not (fp32 / DONE).is_file():
        run_child([sys.executable, "-m", "llm.bench_phi", "export", str(layers), str(out)], 3600)
    run_child([sys.executable, "-m", "llm.bench_phi", "quantize", str(layers), str(out)], 3600)
    shutil.rmtree(fp32)
    (int4 / DONE).write_text("ok\n")
    return int4


def weight_bytes(folder: Path) -> dict[str, int]:
    """Sum initializer bytes of an ONNX model by part: embedding, LM head, the rest.

    Exported initializers have generated names (``onnx__MatMul_990``), so each
    is classified by the node that consumes it (``/lm_head/MatMul_Q4``...).
    """
    import onnx

    from llm.bench_engines import find_onnx

    model = onnx.load(str(find_onnx(folder)), load_external_data=False)
    consumer = {name: node.name for node in model.graph.node for name in node.input}
    parts = {"embedding": 0, "lm_head": 0, "layers_and_norms": 0}
    for tensor in model.graph.initializer:
        info = {entry.key: entry.value for entry in tensor.external_data}
        size = int(info["length"]) if "length" in info else len(tensor.raw_data)
        node = consumer.get(tensor.name, "") + " " + tensor.name
        if "embed_tokens" in node:
            parts["embedding"] += size
        elif "lm_head" in node:
            parts["lm_head"] += size
        else:
            parts["layers_and_norms"] += size
    parts["total"] = sum(parts.values())
    return parts


def _measure_depth(layers: int, work_dir: Path, threads: int, new_tokens: int) -> dict[str, Any]:
    """Build (cached) and time one depth in child processes."""
    from llm.bench_children import run_engine
    from llm.bench_measure import Workload

    out = work_dir / "phi" / f"L{layers}"
    folder = build(layers, out)
    # Random weights: the ids only need to be in the vocab.
    prompt = [(7919 * i) % 199_000 + 100 for i in range(32)]
    work = Workload(prompt, prompt[:8], new_tokens, threads, str(folder))
    return {
        "layers": layers,
        "weights": weight_bytes(folder),
        **run_engine("ours", work, work_dir, 1800),
    }


def _two_point(small: dict[str, Any], large: dict[str, Any], value: Any) -> dict[str, float]:
    """Per-layer and fixed parts of ``value`` from two depths, and the 32-layer total."""
    a, b = small["layers"], large["layers"]
    va, vb = float(value(small)), float(value(large))
    per_layer = (vb - va) / (b - a)
    fixed = va - a * per_layer
    return {"per_layer": per_layer, "fixed": fixed, "at_32": fixed + FULL_LAYERS * per_layer}


def extrapolate(
    depths: list[dict[str, Any]], bandwidth_gb_s: float, kv_tokens: int
) -> dict[str, Any]:
    """Extrapolate decode time, weights and RSS to 32 layers; compare with bandwidth."""
    small, large = depths[0], depths[-1]
    ms = _two_point(small, large, lambda d: d["decode_ms_per_token"])
    weights = _two_point(small, large, lambda d: d["weights"]["total"])
    rss = _two_point(small, large, lambda d: d["peak_rss_mb"])
    head = float(large["weights"]["lm_head"])
    read_per_token = FULL_LAYERS * weights["per_layer"] + head
    kv_bytes = FULL_LAYERS * 2 * PHI4_MINI["num_key_value_heads"] * PHI4_MINI["head_dim"] * 4
    bound = bandwidth_gb_s * 1e9 / read_per_token
    tok_s = 1000 / ms["at_32"]
    notes = []
    if ms["per_layer"] <= 0:
        notes.append(
            "per-layer decode time <= 0: noise exceeded the layer cost; rerun on an "
            "idle machine or with more --phi-new-tokens"
        )
    return {
        "reliable": not notes,
        "notes": notes,
        "decode_ms_per_token": {k: round(v, 3) for k, v in ms.items()},
        "decode_tok_s_32_layers": round(tok_s, 2),
        "weights_mb": {k: round(v / 2**20, 1) for k, v in weights.items()},
        "peak_rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "kv_cache_mb": round(kv_bytes * kv_tokens / 2**20, 1),
        "kv_cache_tokens": kv_tokens,
        "memory_mb_32_layers": round((weights["at_32"] + kv_bytes * kv_tokens) / 2**20, 1),
        "bytes_read_per_token_mb": round(read_per_token / 2**20, 1),
        "bandwidth_gb_s": bandwidth_gb_s,
        "bandwidth_bound_tok_s": round(bound, 2),
        "fraction_of_bound": round(tok_s / bound, 3),
        "method": METHOD.format(a=small["layers"], b=large["layers"]),
    }


METHOD = (
    "random Phi3 with Phi-4-mini's width at {a} and {b} layers, untied, exported with Optimum "
    "and int4-quantized (MatMulNBits block 32, LM head and embedding included) by "
    "llm.local.export; decode ms/token timed with the runtime's loop (llm.local.engine) "
    "after a 32-token prompt. per_layer = (t_{b} - t_{a}) / ({b} - {a}); fixed (embedding, "
    "LM head, final norm, loop overhead) = t_{a} - {a} * per_layer; t_32 = fixed + 32 * "
    "per_layer. Weights and peak RSS extrapolated the same way from ONNX initializer bytes "
    "and the children's VmHWM. KV cache = 32 layers x 2 x 8 KV heads x 128 x 4 bytes (fp32) "
    "per token x (prompt + new tokens). Bandwidth bound = read bandwidth at the bench's "
    "thread count / (32 x per-layer int4 weight bytes + int4 LM head bytes); the "
    "embedding reads one row per token and is left out."
)


def measure_phi(
    layers: list[int],
    work_dir: Path,
    threads: int,
    new_tokens: int,
    kv_tokens: int,
    bandwidth_gb_s: float,
) -> dict[str, Any]:
    """Build and time the Phi-4-mini-shaped model at each depth, then extrapolate.

    Args:
        layers: two or more depths, smallest first.
        work_dir: the bench's work folder (models are cached under ``phi/``).
        threads: intra-op threads.
        new_tokens: decode steps timed at each depth.
        kv_tokens: the context the KV cache figure is given for.
        bandwidth_gb_s: measured read bandwidth at ``threads`` threads.
    """
    from tqdm import tqdm

    depths = []
    for count in tqdm(sorted(layers), desc="phi-4-mini-shaped depths", file=sys.stderr):
        depths.append(_measure_depth(count, work_dir, threads, new_tokens))
    return {"depths": depths, "extrapolated": extrapolate(depths, bandwidth_gb_s, kv_tokens)}


def main(argv: list[str] | None = None) -> int:
    """Build one depth: ``python -m llm.bench_phi build|export|quantize LAYERS OUT``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("verb", choices=["build", "export", "quantize"])
    parser.add_argument("layers", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.verb == "export":
        export_fp32(args.layers, args.out / "fp32")
        (args.out / "fp32" / DONE).write_text("ok\n")
    elif args.verb == "quantize":
        quantize(args.out / "fp32", args.out / "int4")
    else:
        build(args.layers, args.out)
    print(json.dumps({"out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
