"""The decode loop on onnxruntime-genai, for folders made by its model builder.

onnxruntime-genai runs the whole step (attention with a shared, preallocated
KV buffer, the cache update and the logits) in C++, which measures faster on
this CPU than a Python loop over an ONNX Runtime session (see the README's
LLM figures). Helpline still chooses every token itself, from the logits, so
sampling, stop strings, cancellation and the per-token log-probs that feed
the confidence score behave exactly as on the plain ONNX Runtime loop.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import LLMError
from llm.local.engine import MANIFEST, ModelStructure, _read_json

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)
CONFIG_FILE = "genai_config.json"


def is_genai_folder(folder: Path) -> bool:
    """Whether ``folder`` was made by onnxruntime-genai's model builder."""
    return (folder / CONFIG_FILE).is_file()


def genai_available() -> bool:
    """Whether the onnxruntime-genai runtime is installed."""
    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        return False
    return True


def _structure(folder: Path) -> ModelStructure:
    """The model's shape, from ``genai_config.json`` and the manifest."""
    decoder = _read_json(folder / CONFIG_FILE).get("model", {}).get("decoder", {})
    manifest = _read_json(folder / MANIFEST)
    context = _read_json(folder / CONFIG_FILE).get("model", {}).get("context_length")
    layers = int(decoder.get("num_hidden_layers") or manifest.get("num_hidden_layers") or 0)
    return ModelStructure(
        num_layers=layers,
        kv_heads=int(decoder.get("num_key_value_heads") or 0),
        head_dim=int(decoder.get("head_size") or 0),
        cache_dtype=np.dtype(np.float32),
        has_position_ids=False,
        past_names=(),
        present_names=(),
        max_positions=manifest.get("max_context") or context,
    )


class GenaiDecoder:
    """Prefill and decode through ``onnxruntime_genai``; same interface as DecoderSession."""

    def __init__(self, model: Any, structure: ModelStructure) -> None:
        self.model = model
        self.structure = structure

    @classmethod
    def load(cls, folder: Path, threads: int) -> GenaiDecoder:
        """Open a model-builder folder on the CPU with ``threads`` intra-op threads."""
        try:
            import onnxruntime_genai as og
        except ImportError as exc:
            raise LLMError(
                f"{folder} needs onnxruntime-genai; install it or prepare the model "
                "with --builder optimum"
            ) from exc
        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        try:
            config = og.Config(str(folder))
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            model = og.Model(config)
        except Exception as exc:  # genai raises plain RuntimeErrors on bad folders.
            raise LLMError(f"onnxruntime-genai cannot load {folder}: {exc}") from exc
        return cls(model, _structure(folder))

    def generate(
        self, prompt_ids: list[int], max_new_tokens: int, step: Callable[[np.ndarray], int | None]
    ) -> None:
        """Run prefill, then one token per step until ``step`` returns ``None``.

        Args:
            prompt_ids: The prompt's token ids.
            max_new_tokens: The most tokens the caller may ask for (sizes the cache).
            step: Gets the last position's logits and returns the chosen token id to
                feed next, or ``None`` to stop.
        """
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        # Helpline samples; genai only runs the model. The buffer holds the whole run.
        params.set_search_options(max_length=len(prompt_ids) + max_new_tokens + 1)
        generator = og.Generator(self.model, params)
        generator.append_tokens(np.asarray(prompt_ids, dtype=np.int32))
        while True:
            logits = np.asarray(generator.get_logits())
            chosen = step(logits.reshape(-1, logits.shape[-1])[-1])
            if chosen is None:
                return
            generator.append_tokens(np.asarray([chosen], dtype=np.int32))
