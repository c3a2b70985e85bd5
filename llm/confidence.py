"""How sure an answer is, from four signals, as one number in ``[0, 1]``.

The formula (all constants are module-level and named below)::

    t_mean = exp(mean(logprobs))                        # geometric-mean token probability
    t_min  = clip(1 - min(logprobs) / MIN_LOGPROB_FLOOR, 0, 1)   # the least sure token
    r      = clip((top_score - RETRIEVAL_LOW) / (RETRIEVAL_HIGH - RETRIEVAL_LOW), 0, 1)
    c      = 1 if the answer cites a passage that exists ("[n]", 1 <= n <= k) else 0

    base   = W_MEAN * t_mean + W_MIN * t_min + W_RETRIEVAL * r + W_CITES * c
    score  = base * HEDGE_FACTOR   if the answer hedges or refuses ("I don't know",
             base                  otherwise                        "I'm not sure", ...)

* **Token log-probs** measure how sure the model was while writing. The mean
  is mapped through ``exp`` (the per-token probability of a typical token);
  the minimum catches one invented number or name in an otherwise fluent
  answer, mapped linearly so that a token at ``MIN_LOGPROB_FLOOR`` or less
  counts 0. When the model gives no log-probs (a cloud provider that does
  not return them, or all zeros, which :class:`llm.types.TokenInfo` uses for
  "unknown"), both terms use ``NO_LOGPROB_PRIOR`` instead.
* **Retrieval**: the top passage's cosine similarity, mapped linearly from
  ``RETRIEVAL_LOW`` (unrelated) to ``RETRIEVAL_HIGH`` (a near paraphrase).
  A fluent answer over weak passages is likely invented.
* **Citations**: the prompt asks for ``[n]`` citations; a grounded answer
  usually has one.
* **Hedges** (refusals and uncertainty phrases) mean the model itself did not
  find the answer, however fluently it says so: the score is scaled down so
  the turn escalates.

Calibration. The labelled set ``tests/data/llm/confidence.yml`` has 50
answers to questions over the real KB (23 good, 27 bad; good = "fine to
send as the final answer without escalation", so refusals are bad):
9 answers that SmolLM2-135M-Instruct wrote itself (all bad: it never cites
and often invents) and 41 written answers (grounded and cited, plausible but
wrong, refusals, off-topic inventions) whose log-probs SmolLM2 gave them by
teacher forcing after the same prompt. ``build_confidence.py`` beside it
rebuilds the set. A small grid over the weights, floors and retrieval range
put the citation weight highest (0.43-0.5, 98 %); the shipped weights keep a
balance between the four signals at 90 % (45/50), because the written good
answers cite by construction and that signal would be over-trusted.
:data:`DEFAULT_LOCAL_THRESHOLD` is what :func:`calibrate` returns for these
weights (best accuracy, ties to the middle of the best interval): 0.47, and
a test recomputes it. Known limit: log-probs measure fluency, not truth; a
greedy small model is fluent when wrong, which is why retrieval and
citations weigh more than the token terms.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

W_MEAN = 0.25
W_MIN = 0.10
W_RETRIEVAL = 0.35
W_CITES = 0.30
MIN_LOGPROB_FLOOR = -10.0
NO_LOGPROB_PRIOR = 0.75
RETRIEVAL_LOW = 0.30
RETRIEVAL_HIGH = 0.70
HEDGE_FACTOR = 0.4
# The calibrated local threshold; see calibrate() and tests/llm/test_confidence.py.
DEFAULT_LOCAL_THRESHOLD = 0.47

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
_CITATION = re.compile(r"\[(\d+)\]")


def hedges(text: str) -> bool:
    """Return whether ``text`` refuses or voices uncertainty."""
    return _HEDGE.search(text.replace("\u2019", "'")) is not None


def cited_numbers(text: str, passages: int) -> list[int]:
    """Return the distinct valid ``[n]`` citations of ``text`` (1-based), in order."""
    found = (int(m) for m in _CITATION.findall(text))
    return list(dict.fromkeys(n for n in found if 1 <= n <= passages))


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def token_terms(logprobs: Sequence[float]) -> tuple[float, float]:
    """Return ``(t_mean, t_min)`` of the formula; the prior when log-probs are unknown."""
    known = [lp for lp in logprobs if lp != 0.0 and math.isfinite(lp)]
    if not logprobs or not known:
        return NO_LOGPROB_PRIOR, NO_LOGPROB_PRIOR
    values = [lp if math.isfinite(lp) else MIN_LOGPROB_FLOOR for lp in logprobs]
    mean = sum(values) / len(values)
    return math.exp(mean), _clip(1.0 - min(values) / MIN_LOGPROB_FLOOR)


def retrieval_term(top_score: float) -> float:
    """Map the top passage's cosine similarity to ``[0, 1]``."""
    return _clip((top_score - RETRIEVAL_LOW) / (RETRIEVAL_HIGH - RETRIEVAL_LOW))


def score(text: str, logprobs: Sequence[float], top_score: float, passages: int) -> float:
    """Return the confidence of an answer in ``[0, 1]`` (see the module docstring).

    Args:
        text: The answer as the model wrote it, ``[n]`` markers included.
        logprobs: The log-probability of each answer token (may be empty).
        top_score: The cosine similarity of the best passage in the prompt.
        passages: How many passages the prompt numbered.
    """
    t_mean, t_min = token_terms(logprobs)
    cites = 1.0 if cited_numbers(text, passages) else 0.0
    base = (
        W_MEAN * t_mean + W_MIN * t_min + W_RETRIEVAL * retrieval_term(top_score) + W_CITES * cites
    )
    return _clip(base * HEDGE_FACTOR if hedges(text) else base)


@dataclass(frozen=True)
class Example:
    """One labelled answer of the calibration set."""

    question: str
    top_score: float
    answer: str
    logprobs: tuple[float, ...]
    good: bool
    passages: int = 3

    @property
    def confidence(self) -> float:
        """The example's score by the current formula."""
        return score(self.answer, self.logprobs, self.top_score, self.passages)


def accuracy(examples: Sequence[Example], threshold: float) -> float:
    """Return the share of examples where ``confidence >= threshold`` matches the label."""
    right = sum((e.confidence >= threshold) == e.good for e in examples)
    return right / len(examples) if examples else 0.0


def calibrate(examples: Iterable[Example]) -> float:
    """Return the threshold with the best accuracy on ``examples``, rounded to 0.01.

    Candidates are the midpoints between consecutive distinct scores (and the
    two ends). Several thresholds can tie; the middle of the best-scoring run
    of candidates is chosen, which keeps the most margin on both sides.
    """
    items = list(examples)
    scores = sorted({e.confidence for e in items})
    if not scores:
        return DEFAULT_LOCAL_THRESHOLD
    edges = [0.0, *((a + b) / 2 for a, b in itertools.pairwise(scores)), 1.0]
    results = [accuracy(items, t) for t in edges]
    best = max(results)
    winners = [i for i, a in enumerate(results) if a == best]
    run = [winners[0]]
    for index in winners[1:]:
        if index != run[-1] + 1:
            break
        run.append(index)
    middle = (edges[run[0]] + edges[run[-1]]) / 2
    return round(middle, 2)
