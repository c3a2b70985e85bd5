from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bot.cli import main
from bot.nlu.evaluate import Outcome, auroc, routing_accuracy, tune_threshold

if TYPE_CHECKING:
    from pathlib import Path

KEYS = {
    "in_scope_accuracy",
    "oos_auroc",
    "routing_accuracy",
    "threshold",
    "latency_p50_ms",
    "latency_p99_ms",
}


def test_auroc() -> None:
    positive = np.array([True, True, False, False])
    assert auroc(positive, np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert auroc(positive, np.array([0.1, 0.2, 0.9, 0.8])) == 0.0
    assert auroc(positive, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auroc(np.array([True, True]), np.array([0.1, 0.2])) is None


def test_routing_and_tuning() -> None:
    outcomes = [
        Outcome("a", "x", "x", 0.9, 0.0),
        Outcome("b", "x", "y", 0.8, 0.0),  # wrong intent: right only if rejected
        Outcome("c", "out_of_scope", "x", 0.3, 0.0),
        Outcome("d", "y", "y", 0.6, 0.0),
    ]
    assert routing_accuracy(outcomes, 0.5) == 0.75
    assert routing_accuracy(outcomes, 0.0) == 0.5
    threshold = tune_threshold(outcomes)
    assert routing_accuracy(outcomes, threshold) == 0.75
    assert 0.3 < threshold <= 0.6


def test_evaluate_cli_end_to_end(
    tmp_path: Path,
    data_dir: Path,
    encoder_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    predictions = tmp_path / "predictions.json"
    argv = [
        "nlu",
        "evaluate",
        "--cache",
        str(encoder_dir.parent),
        "--train",
        str(data_dir / "train.yml"),
        "--test",
        str(data_dir / "test.yml"),
        "--tune",
        str(data_dir / "val.yml"),
        "--predictions",
        str(predictions),
        "--json",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report.keys() >= KEYS
    assert report["threshold_source"] == "tuned"
    assert report["n_out_of_scope"] > 0
    assert report["in_scope_accuracy"] > 0.85
    assert report["oos_auroc"] > 0.95
    assert report["latency_p50_ms"] <= report["latency_p99_ms"]
    rows = json.loads(predictions.read_text())
    assert len(rows) == report["n_test"]
    assert set(rows[0]) == {"text", "intent", "predicted", "confidence"}
    right = sum((r["predicted"] == r["intent"]) for r in rows)
    assert right / len(rows) == pytest.approx(report["routing_accuracy"])


def test_evaluate_cli_reports_malformed_file(
    tmp_path: Path, data_dir: Path, encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: a\n  examples: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "nlu",
                "evaluate",
                "--cache",
                str(encoder_dir.parent),
                "--train",
                str(bad),
                "--test",
                str(data_dir / "test.yml"),
                "--json",
            ]
        )
    assert exit_info.value.code == 2
    assert f"{bad}:3:" in capsys.readouterr().err


def test_prepare_cli_prints_the_folder(
    encoder_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["nlu", "prepare", "--cache", str(encoder_dir.parent)])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == str(encoder_dir)
