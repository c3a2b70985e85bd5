"""A tiny random model with Phi-4-mini's structure, for the export tests.

GQA with 24 attention heads and 8 KV heads, ``partial_rotary_factor`` 0.75,
LongRoPE scaling and tied embeddings over the full 200,064-token vocab; only
the width (192) and depth (2 layers) are cut down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Phi3Config, Phi3ForCausalLM, PreTrainedTokenizerFast

VOCAB = 200064
HEADS, KV_HEADS, HIDDEN = 24, 8, 192
HEAD_DIM = HIDDEN // HEADS
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SENTENCES = [
    "Where is my order? It shipped on Monday.",
    "I want to return the blue shoes I bought last week.",
    "Can I change the delivery address of my parcel?",
    "The capital of France is Paris.",
]
REPO_ROOT = Path(__file__).resolve().parents[3]


def phi3_config(hidden: int = HIDDEN) -> Phi3Config:
    """Phi-4-mini's structure at width ``hidden`` (head size ``hidden // 24``)."""
    rotary_half = int(hidden // HEADS * 0.75) // 2
    return Phi3Config(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        partial_rotary_factor=0.75,
        max_position_embeddings=131072,
        original_max_position_embeddings=4096,
        rope_scaling={
            "type": "longrope",
            "short_factor": [1.0 + 0.1 * i for i in range(rotary_half)],
            "long_factor": [2.0 + 0.5 * i for i in range(rotary_half)],
        },
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def save_tokenizer(folder: Path) -> None:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<unk>", "<s>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"]
    tokenizer.train_from_iterator(SENTENCES, trainers.BpeTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        pad_token="<unk>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)


def build_phi3_checkpoint(folder: Path, hidden: int = HIDDEN) -> Path:
    """Save a random Phi-4-mini-shaped checkpoint and its tokenizer in ``folder``."""
    torch.manual_seed(0)
    model = Phi3ForCausalLM(phi3_config(hidden)).eval()
    # A trained model is confident at most positions; a random one picks among
    # 200k near-equal logits wherever its random layers outweigh the token's
    # embedding, and 4-bit noise flips a coin there: 86-88 % agreement with
    # every RTN/HQQ variant tried at the default init. Longer, equal-norm
    # embedding rows give most positions a clear winner, as training does.
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        norms = embed.norm(dim=1, keepdim=True).clamp_min(1e-6)
        embed.mul_(1.5 * norms.mean() / norms)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(folder)
    save_tokenizer(folder)
    return folder


def random_ids(length: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(3, VOCAB, size=(1, length), dtype=np.int64))
