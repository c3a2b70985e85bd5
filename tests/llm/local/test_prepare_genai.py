"""``--builder genai`` on a tiny Phi-4-mini-shaped model, run by :class:`GenaiDecoder`.

The model builder runs in ``.venv-genai`` (made by ``make setup``); the
decoder runs in the platform venv. Logits come from our own loop, one
position at a time over genai's KV cache, and are compared with PyTorch.
The int4 agreement is measured on the real SmolLM2 in
``test_prepare_smollm2.py``: on a random model 4-bit noise decides most
argmaxes (45 % here), which says nothing about the quantizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import pytest
import torch
from transformers import Phi3ForCausalLM

from bot.errors import ModelPrepareError
from llm.local.genai import GenaiDecoder
from llm.local.prepare import MANIFEST_FILE, prepare_model
from tests.llm.local.tiny_phi import random_ids

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def genai_prepared(phi3_wide_checkpoint: Path, llm_cache: Path) -> Callable[[str], Path]:
    done: dict[str, Path] = {}

    def get(quant: str) -> Path:
        if quant not in done:
            done[quant] = prepare_model(
                phi3_wide_checkpoint,
                quant=quant,
                cache_dir=llm_cache,
                builder="genai",
                progress=False,
            )
        return done[quant]

    return get


def teacher_forced_logits(folder: Path, ids: torch.Tensor) -> np.ndarray:
    """Our decode loop's logits at every position, feeding the given ids."""
    decoder = GenaiDecoder.load(folder, threads=2)
    tokens = ids[0].tolist()
    rows: list[np.ndarray] = []

    def step(logits: np.ndarray) -> int | None:
        rows.append(logits.copy())
        return tokens[len(rows)] if len(rows) < len(tokens) else None

    decoder.generate(tokens[:1], len(tokens), step)
    return np.stack(rows)


def test_fp32_logits_match_pytorch(
    genai_prepared: Callable[[str], Path], wide_reference: Phi3ForCausalLM
) -> None:
    ids = random_ids(24, seed=1)
    with torch.no_grad():
        expected = wide_reference(input_ids=ids).logits[0].numpy()
    actual = teacher_forced_logits(genai_prepared("fp32"), ids)
    diff = float(np.abs(actual - expected).max())
    print(f"genai fp32 max abs logits diff: {diff:.3g}")
    assert diff < 1e-4


def test_int4_graph_quantizes_the_lm_head(genai_prepared: Callable[[str], Path]) -> None:
    folder = genai_prepared("int4")
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    kinds = {node.op_type for node in graph.node}
    head = [node.op_type for node in graph.node if "lm_head" in node.name]
    assert "GroupQueryAttention" in kinds
    assert head == ["MatMulNBits"]
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["builder"] == "genai"
    assert manifest["quantization"]["precision"] == "int4"
    assert "int4-genai" in folder.name


def test_genai_builder_rejects_int8(phi3_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="--builder genai makes int4 or fp32, not int8"):
        prepare_model(phi3_checkpoint, quant="int8", cache_dir=tmp_path, builder="genai")


def test_missing_builder_venv_is_a_clear_error(
    phi3_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment variable is the documented way to point at the builder.
    monkeypatch.setenv("HELPLINE_GENAI_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(ModelPrepareError, match="the genai model builder needs"):
        prepare_model(phi3_checkpoint, quant="int4", cache_dir=tmp_path, builder="genai")
