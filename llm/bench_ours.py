"""Our serving engine for ``helpline bench llm``: the decode loop of the runtime.

The serving runtime drives :class:`llm.local.engine.DecoderSession` (or, on a
folder from onnxruntime-genai's model builder,
:class:`llm.local.genai.GenaiDecoder`) with a per-step callback (logits in,
next token out). The bench uses the same
session and loop on the same token ids as the other engines, choosing the
greedy token and ignoring EOS so that every engine decodes as many tokens.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.bench_measure import Workload, measure_runs

if TYPE_CHECKING:
    import numpy as np

_LOGGER = logging.getLogger(__name__)


def _manifest(folder: Path) -> dict[str, Any]:
    """The prepare manifest's quant and size, when the folder has one."""
    import json

    path = folder / "helpline-model.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    keep = ("quant", "source", "arch", "int4", "int8")
    return {key: data[key] for key in keep if key in data}


def run_ours(work: Workload) -> dict[str, Any]:
    """Time our engine on the ONNX folder ``work.model``.

    Returns:
        The figures of :func:`llm.bench_measure.measure_runs` and the version.
    """
    import onnxruntime as ort

    from llm.local.engine import DecoderSession
    from llm.local.genai import GenaiDecoder, is_genai_folder

    folder = Path(work.model)
    loop = work.extra.get("loop") or ("genai" if is_genai_folder(folder) else "ort")
    session: DecoderSession | GenaiDecoder
    if loop == "genai":
        session = GenaiDecoder.load(folder, work.threads)
    else:
        session = DecoderSession.load(folder, work.threads)

    def run(ids: list[int], new: int) -> tuple[float, float]:
        stamps: list[float] = []

        def step(logits: np.ndarray) -> int | None:
            stamps.append(time.perf_counter())
            return None if len(stamps) >= new else int(logits.argmax())

        start = time.perf_counter()
        session.generate(ids, new, step)
        return stamps[0] - start, stamps[-1] - start

    result = measure_runs(run, work, lambda name: _LOGGER.info("Done: %s.", name))
    return {
        "version": ort.__version__,
        "loop": type(session).__name__,
        **_manifest(folder),
        **result,
    }
