"""``rasa train nlu`` through the real Rasa venv: caching and Rasa's own errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.errors import NLUError
from bot.nlu.rasa.project import pipeline_config
from bot.nlu.rasa.train import model_path, rasa_executable, train_model

from .conftest import BOT_NLU, MODEL_CACHE, ROOT, TEST_EPOCHS

pytestmark = pytest.mark.timeout(900)


def test_a_trained_model_is_reused(rasa_model: Path) -> None:
    stat = rasa_model.stat()
    again = train_model([BOT_NLU], MODEL_CACHE, epochs=TEST_EPOCHS)
    assert again == rasa_model
    assert again.stat().st_mtime_ns == stat.st_mtime_ns
    assert rasa_model.name.startswith("nlu-")
    assert not list(MODEL_CACHE.glob("rasa-train-*"))  # scratch folders are removed


def test_failed_training_shows_rasas_message(rasa_venv: Path, tmp_path: Path) -> None:
    broken = pipeline_config(1).replace("name: DIETClassifier", "name: NoSuchClassifier")
    with pytest.raises(NLUError) as info:
        train_model([BOT_NLU], tmp_path, venv=rasa_venv, config_text=broken)
    message = str(info.value)
    assert "`rasa train nlu` failed" in message
    assert "NoSuchClassifier" in message  # Rasa's own words, quoted
    assert not list(tmp_path.glob("*.tar.gz"))
    assert not list(tmp_path.glob("rasa-train-*"))


def test_missing_venv_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(NLUError, match="make setup-rasa"):
        rasa_executable(tmp_path / "nowhere")
    with pytest.raises(NLUError, match="make setup-rasa"):
        train_model([BOT_NLU], tmp_path, venv=tmp_path / "nowhere")
    assert not list(tmp_path.glob("*.tar.gz"))


def test_model_path_is_per_key(tmp_path: Path) -> None:
    assert model_path(tmp_path, "abc") == tmp_path / "nlu-abc.tar.gz"


def test_setup_script_without_python_310_fails_clearly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "RASA_VENV": str(tmp_path / "venv"),
        "RASA_PYTHON": str(tmp_path / "no-python"),
    }
    if any(Path(d, "python3.10").exists() for d in env["PATH"].split(":")):
        pytest.skip("this machine has a system python3.10")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-rasa-venv.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "needs Python 3.10, and none was found" in done.stderr
    assert "RASA_PYTHON" in done.stderr
    assert not (tmp_path / "venv").exists()
