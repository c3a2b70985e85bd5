"""Peer engines of ``helpline bench llm``: llama.cpp and onnxruntime-genai.

Each peer runs in its own venv (``scripts/setup-bench-peers.sh``) as
``python -m llm.bench_peers ENGINE WORKLOAD.json`` with the repository root on
``PYTHONPATH``, and prints one JSON line. Only the standard library is
imported at module level, so the platform venv imports this module too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from llm.bench_measure import Decode, Prefill, Reset, Workload, run_and_emit

_LOGGER = logging.getLogger(__name__)


def _llama(work: Workload) -> tuple[Prefill, Decode, Reset, dict[str, Any]]:
    """Build the callables of llama-cpp-python on a GGUF file."""
    import llama_cpp
    import numpy as np

    n_ctx = max(len(work.prompt_ids) + work.new_tokens + 8, 256)
    llm = llama_cpp.Llama(
        model_path=work.model,
        n_ctx=n_ctx,
        n_batch=max(512, len(work.prompt_ids)),
        n_ubatch=max(512, len(work.prompt_ids)),
        n_threads=work.threads,
        n_threads_batch=work.threads,
        logits_all=False,
        verbose=False,
    )

    vocab = llm.n_vocab()

    def argmax() -> int:
        # Without logits_all, Llama.eval keeps no scores: read the context's
        # logits, which hold only the batch's last token.
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))
        return int(np.argmax(logits))

    def prefill(ids: list[int]) -> int:
        llm.eval(ids)
        return argmax()

    def decode(token: int) -> int:
        llm.eval([token])
        return argmax()

    info = {"version": llama_cpp.__version__, "weights": Path(work.model).name}
    return prefill, decode, llm.reset, info


def _genai(work: Workload) -> tuple[Prefill, Decode, Reset, dict[str, Any]]:
    """Build the callables of onnxruntime-genai on a model-builder folder."""
    import onnxruntime_genai as og

    folder = Path(work.model)
    config = og.Config(str(folder))
    options = {"intra_op_num_threads": work.threads, "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    model = og.Model(config)
    state: dict[str, Any] = {}

    def prefill(ids: list[int]) -> int:
        params = og.GeneratorParams(model)
        length = len(ids) + work.new_tokens
        # min_length == max_length: EOS never ends a run early.
        params.set_search_options(do_sample=False, max_length=length, min_length=length)
        generator = og.Generator(model, params)
        state["gen"] = generator
        generator.append_tokens(ids)
        generator.generate_next_token()
        return int(generator.get_next_tokens()[0])

    def decode(_token: int) -> int:
        generator = state["gen"]
        generator.generate_next_token()
        return int(generator.get_next_tokens()[0])

    def reset() -> None:
        state.pop("gen", None)

    return prefill, decode, reset, {"version": og.__version__, "weights": folder.name}


ENGINES = {"llama": _llama, "genai": _genai}


def main(argv: list[str] | None = None) -> int:
    """Run one peer engine on a workload file and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("workload", type=Path)
    args = parser.parse_args(argv)
    work = Workload.load(args.workload)
    run_and_emit(ENGINES[args.engine], work, _LOGGER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
