"""The heavy half of ``helpline model prepare``: load, untie, export, quantize.

Everything here imports torch, transformers, Optimum or the ONNX Runtime
quantizers, so :mod:`llm.local.prepare` imports this module only when there
is work to do; a rerun that finds its output in the cache never loads torch.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.toolchain import int8_options, quiet_third_party

if TYPE_CHECKING:
    pass

_LOGGER = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
TASK = "text-generation-with-past"
# MatMulNBits settings. Symmetric blocks store no zero points, so the weights
# are smaller and the kernels simpler; on the Phi-4-mini-shaped test model the
# greedy agreement with PyTorch stays above the 90 % bar. Accuracy level 4 lets
# the CPU kernel quantize activations to int8 per block (VNNI/AMX dot products),
# the fastest MatMulNBits path on this machine's CPUs.
INT4_BLOCK_SIZE = 32
INT4_SYMMETRIC = True
INT4_ACCURACY_LEVEL = 4
# The embedding Gather is quantized too (GatherBlockQuantized): with untied
# weights it is a second vocab x hidden matrix, 2.4 GB in fp32 for Phi-4-mini.
INT4_OP_TYPES = ("MatMul", "Gather")
INT4_QUANT_AXES = (("MatMul", 0), ("Gather", 1))


def int4_settings() -> dict[str, Any]:
    """Return the int4 settings, for the manifest and the cache key."""
    return {
        "method": "onnxruntime MatMulNBitsQuantizer",
        "bits": 4,
        "block_size": INT4_BLOCK_SIZE,
        "symmetric": INT4_SYMMETRIC,
        "accuracy_level": INT4_ACCURACY_LEVEL,
        "op_types": list(INT4_OP_TYPES),
    }


@dataclass
class LoadedCheckpoint:
    """A PyTorch model and its tokenizer, loaded for the export."""

    model: Any
    tokenizer: Any


def load_checkpoint(folder: Path, gguf_file: str | None) -> LoadedCheckpoint:
    """Load the model in fp32 and its tokenizer; a GGUF file is dequantized.

    Args:
        folder: The checkpoint folder, or the folder that holds the GGUF file.
        gguf_file: The GGUF file name inside ``folder``, or ``None``.

    Returns:
        The model in eval mode and the tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    with quiet_third_party():
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    model.eval()
    if gguf_file:
        _fix_gguf_eos(model, tokenizer)
    return LoadedCheckpoint(model=model, tokenizer=tokenizer)


def _fix_gguf_eos(model: Any, tokenizer: Any) -> None:
    """Take the EOS token from the GGUF metadata (the model's generation config).

    transformers 4.57 builds some GGUF tokenizers with the BOS token as EOS
    (SmolLM2: ``<|im_start|>`` instead of ``<|im_end|>``), while the config it
    reads from the same file has the right id.
    """
    eos = getattr(model.generation_config, "eos_token_id", None)
    eos = eos[0] if isinstance(eos, list) and eos else eos
    if isinstance(eos, int) and tokenizer.eos_token_id != eos:
        token = tokenizer.convert_ids_to_tokens(eos)
        _LOGGER.info("Setting the GGUF tokenizer's EOS token to %r (id %d).", token, eos)
        tokenizer.eos_token = token


def untie_lm_head(model: Any) -> bool:
    """Give the LM head its own copy of the embedding matrix.

    A tied head is exported as a MatMul over a transposed Gather weight, which
    weight-only quantizers skip ("doesn't have const weight"); with its own
    initializer the head is quantized like every other projection.

    Returns:
        Whether the head was tied (and is now untied).
    """
    import torch

    head = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    if head is None or head.weight.data_ptr() != embed.weight.data_ptr():
        return False
    head.weight = torch.nn.Parameter(embed.weight.detach().clone())
    model.config.tie_word_embeddings = False
    if getattr(model.config, "text_config", None) is not None:
        model.config.text_config.tie_word_embeddings = False
    return True


def export_onnx(model: Any, out: Path) -> None:
    """Export ``model`` for text generation with past key values into ``out``."""
    from optimum.exporters.onnx import onnx_export_from_model

    with quiet_third_party():
        onnx_export_from_model(model, output=out, task=TASK, do_validation=False)
    if not (out / MODEL_FILE).is_file():
        found = sorted(p.name for p in out.glob("*.onnx"))
        raise RuntimeError(f"the export wrote {found} instead of {MODEL_FILE}")
    if not (out / "generation_config.json").is_file() and model.generation_config is not None:
        model.generation_config.save_pretrained(out)


def has_external_data(folder: Path) -> bool:
    """Return whether the ONNX model in ``folder`` keeps weights in other files."""
    return any(p.name != MODEL_FILE for p in folder.iterdir() if "onnx" in p.name)


def quantize_int8(export_dir: Path, out: Path, arch: str) -> dict[str, Any]:
    """Quantize dynamically to int8, per channel, for the CPU's instruction set."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    with quiet_third_party():
        quantizer = ORTQuantizer.from_pretrained(export_dir, file_name=MODEL_FILE)
        factory = getattr(AutoQuantizationConfig, arch)
        config = factory(is_static=False, per_channel=True, **int8_options(arch))
        quantizer.quantize(
            quantization_config=config,
            save_dir=out,
            file_suffix="",
            use_external_data_format=has_external_data(export_dir),
        )
    return {"method": "optimum ORTQuantizer dynamic", "per_channel": True, "arch": arch}


def quantize_int4(export_dir: Path, out: Path) -> dict[str, Any]:
    """Quantize MatMul and Gather weights to 4 bits in blocks (MatMulNBits)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    with quiet_third_party():
        quantizer = MatMulNBitsQuantizer(
            str(export_dir / MODEL_FILE),
            block_size=INT4_BLOCK_SIZE,
            is_symmetric=INT4_SYMMETRIC,
            accuracy_level=INT4_ACCURACY_LEVEL,
            op_types_to_quantize=INT4_OP_TYPES,
            quant_axes=INT4_QUANT_AXES,
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(out / MODEL_FILE), has_external_data(export_dir))
    return int4_settings()


def copy_side_files(export_dir: Path, out: Path) -> None:
    """Copy the config files of the export next to a quantized model."""
    for path in export_dir.iterdir():
        if path.suffix == ".json" and not (out / path.name).exists():
            shutil.copy2(path, out / path.name)


def save_tokenizer(tokenizer: Any, out: Path) -> None:
    """Save the tokenizer with its chat template inside ``tokenizer_config.json``.

    Recent transformers write the template to ``chat_template.jinja``; the
    runtime reads only ``tokenizer_config.json``, so the template goes there too.
    """
    tokenizer.save_pretrained(out)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    template = getattr(tokenizer, "chat_template", None)
    if template and not config.get("chat_template"):
        config["chat_template"] = template
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    if not (out / "tokenizer.json").is_file():
        raise RuntimeError("the tokenizer has no fast (tokenizer.json) version")


def onnx_io_names(model_path: Path) -> tuple[list[str], list[str]]:
    """Return the input and output names of an ONNX graph, without its weights."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


def load_ort_causal_lm(folder: Path, **kwargs: Any) -> Any:
    """Load a prepared folder with Optimum's ``ORTModelForCausalLM``, KV heads fixed.

    optimum-onnx 0.1.0 reads ``num_key_value_heads`` from the config only for
    a fixed list of model types that lacks ``phi3`` (and others), and sizes the
    empty first-step KV cache with ``num_attention_heads`` instead, so the
    first forward of a GQA model fails with "past_key_values.N.key ... Got: 24
    Expected: 8". Setting the instance attribute from the config fixes it.

    Args:
        folder: A folder written by :func:`llm.local.prepare.prepare_model`.
        **kwargs: Passed on to ``ORTModelForCausalLM.from_pretrained``.
    """
    from optimum.onnxruntime import ORTModelForCausalLM

    with quiet_third_party():
        model = ORTModelForCausalLM.from_pretrained(folder, file_name=MODEL_FILE, **kwargs)
    heads = getattr(model.config, "num_key_value_heads", None)
    if heads is not None and model.num_key_value_heads != heads:
        _LOGGER.debug("Setting num_key_value_heads to %d for %s.", heads, model.config.model_type)
        model.num_key_value_heads = heads
    return model
