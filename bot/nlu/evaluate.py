"""Scoring an NLU on held-out data: accuracy, out-of-scope AUROC, routing, latency.

Test examples whose intent is not among the training intents count as out of
scope. Routing accuracy is the share of test examples whose routed outcome is
right: an in-scope example predicted with its intent at or above the
threshold, or an out-of-scope example below it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.dialogue.nlu import ParseResult
from bot.errors import NLUError
from bot.nlu.data import load_nlu
from bot.nlu.embedded import EmbeddedNLU

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"
_WARMUP = 5


@dataclass
class Outcome:
    """One parsed test example."""

    text: str
    intent: str
    top: str
    score: float
    millis: float

    @property
    def in_scope(self) -> bool:
        """Return whether the gold intent is a known intent."""
        return self.intent != OUT_OF_SCOPE


def auroc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Return the area under the ROC curve, or ``None`` without both classes.

    Ties count one half, as in the Mann-Whitney statistic.
    """
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def routing_accuracy(outcomes: Sequence[Outcome], threshold: float) -> float:
    """Return the share of outcomes routed right at ``threshold``."""
    if not outcomes:
        return 0.0
    right = sum(
        (o.score >= threshold and o.top == o.intent) if o.in_scope else o.score < threshold
        for o in outcomes
    )
    return right / len(outcomes)


def tune_threshold(outcomes: Sequence[Outcome]) -> float:
    """Return the threshold that maximises routing accuracy on ``outcomes``.

    Among equally good thresholds the midpoint of the best run is chosen, so
    the choice does not sit on one example's score.
    """
    scores = sorted({o.score for o in outcomes})
    candidates = (
        [scores[0] - 1e-6]
        + [(a + b) / 2 for a, b in itertools.pairwise(scores)]
        + [scores[-1] + 1e-6]
    )
    accuracy = [routing_accuracy(outcomes, t) for t in candidates]
    best = max(accuracy)
    winners = [t for t, a in zip(candidates, accuracy, strict=True) if a == best]
    return float(winners[len(winners) // 2])


#: Parses one text; the embedded NLU in-process, Rasa over HTTP.
ParseFn = Callable[[str], Awaitable[ParseResult]]


async def parse_examples(
    parse: ParseFn, known: set[str], paths: Sequence[Path], timed: bool = True
) -> list[Outcome]:
    """Parse every example of ``paths`` one by one, timing each parse.

    Examples whose intent is not in ``known`` count as out of scope.
    """
    examples = load_nlu(paths).examples
    for example in examples[:_WARMUP]:
        await parse(example.text)
    outcomes = []
    for example in examples:
        start = time.perf_counter() if timed else 0.0
        result = await parse(example.text)
        millis = (time.perf_counter() - start) * 1000 if timed else 0.0
        gold = example.intent if example.intent in known else OUT_OF_SCOPE
        top = result.ranking[0].name if result.ranking else OUT_OF_SCOPE
        outcomes.append(Outcome(example.text, gold, top, 1.0 - result.oos_score, millis))
    return outcomes


def run_examples(nlu: EmbeddedNLU, paths: Sequence[Path], timed: bool = True) -> list[Outcome]:
    """Parse every example of ``paths`` with the embedded NLU on this thread."""

    async def parse(text: str) -> ParseResult:
        return nlu.parse_sync(text)

    return asyncio.run(parse_examples(parse, set(nlu.intents), paths, timed))


async def score(
    parse: ParseFn,
    known: set[str],
    test: Sequence[Path],
    *,
    default_threshold: float,
    tune: Sequence[Path] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Tune the threshold on ``tune`` (if any) and score ``test``.

    Returns:
        The metrics, and one prediction record per test example.
    """
    threshold, source = default_threshold, "default"
    if tune:
        tuned = await parse_examples(parse, known, tune, timed=False)
        threshold, source = tune_threshold(tuned), "tuned"
        _LOGGER.info("Tuned the threshold to %.4f.", threshold)
    outcomes = await parse_examples(parse, known, test)
    report = summarise(outcomes, threshold)
    report["threshold_source"] = source
    return report, predictions(outcomes, threshold)


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write prediction records as JSON."""
    text = json.dumps(rows, indent=1, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def summarise(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """Return the metrics of ``outcomes`` at ``threshold``."""
    if not outcomes:
        raise NLUError("the test files hold no examples")
    inside = [o for o in outcomes if o.in_scope]
    accuracy = sum(o.top == o.intent for o in inside) / len(inside) if inside else None
    positive = np.array([o.in_scope for o in outcomes])
    scores = np.array([o.score for o in outcomes])
    millis = np.array([o.millis for o in outcomes])
    return {
        "in_scope_accuracy": accuracy,
        "oos_auroc": auroc(positive, scores),
        "routing_accuracy": routing_accuracy(outcomes, threshold),
        "threshold": threshold,
        "latency_p50_ms": float(np.percentile(millis, 50)),
        "latency_p99_ms": float(np.percentile(millis, 99)),
        "n_test": len(outcomes),
        "n_in_scope": len(inside),
        "n_out_of_scope": len(outcomes) - len(inside),
    }


def predictions(outcomes: Sequence[Outcome], threshold: float) -> list[dict[str, Any]]:
    """Return one ``{text, intent, predicted, confidence}`` record per outcome."""
    return [
        {
            "text": o.text,
            "intent": o.intent,
            "predicted": o.top if o.score >= threshold else OUT_OF_SCOPE,
            "confidence": round(o.score, 6),
        }
        for o in outcomes
    ]


def evaluate(
    train: Sequence[Path],
    test: Sequence[Path],
    encoder_dir: Path,
    *,
    tune: Sequence[Path] = (),
    predictions_path: Path | None = None,
    intra_op_threads: int = 1,
) -> dict[str, Any]:
    """Train on ``train``, score on ``test`` and return the metrics.

    Args:
        train: NLU files to train on.
        test: NLU files to score.
        encoder_dir: A prepared encoder folder.
        tune: NLU files on which to tune the threshold; the trained default when empty.
        predictions_path: Where to write the per-example predictions as JSON.
        intra_op_threads: ONNX Runtime threads per inference.
    """
    start = time.perf_counter()
    nlu = EmbeddedNLU.train(train, encoder_dir, intra_op_threads=intra_op_threads)
    train_seconds = time.perf_counter() - start

    async def parse(text: str) -> ParseResult:
        return nlu.parse_sync(text)

    report, rows = asyncio.run(
        score(parse, set(nlu.intents), test, default_threshold=nlu.threshold, tune=tune)
    )
    if predictions_path is not None:
        write_predictions(predictions_path, rows)
    report.update(
        backend="embedded",
        n_intents=len(nlu.intents),
        n_train=len(nlu.classifier.labels),
        train_seconds=train_seconds,
    )
    return report
