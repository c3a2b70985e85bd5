"""``--builder genai``: build the ONNX model with onnxruntime-genai's model builder.

The builder writes a graph made for onnxruntime-genai's runtime (fused
attention with a shared KV buffer, MatMulNBits int4 with block 32 including
the LM head), which decodes faster on this CPU than the Optimum export (see
the README's LLM figures). It imports classes that only transformers 5.x has,
while Optimum pins transformers 4.x, so it runs in its own venv,
``.venv-genai`` (``make setup`` creates it with
``scripts/setup-bench-peers.sh genai``), never in the platform venv. It reads
a transformers checkpoint: a GGUF source is dequantized and saved first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from bot.errors import ModelPrepareError
from bot.toolchain import package_version

if TYPE_CHECKING:
    from llm.local.export import LoadedCheckpoint
    from llm.local.source import ModelSource

ROOT = Path(__file__).resolve().parents[2]
GENAI_QUANTS = {"int4": "int4", "fp32": "fp32"}
BUILDER_TIMEOUT_S = 3600.0


def builder_python() -> Path:
    """The interpreter of the builder's venv (``HELPLINE_GENAI_PYTHON`` overrides it).

    Raises:
        ModelPrepareError: There is no such interpreter.
    """
    path = Path(os.environ.get("HELPLINE_GENAI_PYTHON", ROOT / ".venv-genai" / "bin" / "python"))
    if not path.is_file():
        raise ModelPrepareError(
            f"the genai model builder needs {path}; run `scripts/setup-bench-peers.sh genai` "
            "(make setup does) or set HELPLINE_GENAI_PYTHON"
        )
    return path


def genai_settings(quant: str) -> dict[str, Any]:
    """What a genai build depends on besides the source: the builder and its precision.

    Raises:
        ModelPrepareError: The builder cannot make ``quant``.
    """
    if quant not in GENAI_QUANTS:
        raise ModelPrepareError(
            f"--builder genai makes {' or '.join(GENAI_QUANTS)}, not {quant}; "
            "use --builder optimum for int8"
        )
    return {
        "builder": "onnxruntime-genai",
        "precision": GENAI_QUANTS[quant],
        "onnxruntime-genai": package_version("onnxruntime-genai"),
    }


def build_genai(source: ModelSource, quant: str, work: Path, progress: bool) -> LoadedCheckpoint:
    """Build ``work/out`` with the genai builder; return the loaded checkpoint for the manifest."""
    from llm.local import export

    python = builder_python()
    checkpoint, out = work / "checkpoint", work / "out"
    with tqdm(total=3, unit="step", file=sys.stderr, disable=not progress) as bar:
        bar.set_description(f"load {source.name}")
        loaded = export.load_checkpoint(source.folder, source.gguf_file)
        if source.gguf_file is None:
            checkpoint = source.folder
        else:  # the builder reads safetensors, so save the dequantized weights
            loaded.model.save_pretrained(checkpoint)
            loaded.tokenizer.save_pretrained(checkpoint)
        bar.update(1)
        bar.set_description(f"genai builder {quant}")
        _run_builder(python, checkpoint, out, work / "builder-cache", quant)
        bar.update(1)
        bar.set_description("copy tokenizer")
        export.save_tokenizer(loaded.tokenizer, out)
        bar.update(1)
    return loaded


def _run_builder(python: Path, checkpoint: Path, out: Path, cache: Path, quant: str) -> None:
    """Run ``onnxruntime_genai.models.builder`` and check it made a model."""
    cmd = [str(python), "-m", "onnxruntime_genai.models.builder", "-i", str(checkpoint)]
    cmd += ["-o", str(out), "-p", GENAI_QUANTS[quant], "-e", "cpu", "-c", str(cache)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=BUILDER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelPrepareError(
            f"the genai model builder ran over {BUILDER_TIMEOUT_S:.0f} s"
        ) from exc
    if done.returncode != 0 or not (out / "genai_config.json").is_file():
        tail = (done.stderr + done.stdout).strip().splitlines()[-3:]
        raise ModelPrepareError(f"the genai model builder failed: {' | '.join(tail)}")
    config = json.loads((out / "genai_config.json").read_text(encoding="utf-8"))
    if "decoder" not in config.get("model", {}):
        raise ModelPrepareError("the genai model builder wrote no decoder")
