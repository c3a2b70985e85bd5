"""The ``helpline nlu`` verb: ``prepare`` the encoder and ``evaluate`` the NLU."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

DEFAULT_CACHE = Path("var/models")
ENCODER_SUBDIR = "minilm-int8"


def register(subparsers: Any) -> None:
    """Add the ``nlu`` verb with its ``prepare`` and ``evaluate`` sub-verbs."""
    nlu = subparsers.add_parser("nlu", help="prepare and score the embedded NLU")
    sub = nlu.add_subparsers(dest="nlu_verb", metavar="SUBVERB", required=True)

    prepare = sub.add_parser("prepare", help="export and quantize the sentence encoder")
    prepare.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="model cache folder")
    prepare.set_defaults(handler=_prepare)

    evaluate = sub.add_parser("evaluate", help="train on one NLU file set and score another")
    evaluate.add_argument("--train", type=Path, nargs="+", required=True, help="training files")
    evaluate.add_argument("--test", type=Path, nargs="+", required=True, help="test files")
    evaluate.add_argument("--tune", type=Path, nargs="+", default=[], help="threshold tuning")
    evaluate.add_argument("--predictions", type=Path, default=None, help="write predictions")
    evaluate.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="model cache folder")
    evaluate.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(handler=_evaluate)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _prepare(args: argparse.Namespace) -> int:
    from bot.nlu.encoder import prepare_encoder

    _setup_logging()
    folder = prepare_encoder(args.cache / ENCODER_SUBDIR)
    print(folder)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from bot.nlu.encoder import is_prepared, prepare_encoder
    from bot.nlu.evaluate import evaluate

    if not args.json:
        _setup_logging()
    encoder_dir = args.cache / ENCODER_SUBDIR
    if not is_prepared(encoder_dir):
        _LOGGER.info("Preparing the encoder in %s first.", encoder_dir)
        prepare_encoder(encoder_dir)
    report = evaluate(
        args.train,
        args.test,
        encoder_dir,
        tune=args.tune,
        predictions_path=args.predictions,
        intra_op_threads=args.threads,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0
