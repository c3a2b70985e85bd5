"""The confidence formula and its calibration on the labelled set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from llm import confidence
from llm.confidence import (
    DEFAULT_LOCAL_THRESHOLD,
    Example,
    accuracy,
    calibrate,
    cited_numbers,
    hedges,
    score,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "llm" / "confidence.yml"


def _examples() -> list[Example]:
    items = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return [
        Example(
            question=item["question"],
            top_score=float(item["top_score"]),
            answer=item["answer"],
            logprobs=tuple(float(lp) for lp in item["logprobs"]),
            good=item["label"] == "good",
            passages=len(item["passages"]),
        )
        for item in items
    ]


def test_the_labelled_set_is_large_and_mixed() -> None:
    examples = _examples()
    assert len(examples) >= 40
    goods = sum(e.good for e in examples)
    assert 5 <= goods <= len(examples) - 5
    assert all(e.logprobs and all(lp <= 0.0 for lp in e.logprobs) for e in examples)


def test_the_shipped_threshold_is_the_calibrated_one() -> None:
    assert calibrate(_examples()) == DEFAULT_LOCAL_THRESHOLD


def test_the_formula_separates_good_from_bad_answers() -> None:
    examples = _examples()
    assert accuracy(examples, DEFAULT_LOCAL_THRESHOLD) >= 0.8
    # Better than the trivial rule "everything is bad" (the majority label).
    majority = max(sum(e.good for e in examples), sum(not e.good for e in examples))
    assert accuracy(examples, DEFAULT_LOCAL_THRESHOLD) > majority / len(examples)


@pytest.mark.parametrize(
    "text",
    [
        "I don't know the answer to that.",
        "I\u2019m not sure about this one.",
        "I could not find that in the passages.",
        "Sorry, I cannot find any information on laptops.",
        "I do not have information about the CEO.",
        "The passages do not mention Bitcoin.",
        "I can connect you with a person who can help.",
    ],
)
def test_hedges_are_recognised(text: str) -> None:
    assert hedges(text)


@pytest.mark.parametrize(
    "text",
    ["You can return items within 30 days [1].", "Gift cards never expire.", "Yes, we know."],
)
def test_plain_answers_do_not_hedge(text: str) -> None:
    assert not hedges(text)


def test_citations_must_name_a_passage() -> None:
    assert cited_numbers("A [2], B [1], again [2], bad [4] [0]", 3) == [2, 1]
    assert cited_numbers("no markers", 3) == []


def test_score_rises_with_each_signal_and_stays_in_range() -> None:
    sure, unsure = [-0.05] * 10, [-1.5] * 10
    low = score("Thirty days.", unsure, 0.3, 3)
    assert score("Thirty days.", sure, 0.3, 3) > low
    assert score("Thirty days.", unsure, 0.8, 3) > low
    assert score("Thirty days [1].", unsure, 0.3, 3) > low
    assert score("Thirty days.", [*unsure[:-1], -12.0], 0.3, 3) < low
    hedged = score("I'm not sure, thirty days [1].", sure, 0.8, 3)
    assert hedged == pytest.approx(
        score("Thirty days [1].", sure, 0.8, 3) * confidence.HEDGE_FACTOR
    )
    assert score("Thirty days [1].", [0.0] * 5, 1.0, 3) <= 1.0
    assert score("x", [-math.inf], -1.0, 0) >= 0.0


def test_unknown_logprobs_use_the_prior() -> None:
    prior = confidence.NO_LOGPROB_PRIOR
    expected = (
        (confidence.W_MEAN + confidence.W_MIN) * prior
        + confidence.W_RETRIEVAL * confidence.retrieval_term(0.5)
        + confidence.W_CITES
    )
    assert score("Thirty days [1].", [], 0.5, 3) == pytest.approx(expected)
    assert score("Thirty days [1].", [0.0, 0.0], 0.5, 3) == pytest.approx(expected)


def test_calibrate_picks_the_middle_of_the_best_interval() -> None:
    def example(conf_logprob: float, good: bool) -> Example:
        return Example("q", 0.5, "answer", (conf_logprob,), good)

    examples = [
        example(-3.0, False),
        example(-2.0, False),
        example(-0.2, True),
        example(-0.1, True),
    ]
    bad_top = max(e.confidence for e in examples if not e.good)
    good_low = min(e.confidence for e in examples if e.good)
    threshold = calibrate(examples)
    assert threshold == round((bad_top + good_low) / 2, 2)
    assert accuracy(examples, threshold) == 1.0
