"""How likely an answer is right, from retrieval agreement and the groundedness checks.

The old formula weighed token log-probabilities, which measure fluency, not
truth: on held-out questions it told right from wrong drafts no better than
chance (AUROC 0.46). This one asks whether the knowledge base covers the
question, which is what decides whether a quoted or a grounded answer is right:

* ``top``: the cosine similarity of the best retrieved passage;
* ``unit``: the similarity of the best sentence, list item or table row of
  the chosen section (:mod:`llm.extractive`);
* ``margin``: how far the chosen section leads the next one;
* ``lexical``: the share of the question's content words that occur in the
  chosen section (a paraphrase scores high on embeddings alone).

They are combined by a logistic regression, :data:`WEIGHTS`, fitted with
:func:`fit` on the development set ``tests/data/kb/dev.yml`` (answerable
questions labelled by whether the extractive answer holds the expected
facts, out-of-KB questions labelled wrong); ``helpline kb evaluate`` reports
the AUROC on any set and a test refits the weights. A model's draft that fails
a groundedness check (:mod:`llm.grounding`) keeps only
:data:`FAILED_CHECK_FACTOR` of the score, so it is never shown.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Intercept, then the weights of top, unit, margin and lexical (see fit()).
WEIGHTS = (-3.2, 1.8, 5.0, 4.1, 0.6)
#: The calibrated threshold: answers below it are not shown as final.
DEFAULT_LOCAL_THRESHOLD = 0.77
#: What a draft that failed a groundedness check keeps of its score.
FAILED_CHECK_FACTOR = 0.25

HEDGES = (
    r"\bI (?:do not|don't|dont) know\b",
    r"\bI'?m not (?:sure|certain)\b",
    r"\bI am not (?:sure|certain)\b",
    r"\b(?:cannot|can't|could not|couldn't|unable to) find\b",
    r"\b(?:do not|don't) have (?:any )?(?:information|details|data)\b",
    r"\bno information\b",
    r"\bnot (?:mentioned|covered|specified|stated) in the (?:passages?|articles?|context)\b",
    r"\bthe passages? (?:do|does) not\b",
    r"\bI (?:cannot|can't) (?:answer|help with)\b",
    r"\bI'?m (?:afraid|sorry),? (?:I|but)\b",
    r"\bunfortunately,? I\b",
    r"\bconnect you (?:with|to) (?:a|an|one of)\b",
)
_HEDGE = re.compile("|".join(HEDGES), re.IGNORECASE)


def hedges(text: str) -> bool:
    """Return whether ``text`` refuses or voices uncertainty."""
    return _HEDGE.search(text.replace("\u2019", "'")) is not None


@dataclass(frozen=True)
class Features:
    """The retrieval signals of one answer (see the module docstring)."""

    top: float
    unit: float
    margin: float
    lexical: float

    def vector(self) -> tuple[float, float, float, float]:
        """The features in the order of :data:`WEIGHTS` (after the intercept)."""
        return (self.top, self.unit, self.margin, self.lexical)


def _sigmoid(value: float) -> float:
    if value < -60:
        return 0.0
    return 1.0 / (1.0 + math.exp(-value))


def relevance(features: Features, weights: Sequence[float] = WEIGHTS) -> float:
    """Return the probability that the knowledge base answers the question."""
    z = weights[0] + sum(w * x for w, x in zip(weights[1:], features.vector(), strict=True))
    return _sigmoid(z)


def score(features: Features, checks_passed: bool = True) -> float:
    """Return the confidence of an answer in ``[0, 1]``.

    Args:
        features: The retrieval signals of the question and the chosen section.
        checks_passed: Whether the text passed the groundedness checks (a
            quote passes by construction).
    """
    base = relevance(features)
    return base if checks_passed else base * FAILED_CHECK_FACTOR


def fit(
    rows: Sequence[Features], labels: Sequence[bool], *, l2: float = 0.1, steps: int = 50
) -> tuple[float, ...]:
    """Fit :data:`WEIGHTS` by L2-regularised logistic regression (Newton's method).

    The intercept is not regularised. The result is rounded to one decimal,
    so a refit on the same data is stable.
    """
    x = np.array([[1.0, *r.vector()] for r in rows], dtype=np.float64)
    y = np.array(labels, dtype=np.float64)
    penalty = l2 * np.diag([0.0] + [1.0] * (x.shape[1] - 1))
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return tuple(round(float(v), 1) for v in w)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Return the area under the ROC curve (ties count half); ``None`` without both labels."""
    good = [s for s, y in zip(scores, labels, strict=True) if y]
    bad = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not good or not bad:
        return None
    wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return wins / (len(good) * len(bad))


def best_threshold(
    scores: Sequence[float], labels: Sequence[bool], wrong_cost: float = 5.0
) -> float:
    """Return the threshold that maximises right answers minus ``wrong_cost`` x wrong ones.

    Showing a wrong answer is much worse than handing off a question the bot
    could have answered (the customer acts on it), hence the cost. Ties go
    to the middle of the best interval; rounded to 0.01.
    """
    candidates = sorted({0.0, 1.0, *scores})
    edges = [(a + b) / 2 for a, b in itertools.pairwise(candidates)]
    if not edges:
        return DEFAULT_LOCAL_THRESHOLD

    def utility(t: float) -> float:
        shown = [y for s, y in zip(scores, labels, strict=True) if s >= t]
        return sum(shown) - wrong_cost * (len(shown) - sum(shown))

    values = [utility(t) for t in edges]
    best = max(values)
    winners = [t for t, v in zip(edges, values, strict=True) if v == best]
    return round((winners[0] + winners[-1]) / 2, 2)
