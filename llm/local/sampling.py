"""Choosing the next token from logits: greedy, or temperature with top-p (nucleus)."""

from __future__ import annotations

import numpy as np

# Nucleus sampling looks at the most likely tokens first and sorts the whole vocabulary
# only when these do not already hold ``top_p`` of the probability mass.
_TOP_CANDIDATES = 64


def log_softmax_at(logits: np.ndarray, index: int) -> float:
    """The log-probability of ``index`` under ``softmax(logits)``."""
    peak = float(logits.max())
    total = float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))
    return float(logits[index]) - peak - total


def _nucleus(probs: np.ndarray, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and probabilities of the smallest set holding ``top_p`` of the mass."""
    size = probs.shape[0]
    if size > _TOP_CANDIDATES:
        head = np.argpartition(probs, size - _TOP_CANDIDATES)[size - _TOP_CANDIDATES :]
        order = head[np.argsort(probs[head])[::-1]]
        if float(probs[order].sum()) < top_p:
            order = np.argsort(probs)[::-1]
    else:
        order = np.argsort(probs)[::-1]
    chosen = probs[order]
    cumulative = np.cumsum(chosen)
    # Keep every token whose preceding mass is still below top_p (at least one).
    keep = int(np.searchsorted(cumulative, top_p, side="left")) + 1
    return order[:keep], chosen[:keep]


def choose_token(
    logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
    """Pick the next token id from a 1-D logits vector.

    Args:
        logits: Raw scores over the vocabulary.
        temperature: ``0`` means greedy (argmax); otherwise logits are divided by it.
        top_p: Sample only from the smallest set of tokens holding this much mass.
        rng: The generator that makes sampling reproducible with a seed.

    Returns:
        The chosen token id.
    """
    if temperature <= 0.0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    if top_p < 1.0:
        ids, weights = _nucleus(probs, top_p)
        return int(ids[rng.choice(ids.shape[0], p=weights / weights.sum())])
    return int(rng.choice(probs.shape[0], p=probs))
