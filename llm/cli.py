"""The ``helpline model`` and ``helpline serve-model`` verbs.

``model prepare`` exports and quantizes the local model; ``serve-model`` runs it as a
worker process (see :mod:`llm.serve`).
"""

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
    _register_serve(subparsers)


def _register_serve(subparsers: Any) -> None:
    """Add the ``serve-model`` verb."""
    serve = subparsers.add_parser(
        "serve-model",
        help="serve the local model as a worker behind the OpenAI-compatible API",
        description="Load the configured local model (llm.local) and serve /v1/chat/completions, "
        "/v1/models, /healthz and /metrics; point llm.local.url of the app at one or more "
        "workers. SIGTERM finishes the requests in flight and refuses new ones with 503.",
    )
    # SUPPRESS: without it, this default would replace a --config given before the verb.
    serve.add_argument(
        "--config",
        "-c",
        default=argparse.SUPPRESS,
        help="config file (default ./helpline.yml; may also come before the verb)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8081, help="port to listen on")
    serve.set_defaults(handler=_serve)


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


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from bot.config import load_config, validate_llm_section
    from bot.logs import setup_logging
    from llm.serve import serve
    from llm.settings import LLMSettings

    config = load_config(args.config)
    setup_logging(config.logging.level, config.logging.json_format)
    settings = validate_llm_section(config, LLMSettings)
    return asyncio.run(serve(settings, config.models.cache_dir, host=args.host, port=args.port))
