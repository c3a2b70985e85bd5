"""The confidence: its logistic model, AUROC and threshold helpers."""

from __future__ import annotations

import pytest

from llm.confidence import (
    DEFAULT_LOCAL_THRESHOLD,
    FAILED_CHECK_FACTOR,
    Features,
    auroc,
    best_threshold,
    fit,
    hedges,
    relevance,
    score,
)

STRONG = Features(top=0.75, unit=0.8, margin=0.1, lexical=0.8)
WEAK = Features(top=0.38, unit=0.4, margin=0.0, lexical=0.1)


def test_a_question_the_kb_covers_scores_higher() -> None:
    assert relevance(WEAK) < DEFAULT_LOCAL_THRESHOLD < relevance(STRONG)


def test_a_failed_check_keeps_a_fraction() -> None:
    assert score(STRONG, checks_passed=False) == pytest.approx(
        relevance(STRONG) * FAILED_CHECK_FACTOR
    )
    assert score(STRONG) == relevance(STRONG)


def test_auroc() -> None:
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5], [True]) is None


def test_best_threshold_weighs_wrong_answers_more() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [True, True, False, True, False]
    # Showing down to 0.6 gains one right answer and costs one wrong one: not worth it.
    assert best_threshold(scores, labels, wrong_cost=3.0) == pytest.approx(0.75, abs=0.01)
    assert best_threshold(scores, labels) == pytest.approx(0.75, abs=0.01)
    assert best_threshold(scores, labels, wrong_cost=0.5) <= 0.6


def test_fit_separates_separable_data() -> None:
    rows = [STRONG, Features(0.7, 0.75, 0.05, 0.7), WEAK, Features(0.4, 0.45, 0.0, 0.2)]
    weights = fit(rows, [True, True, False, False])
    assert relevance(STRONG, weights) > 0.5 > relevance(WEAK, weights)


def test_hedges() -> None:
    assert hedges("I'm not sure about that.")
    assert hedges("I don\u2019t know.")
    assert not hedges("You can return items within 30 days.")
