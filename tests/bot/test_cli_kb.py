"""``helpline kb evaluate``: the default bot on its development sets, and the calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm.confidence import (
    DEFAULT_LOCAL_THRESHOLD,
    WEIGHTS,
    Features,
    best_threshold,
    fit,
    relevance,
)

ROOT = Path(__file__).parents[2]
DEV = [ROOT / "tests" / "data" / "kb" / name for name in ("dev.yml", "dev2.yml")]


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "kb", "evaluate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def dev_summary() -> dict[str, object]:
    result = _evaluate(*map(str, DEV), "--mode", "extractive", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_the_default_bot_answers_its_development_sets(dev_summary: dict[str, object]) -> None:
    outcomes = dev_summary["outcomes"]
    assert isinstance(outcomes, list)
    answerable = sum(o["answerable"] for o in outcomes)
    decline = len(outcomes) - answerable
    # Floors a little under what was measured (README), so a change that
    # makes the answers worse fails here.
    assert dev_summary["correct"] >= 0.42 * answerable  # type: ignore[operator]
    assert dev_summary["wrong_shown"] <= 0.05 * len(outcomes)  # type: ignore[operator]
    assert dev_summary["declined_safely"] >= 0.8 * decline  # type: ignore[operator]
    assert dev_summary["confidence_auroc"] >= 0.75  # type: ignore[operator]


def test_the_shipped_confidence_is_the_one_fitted_on_the_development_sets(
    dev_summary: dict[str, object],
) -> None:
    outcomes = [o for o in dev_summary["outcomes"] if o["features"]]  # type: ignore[attr-defined]
    rows = [Features(*o["features"]) for o in outcomes]
    labels = [bool(o["candidate_correct"]) for o in outcomes]
    assert fit(rows, labels) == pytest.approx(WEIGHTS, abs=0.11)
    scores = [relevance(r) for r in rows]
    assert best_threshold(scores, labels) == pytest.approx(DEFAULT_LOCAL_THRESHOLD, abs=0.011)


def test_a_broken_question_set_is_refused_with_its_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("questions:\n  - id: a\n    question: 'how?'\n    answerable: true\n")
    result = _evaluate(str(broken))
    assert result.returncode == 2
    assert f"{broken}: questions[0]: an answerable question needs 'expect' regexes" in (
        result.stderr
    )
