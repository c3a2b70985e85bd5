"""The ``helpline model`` verb: ``prepare`` exports and quantizes the local model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

DEFAULT_CACHE = Path("var/models/llm")


def register(subparsers: Any) -> None:
    """Add the ``model`` verb with its ``prepare`` sub-verb."""
    model = subparsers.add_parser("model", help="prepare the local language model")
    sub = model.add_subparsers(dest="model_verb", metavar="SUBVERB", required=True)
    prepare = sub.add_parser(
        "prepare",
        help="export a checkpoint or GGUF file to ONNX and quantize it",
        description="Export with Optimum and quantize into the model cache; a rerun "
        "with the same source, quantization and tool versions does nothing.",
    )
    prepare.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=None,
        help="checkpoint folder or GGUF file (default: the embedded SmolLM2-135M-Instruct)",
    )
    prepare.add_argument("--gguf-file", default=None, help="GGUF file name inside SOURCE")
    prepare.add_argument("--quant", choices=("int8", "int4", "fp32"), default="int8")
    prepare.add_argument(
        "--builder",
        choices=("optimum", "genai"),
        default="optimum",
        help="optimum: Optimum export + quantizer; genai: onnxruntime-genai's model builder "
        "(int4/fp32, run by its faster runtime)",
    )
    prepare.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="model cache folder")
    prepare.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    prepare.set_defaults(handler=_prepare)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _prepare(args: argparse.Namespace) -> int:
    from llm.local.prepare import prepare_model

    _setup_logging()
    folder = prepare_model(
        args.source,
        quant=args.quant,
        cache_dir=args.cache,
        gguf_file=args.gguf_file,
        progress=not args.no_progress,
        builder=args.builder,
    )
    print(folder)
    return 0
