"""The lean decode loop over an ONNX Runtime session with past key values.

The graph is an Optimum ``text-generation-with-past`` export: inputs ``input_ids``,
``attention_mask``, optionally ``position_ids`` and ``past_key_values.<i>.key|value``;
outputs ``logits`` and ``present.<i>.key|value``. The present tensors of one step are
fed back as the past of the next step as ``OrtValue``s through IO binding, so the cache
never passes through numpy.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from bot.errors import LLMError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_PAST = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
MANIFEST = "helpline-model.json"


@dataclass(frozen=True)
class ModelStructure:
    """What the loop must know about the graph: cache layout and input names."""

    num_layers: int
    kv_heads: int
    head_dim: int
    cache_dtype: np.dtype[Any]
    has_position_ids: bool
    past_names: tuple[str, ...]
    present_names: tuple[str, ...]
    max_positions: int | None


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _config_dims(config: dict[str, Any]) -> tuple[int | None, int | None]:
    """KV heads and head size from a transformers ``config.json`` (or a manifest)."""
    heads = config.get("num_attention_heads")
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim")
    if head_dim is None and heads and config.get("hidden_size"):
        head_dim = int(config["hidden_size"]) // int(heads)
    return kv_heads, head_dim


def _genai_dims(folder: Path) -> dict[str, Any]:
    """The cache dims of a folder made by onnxruntime-genai's model builder, if it is one."""
    decoder = _read_json(folder / "genai_config.json").get("model", {}).get("decoder", {})
    if not decoder:
        return {}
    return {
        "num_attention_heads": decoder.get("num_attention_heads"),
        "num_key_value_heads": decoder.get("num_key_value_heads"),
        "head_dim": decoder.get("head_size"),
    }


def read_structure(session: ort.InferenceSession, folder: Path) -> ModelStructure:
    """Read the cache layout from the graph inputs, falling back on config.json/manifest."""
    inputs = {item.name: item for item in session.get_inputs()}
    missing = {"input_ids", "attention_mask"} - inputs.keys()
    layers = sorted({int(m.group(1)) for name in inputs if (m := _PAST.match(name))})
    if missing or not layers:
        raise LLMError(f"{folder} is not a decoder exported with past key values ({missing}).")
    first = inputs[f"past_key_values.{layers[0]}.key"]
    config = {
        **_genai_dims(folder),
        **_read_json(folder / "config.json"),
        **_read_json(folder / MANIFEST),
    }
    kv_cfg, dim_cfg = _config_dims(config)
    shape = list(first.shape)
    kv_heads = shape[1] if isinstance(shape[1], int) else kv_cfg
    head_dim = shape[3] if isinstance(shape[3], int) else dim_cfg
    if kv_heads is None or head_dim is None:
        raise LLMError(f"Cannot tell the KV-cache shape of {folder}.")
    names = [f"past_key_values.{i}.{kind}" for i in layers for kind in ("key", "value")]
    return ModelStructure(
        num_layers=len(layers),
        kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        cache_dtype=np.dtype(_DTYPES.get(first.type, np.float32)),
        has_position_ids="position_ids" in inputs,
        past_names=tuple(names),
        present_names=tuple(n.replace("past_key_values", "present") for n in names),
        max_positions=config.get("max_position_embeddings"),
    )


def session_options(threads: int) -> ort.SessionOptions:
    """Options tuned for one-token decode steps on a few CPU cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the cores that the event loop and tokenizer need between steps.
    spin = os.environ.get("HELPLINE_ORT_SPIN", "0")
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class DecoderSession:
    """One ONNX Runtime session and the loop that runs prefill and decode steps."""

    def __init__(self, session: ort.InferenceSession, structure: ModelStructure) -> None:
        self.session = session
        self.structure = structure
        # Arrays bound by reference must outlive the step that reads them.
        self._bound: list[np.ndarray] = []
        self._empty_past = np.zeros(
            (1, structure.kv_heads, 0, structure.head_dim), dtype=structure.cache_dtype
        )

    @classmethod
    def load(cls, folder: Path, threads: int) -> DecoderSession:
        """Open ``model.onnx`` (or the only ``*.onnx``) of ``folder`` on the CPU."""
        path = folder / "model.onnx"
        if not path.is_file():
            candidates = sorted(folder.glob("*.onnx"))
            if len(candidates) != 1:
                raise LLMError(f"{folder} holds no single ONNX model.")
            path = candidates[0]
        try:
            session = ort.InferenceSession(
                str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped errors on bad graphs.
            raise LLMError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        return cls(session, read_structure(session, folder))

    def generate(
        self, prompt_ids: list[int], max_new_tokens: int, step: Callable[[np.ndarray], int | None]
    ) -> None:
        """Run prefill, then one token per step until ``step`` returns ``None``.

        Args:
            prompt_ids: The prompt's token ids.
            max_new_tokens: The most tokens the caller may ask for (sizes the mask).
            step: Gets the last position's logits and returns the chosen token id to
                feed next, or ``None`` to stop.
        """
        mask = np.ones((1, len(prompt_ids) + max_new_tokens + 1), dtype=np.int64)
        binding = self.session.io_binding()
        ids = np.asarray([prompt_ids], dtype=np.int64)
        length = ids.shape[1]
        self._bound = self._bind_step(binding, ids, mask[:, :length], 0, None)
        while True:
            self.session.run_with_iobinding(binding)
            outputs = binding.get_outputs()
            chosen = step(outputs[0].numpy()[0, -1])
            if chosen is None or length >= mask.shape[1]:
                return
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            ids = np.asarray([[chosen]], dtype=np.int64)
            self._bound = self._bind_step(binding, ids, mask[:, : length + 1], length, outputs[1:])
            length += 1

    def _bind_step(
        self,
        binding: ort.IOBinding,
        ids: np.ndarray,
        mask: np.ndarray,
        past_length: int,
        past: list[ort.OrtValue] | None,
    ) -> list[np.ndarray]:
        """Bind one step's inputs (ids, mask, positions, cache) and its outputs.

        Returns:
            The arrays bound by reference, to keep alive until the step has run.
        """
        structure = self.structure
        mask = np.ascontiguousarray(mask)
        positions = np.arange(past_length, past_length + ids.shape[1], dtype=np.int64)[None, :]
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", mask)
        if structure.has_position_ids:
            binding.bind_cpu_input("position_ids", positions)
        for index, name in enumerate(structure.past_names):
            if past is None:
                binding.bind_cpu_input(name, self._empty_past)
            else:
                binding.bind_ortvalue_input(name, past[index])
        binding.bind_output("logits", "cpu")
        for name in structure.present_names:
            binding.bind_output(name, "cpu")
        return [ids, mask, positions]
