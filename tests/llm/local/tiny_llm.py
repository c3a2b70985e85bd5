"""A tiny random Llama (GQA) with a byte-level BPE tokenizer and a chat template, exported to ONNX.

Built once per test session (a few seconds): the runtime and the OpenAI endpoint tests
run on it. Only the tests import torch, transformers and Optimum; the runtime does not.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CORPUS = [
    "Hello! How can I help you with your order today?",
    "Your parcel ships in two days. Returns are free within 30 days.",
    "Le café coûte 3 € — naïve façade, jalapeño, 東京, emoji 😀 and 🚀.",
    "What is the capital of France? The capital of France is Paris.",
    "system user assistant refund invoice delivery address password",
]


def build_tokenizer(folder: Path) -> None:
    """Train a byte-level BPE tokenizer, with a BOS post-processor, and save it as transformers does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    # Like Llama's tokenizer, it adds BOS itself; chat prompts must not get a second one.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    # Keep the template inside tokenizer_config.json, where model prepare puts it.
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)


def build_tiny_model(folder: Path) -> Path:
    """Write the PyTorch checkpoint to ``folder/torch`` and its ONNX export to ``folder/onnx``."""
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch_dir, onnx_dir = folder / "torch", folder / "onnx"
    if (onnx_dir / "model.onnx").is_file():
        return folder
    build_tokenizer(torch_dir)
    tokenizer = AutoTokenizer.from_pretrained(torch_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).eval().save_pretrained(torch_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # The tracer warns about data-dependent branches.
        main_export(
            str(torch_dir), output=onnx_dir, task="text-generation-with-past", do_validation=False
        )
    build_tokenizer(onnx_dir)
    return folder
