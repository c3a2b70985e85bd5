"""``helpline rasa train|wanted`` and ``helpline nlu evaluate --backend`` with real Rasa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

from .conftest import BOT_NLU, MODEL_CACHE, ROOT, TEST_EPOCHS

pytestmark = pytest.mark.timeout(900)

HELD_OUT = """\
version: "3.1"
nlu:
- intent: check_order_status
  examples: |
    - has my order HL-55555 left the warehouse yet
    - any news on my parcel?
- intent: reset_password
  examples: |
    - i can't log in, i forgot my password
- intent: greet
  examples: |
    - hello there!
- intent: business_hours
  examples: |
    - what time do you open on saturday
- intent: out_of_scope
  examples: |
    - what is the boiling point of mercury
    - asdkjh qwe
"""


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    code = info.value.code
    return int(code if isinstance(code, int) else 1), capsys.readouterr().out


def write_config(tmp_path: Path, nlu: str) -> Path:
    path = tmp_path / "helpline.yml"
    path.write_text(
        f"bot:\n  path: {ROOT / 'flows'}\nmodels:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        f"nlu:\n{nlu}\nllm:\n  enabled: false\n"
    )
    return path


@pytest.mark.parametrize(
    ("nlu", "expected"),
    [
        ("  backend: embedded", 1),
        ("  backend: rasa", 0),
        ("  backend: rasa\n  rasa: {url: 'http://rasa:5005'}", 1),
    ],
    ids=["embedded", "rasa-sidecar", "rasa-external"],
)
def test_wanted_tells_make_whether_to_build_the_venv(
    tmp_path: Path, nlu: str, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli(["--config", str(write_config(tmp_path, nlu)), "rasa", "wanted"], capsys)
    assert code == expected


def test_train_prints_the_cached_model(
    tmp_path: Path, rasa_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "  backend: rasa")
    argv = ["--config", str(config), "rasa", "train", "--epochs", str(TEST_EPOCHS)]
    code, out = run_cli(argv, capsys)
    assert code == 0
    assert Path(out.strip()) == rasa_model


def test_evaluate_both_side_by_side(
    tmp_path: Path, rasa_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held_out = tmp_path / "test.yml"
    held_out.write_text(HELD_OUT)
    predictions = tmp_path / "pred.json"
    argv = ["nlu", "evaluate", "--backend", "both", "--cache", str(MODEL_CACHE.parent)]
    argv += ["--train", str(BOT_NLU), "--test", str(held_out), "--epochs", str(TEST_EPOCHS)]
    argv += ["--predictions", str(predictions), "--json"]
    code, out = run_cli(argv, capsys)
    assert code == 0
    report = json.loads(out)
    assert report["better"] in ("embedded", "rasa")
    for backend in ("embedded", "rasa"):
        side = report[backend]
        assert side["backend"] == backend
        assert side["n_test"] == 7
        assert side["n_out_of_scope"] == 2
        assert 0.0 <= side["routing_accuracy"] <= 1.0
        assert side["latency_p50_ms"] <= side["latency_p99_ms"]
        rows = json.loads((tmp_path / f"pred-{backend}.json").read_text())
        assert len(rows) == 7
    assert report["rasa"]["model"] == rasa_model.name  # the cached model, not a new one
    assert report["rasa"]["in_scope_accuracy"] >= 0.5
