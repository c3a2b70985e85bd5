"""The ``helpline nlu`` verb: ``prepare`` the encoder and ``evaluate`` the NLU."""

from __future__ import annotations

import argparse
import asyncio
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
    evaluate.add_argument(
        "--backend",
        choices=("embedding", "embedded", "rasa", "both"),
        default="embedding",
        help="which NLU to score; both scores them side by side on the same data",
    )
    evaluate.add_argument("--epochs", type=int, default=100, help="Rasa DIET epochs")
    evaluate.add_argument("--rasa-venv", type=Path, default=None, help="the Rasa venv")
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
    if not args.json:
        _setup_logging()
    backends = ("embedded", "rasa") if args.backend == "both" else (args.backend,)
    reports = {
        name: _evaluate_one(args, name.replace("embedding", "embedded")) for name in backends
    }
    if len(reports) == 1:
        report = next(iter(reports.values()))
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            for key, value in report.items():
                shown = f"{value:.4f}" if isinstance(value, float) else value
                print(f"{key:>20}: {shown}")
        return 0
    combined = {**reports, "better": better_backend(reports["embedded"], reports["rasa"])}
    if args.json:
        print(json.dumps(combined, indent=2))
    else:
        print(side_by_side(reports))
        print(f"better: {combined['better']}")
    return 0


def _evaluate_one(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """Score one backend; with ``--predictions`` and both, one file per backend."""
    predictions = args.predictions
    if predictions is not None and args.backend == "both":
        predictions = predictions.with_name(f"{predictions.stem}-{backend}{predictions.suffix}")
    if backend == "rasa":
        from bot.nlu.evaluate import write_predictions
        from bot.nlu.rasa.evaluate import evaluate_rasa

        report, rows = asyncio.run(
            evaluate_rasa(
                args.train,
                args.test,
                args.cache / "rasa",
                tune=args.tune,
                venv=args.rasa_venv,
                epochs=args.epochs,
            )
        )
        if predictions is not None:
            write_predictions(predictions, rows)
        return report
    from bot.nlu.encoder import is_prepared, prepare_encoder
    from bot.nlu.evaluate import evaluate

    encoder_dir = args.cache / ENCODER_SUBDIR
    if not is_prepared(encoder_dir):
        _LOGGER.info("Preparing the encoder in %s first.", encoder_dir)
        prepare_encoder(encoder_dir)
    return evaluate(
        args.train,
        args.test,
        encoder_dir,
        tune=args.tune,
        predictions_path=predictions,
        intra_op_threads=args.threads,
    )


#: The metrics compared side by side, in order.
COMPARED = (
    "in_scope_accuracy",
    "oos_auroc",
    "routing_accuracy",
    "threshold",
    "latency_p50_ms",
    "latency_p99_ms",
    "train_seconds",
)


def better_backend(embedded: dict[str, Any], rasa: dict[str, Any]) -> str:
    """Return the backend that routes more test messages right; ties go to AUROC, then speed."""

    def key(report: dict[str, Any]) -> tuple[float, float, float]:
        return (
            round(report["routing_accuracy"], 4),
            round(report["oos_auroc"] or 0.0, 4),
            -report["latency_p50_ms"],
        )

    return "rasa" if key(rasa) > key(embedded) else "embedded"


def side_by_side(reports: dict[str, dict[str, Any]]) -> str:
    """Return a plain-text table of :data:`COMPARED` for each backend."""
    names = list(reports)
    lines = [f"{'':>20}  " + "  ".join(f"{n:>10}" for n in names)]
    for metric in COMPARED:
        cells = []
        for name in names:
            value = reports[name].get(metric)
            cells.append(f"{value:>10.4f}" if isinstance(value, float) else f"{value!s:>10}")
        lines.append(f"{metric:>20}  " + "  ".join(cells))
    return "\n".join(lines)
