"""Platform-venv engines of ``helpline bench llm``, one per child process.

``python -m llm.bench_engines ENGINE WORKLOAD.json`` builds one engine, times
it with :func:`llm.bench_measure.measure` and prints one JSON line, so that
every engine's peak RSS is its own. Engines:

- ``torch``: the baseline, PyTorch eager fp32 on the GGUF dequantized by
  transformers, a greedy loop over the model's own KV cache.
- ``ort``: the lean reference loop, ONNX Runtime with IO binding over an
  Optimum-exported decoder with past key values (any ONNX folder).
- ``ours``: the serving runtime's loop (:mod:`llm.bench_ours`) on a folder
  from :func:`llm.local.prepare.prepare_model`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from llm.bench_measure import Decode, Prefill, Reset, Workload, emit, run_and_emit

_LOGGER = logging.getLogger(__name__)

Engine = tuple[Prefill, Decode, Reset, dict[str, Any]]


def hf_location(model: Path) -> tuple[Path, dict[str, Any]]:
    """The ``from_pretrained`` folder and arguments of a GGUF file or checkpoint folder."""
    if model.is_dir():
        return model, {}
    return model.parent, {"gguf_file": model.name}


def load_gguf_model(model: Path) -> Any:
    """Load a GGUF file (dequantized) or a checkpoint folder in fp32 through transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    folder, kwargs = hf_location(model)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs).eval()


def _torch(work: Workload) -> Engine:
    """Build the callables of the PyTorch eager fp32 baseline."""
    import torch

    torch.set_num_threads(work.threads)
    model = load_gguf_model(Path(work.model))
    state: dict[str, Any] = {}

    @torch.inference_mode()
    def forward(ids: list[int]) -> int:
        out = model(
            input_ids=torch.tensor([ids]), past_key_values=state.get("past"), use_cache=True
        )
        state["past"] = out.past_key_values
        return int(out.logits[0, -1].argmax())

    info = {"version": torch.__version__, "dtype": "fp32", "params": model.num_parameters()}
    return forward, lambda token: forward([token]), state.clear, info


class LeanOrtLoop:
    """A greedy loop over an ONNX decoder with past key values and IO binding.

    It handles the Optimum export layout: ``input_ids``, ``attention_mask``,
    optional ``position_ids`` and ``past_key_values.N.key|value`` in,
    ``logits`` and ``present.N.key|value`` out. The cache stays in
    ``OrtValue`` objects between steps; only the last logits row is read.
    """

    def __init__(self, onnx_file: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._ort = ort
        self.session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name: i for i in self.session.get_inputs()}
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._past: dict[str, Any] = {}
        self._length = 0
        self.reset()

    def reset(self) -> None:
        """Empty the KV cache."""
        import numpy as np

        self._past = {}
        for name, meta in self._inputs.items():
            if name.startswith("past_key_values"):
                heads, dim = meta.shape[1], meta.shape[3]
                empty = np.zeros((1, heads, 0, dim), dtype=np.float32)
                self._past[name] = self._ort.OrtValue.ortvalue_from_numpy(empty)
        self._length = 0

    def step(self, ids: list[int]) -> int:
        """Feed ``ids`` after the cached ones and return the greedy next token."""
        import numpy as np

        total = self._length + len(ids)
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", np.array([ids], dtype=np.int64))
        binding.bind_cpu_input("attention_mask", np.ones((1, total), dtype=np.int64))
        if "position_ids" in self._inputs:
            positions = np.arange(self._length, total, dtype=np.int64)[None, :]
            binding.bind_cpu_input("position_ids", positions)
        for name, value in self._past.items():
            binding.bind_ortvalue_input(name, value)
        for name in self._outputs:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        values = dict(zip(self._outputs, binding.get_outputs(), strict=True))
        for name in self._past:
            self._past[name] = values[name.replace("past_key_values", "present")]
        self._length = total
        return int(values["logits"].numpy()[0, -1].argmax())


def find_onnx(folder: Path) -> Path:
    """Return the decoder ONNX file of an exported folder."""
    for name in ("model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx"):
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(folder.glob("*.onnx"))
    if not candidates:
        raise FileNotFoundError(f"no .onnx file in {folder}")
    return candidates[0]


def _ort(work: Workload) -> Engine:
    """Build the callables of the lean ONNX Runtime loop."""
    import onnxruntime as ort

    loop = LeanOrtLoop(find_onnx(Path(work.model)), work.threads)
    return loop.step, lambda token: loop.step([token]), loop.reset, {"version": ort.__version__}


ENGINES = {"torch": _torch, "ort": _ort}


def main(argv: list[str] | None = None) -> int:
    """Run one engine on a workload file and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=[*sorted(ENGINES), "ours"])
    parser.add_argument("workload", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Workload.load(args.workload)
    if args.engine == "ours":
        from llm.bench_ours import run_ours

        emit(run_ours(work))
        return 0
    run_and_emit(ENGINES[args.engine], work, _LOGGER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
