"""``prepare_model`` on a tiny random model with Phi-4-mini's structure.

GQA with 24 attention heads and 8 KV heads, ``partial_rotary_factor`` 0.75,
LongRoPE scaling and tied embeddings over the full 200,064-token vocab; only
the width (192) and depth (2 layers) are cut down. Each quantization is
exported once per session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import pytest
import torch
from transformers import Phi3ForCausalLM

from bot.errors import ModelPrepareError
from llm.local.export import load_ort_causal_lm
from llm.local.prepare import MANIFEST_FILE, find_prepared, prepare_model
from tests.llm.local.tiny_phi import CHAT_TEMPLATE, HEAD_DIM, REPO_ROOT, VOCAB, random_ids

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def prepared(phi3_checkpoint: Path, llm_cache: Path) -> Callable[[str], Path]:
    """Prepare the tiny Phi-3 once per quantization and session."""
    done: dict[str, Path] = {}

    def get(quant: str) -> Path:
        if quant not in done:
            done[quant] = prepare_model(
                phi3_checkpoint, quant=quant, cache_dir=llm_cache, progress=False
            )
        return done[quant]

    return get


def _ort_logits(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    model = load_ort_causal_lm(folder)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    return torch.as_tensor(out.logits)


def test_fp32_logits_match_pytorch_with_kv_cache(
    prepared: Callable[[str], Path], reference: Phi3ForCausalLM
) -> None:
    ids = random_ids(24, seed=1)
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
    model = load_ort_causal_lm(prepared("fp32"))
    first = model(input_ids=ids[:, :20], attention_mask=torch.ones(1, 20, dtype=torch.int64))
    logits = [torch.as_tensor(first.logits)]
    past = first.past_key_values
    for position in range(20, 24):
        mask = torch.ones(1, position + 1, dtype=torch.int64)
        step = model(
            input_ids=ids[:, position : position + 1], attention_mask=mask, past_key_values=past
        )
        logits.append(torch.as_tensor(step.logits))
        past = step.past_key_values
    diff = (torch.cat(logits, dim=1) - expected).abs().max().item()
    print(f"fp32 max abs logits diff: {diff:.3g}")
    assert diff < 1e-4


def test_optimum_kv_heads_bug_still_needs_the_workaround(prepared: Callable[[str], Path]) -> None:
    """Canary: when optimum-onnx sizes phi3's empty cache right, drop the workaround."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
    from optimum.onnxruntime import ORTModelForCausalLM

    model = ORTModelForCausalLM.from_pretrained(prepared("fp32"), file_name="model.onnx")
    ids = random_ids(4, seed=3)
    with pytest.raises(
        InvalidArgument, match=r"(?s)past_key_values\.\d+\.key.*Got: 24 Expected: 8"
    ):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_greedy_agrees_with_pytorch(
    quant: str, prepared: Callable[[str], Path], reference: Phi3ForCausalLM
) -> None:
    ids = random_ids(100, seed=2)
    with torch.no_grad():
        expected = reference(input_ids=ids).logits.argmax(-1)
    actual = _ort_logits(prepared(quant), ids).argmax(-1)
    agreement = (actual == expected).float().mean().item()
    echo = (expected == ids).float().mean().item()
    print(f"{quant} top-1 agreement with PyTorch: {agreement:.2%} (echo {echo:.2%})")
    assert agreement >= 0.9


def test_int4_quantizes_the_lm_head(prepared: Callable[[str], Path]) -> None:
    graph = onnx.load(str(prepared("int4") / "model.onnx"), load_external_data=False).graph
    head = [node for node in graph.node if "lm_head" in node.name]
    assert [node.op_type for node in head] == ["MatMulNBits"]
    manifest = json.loads((prepared("int4") / MANIFEST_FILE).read_text())
    assert manifest["untied"] is True
    assert manifest["quantization"]["block_size"] == 32


def test_manifest_describes_the_model(prepared: Callable[[str], Path]) -> None:
    folder = prepared("int8")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["model_type"] == "phi3"
    assert (manifest["num_attention_heads"], manifest["num_key_value_heads"]) == (24, 8)
    assert (manifest["head_dim"], manifest["vocab_size"]) == (HEAD_DIM, VOCAB)
    assert manifest["max_context"] == 4096
    assert manifest["eos_token_ids"] == [2]
    assert "past_key_values.1.value" in manifest["inputs"]
    assert "present.1.key" in manifest["outputs"]
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["chat_template"] == CHAT_TEMPLATE
    for name in ("config.json", "generation_config.json", "tokenizer.json"):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(".work-*"))


def test_rerun_skips_and_needs_no_torch(
    prepared: Callable[[str], Path], phi3_checkpoint: Path, llm_cache: Path
) -> None:
    folder = prepared("int8")
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    manifest = (folder / MANIFEST_FILE).read_bytes()
    script = (
        "import sys; from pathlib import Path; from llm.local.prepare import prepare_model;"
        f"print(prepare_model(Path({str(phi3_checkpoint)!r}), quant='int8',"
        f" cache_dir=Path({str(llm_cache)!r}), progress=False));"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [str(folder), "False"]
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert (folder / MANIFEST_FILE).read_bytes() == manifest
    assert find_prepared(phi3_checkpoint, "int8", llm_cache) == folder


def test_find_prepared_follows_latest_pointer(
    prepared: Callable[[str], Path], phi3_checkpoint: Path, llm_cache: Path, tmp_path: Path
) -> None:
    folder = prepared("fp32")
    # A folder from other tool versions (another key) is still found by the pointer.
    moved = llm_cache / (folder.name[:-12] + "0" * 12)
    folder.rename(moved)
    try:
        pointer = llm_cache / f"{phi3_checkpoint.name}-fp32-latest.json"
        data = json.loads(pointer.read_text())
        pointer.write_text(json.dumps(data | {"folder": moved.name}))
        assert find_prepared(phi3_checkpoint, "fp32", llm_cache) == moved
        assert find_prepared(phi3_checkpoint, "int4", tmp_path) is None
    finally:
        moved.rename(folder)


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="model source not found"):
        prepare_model(tmp_path / "nowhere", cache_dir=tmp_path / "cache")


def test_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match=r"has no config\.json"):
        prepare_model(tmp_path, cache_dir=tmp_path / "cache")


def test_unsupported_architecture_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "teleporter"}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelPrepareError, match="unsupported architecture 'teleporter'") as info:
        prepare_model(tmp_path, cache_dir=tmp_path / "cache")
    assert "phi3" in str(info.value)
    assert "\n" not in str(info.value)


def test_not_enough_disk_is_a_clear_error(phi3_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="not enough free disk"):
        prepare_model(phi3_checkpoint, cache_dir=tmp_path, disk_factor=1e9)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".source")] == []


def test_unknown_quant_and_bad_gguf_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="unknown quantization 'int3'"):
        prepare_model(None, quant="int3", cache_dir=tmp_path)
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(ModelPrepareError, match="not a readable GGUF file"):
        prepare_model(tmp_path / "broken.gguf", cache_dir=tmp_path / "cache")


def test_cli_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    with pytest.raises(SystemExit) as info:
        main(["model", "prepare", str(tmp_path / "nowhere"), "--cache", str(tmp_path)])
    assert info.value.code == 1
    assert "error: model source not found" in capsys.readouterr().err
