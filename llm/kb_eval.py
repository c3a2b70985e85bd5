r"""Scoring the bot's answers to a set of knowledge-base questions.

A question set is YAML (see ``tests/data/kb/dev.yml``)::

    questions:
      - id: ship-01
        question: "how much is shipping on a $40 order?"
        answerable: true          # the KB answers it; false: the bot must decline
        expect: ['\\$5\\.95']      # regexes, case-insensitive, all must match

Each question's turn ends in one outcome: ``correct`` (every ``expect``
matched what the bot said), ``wrong`` (an answer was shown that is not
correct, or any answer to a question the KB does not cover), ``handed_off``,
``declined`` (the bot said it has nothing on that) or ``flow`` (a task flow
started instead). The confidence AUROC is computed on the *candidate* answer
of every question that reached the knowledge base, shown or not, so it
measures how well the confidence separates right from wrong answers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from llm.confidence import auroc, best_threshold


class QuestionSetError(ValueError):
    """A question set that cannot be read, with its file and the reason."""


@dataclass(frozen=True)
class Question:
    """One question of an evaluation set."""

    id: str
    question: str
    answerable: bool
    expect: tuple[re.Pattern[str], ...] = ()

    def matches(self, text: str) -> bool:
        """Whether ``text`` holds every expected fact."""
        return bool(self.expect) and all(p.search(text) for p in self.expect)


@dataclass(frozen=True)
class Outcome:
    """How the bot handled one question.

    Attributes:
        id: The question's id.
        answerable: Whether the KB covers it.
        outcome: ``correct``, ``wrong``, ``handed_off``, ``declined`` or ``flow``.
        route: The turn's route.
        text: What the bot said.
        candidate_confidence: The confidence of the KB's candidate answer.
        candidate_correct: Whether that candidate held the expected facts.
        features: The candidate's confidence signals (:class:`llm.confidence.Features`).
        candidate: The candidate answer's text.
    """

    id: str
    answerable: bool
    outcome: str
    route: str
    text: str
    candidate_confidence: float | None = None
    candidate_correct: bool | None = None
    features: tuple[float, ...] | None = None
    candidate: str | None = None


def load_questions(path: Path) -> list[Question]:
    """Read a question set; raise :class:`QuestionSetError` naming the file and item."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise QuestionSetError(f"{path}: {exc}") from exc
    items = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise QuestionSetError(f"{path}: expected a mapping with a 'questions' list")
    questions = []
    for index, item in enumerate(items):
        where = f"{path}: questions[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise QuestionSetError(f"{where}: needs a 'question' string")
        answerable = bool(item.get("answerable", True))
        raw = item.get("expect") or []
        if answerable and not raw:
            raise QuestionSetError(f"{where}: an answerable question needs 'expect' regexes")
        try:
            expect = tuple(re.compile(str(p), re.IGNORECASE) for p in raw)
        except re.error as exc:
            raise QuestionSetError(f"{where}: bad regex: {exc}") from exc
        questions.append(Question(str(item.get("id", index)), item["question"], answerable, expect))
    return questions


def classify(question: Question, text: str, route: str, declined: bool, flow: bool) -> str:
    """Return the outcome of one turn (see the module docstring)."""
    if question.answerable and question.matches(text):
        return "correct"
    if route == "human":
        return "handed_off"
    if declined:
        return "declined"
    if flow:
        return "flow"
    return "wrong"


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """Return the counts, the per-route figures and the confidence AUROC."""
    answerable = [o for o in outcomes if o.answerable]
    other = [o for o in outcomes if not o.answerable]
    routes: dict[str, Counter[str]] = {}
    for item in outcomes:
        routes.setdefault(item.route, Counter())[item.outcome] += 1
    scored = [o for o in outcomes if o.candidate_confidence is not None]
    scores = [float(o.candidate_confidence or 0.0) for o in scored]
    labels = [bool(o.candidate_correct) for o in scored]
    area = auroc(scores, labels)
    return {
        "questions": len(outcomes),
        "answerable": dict(Counter(o.outcome for o in answerable)),
        "to_decline": dict(Counter(o.outcome for o in other)),
        "correct": sum(o.outcome == "correct" for o in answerable),
        "wrong_shown": sum(o.outcome == "wrong" for o in outcomes),
        "declined_safely": sum(o.outcome in ("declined", "handed_off") for o in other),
        "by_route": {route: dict(counts) for route, counts in sorted(routes.items())},
        "confidence_auroc": None if area is None else round(area, 3),
        "suggested_threshold": best_threshold(scores, labels) if scored else None,
        "outcomes": [asdict(o) for o in outcomes],
    }


def report(summary: dict[str, Any], mode: str) -> str:
    """Render a summary for people."""
    answerable = summary["answerable"]
    decline = summary["to_decline"]
    n_answerable = sum(answerable.values())
    n_decline = sum(decline.values())
    lines = [
        f"answer mode {mode}: {summary['questions']} questions "
        f"({n_answerable} answerable, {n_decline} to decline)",
        f"  correct        {summary['correct']}/{n_answerable}",
        f"  wrong shown    {summary['wrong_shown']}/{summary['questions']}",
        f"  answerable:    {_counts(answerable)}",
        f"  to decline:    {_counts(decline)}"
        f" (declined safely {summary['declined_safely']}/{n_decline})",
        "  by route:      "
        + "; ".join(f"{r} {_counts(c)}" for r, c in summary["by_route"].items()),
        f"  confidence AUROC (candidate answers, right vs wrong): {summary['confidence_auroc']}",
        f"  best threshold on this set: {summary['suggested_threshold']}",
    ]
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
