"""Running ``rasa train nlu`` in the Rasa venv, with the model cached by content hash.

The Rasa project is written to a scratch folder, trained there and the model
moved into the cache as ``nlu-<key>.tar.gz`` only once training succeeded, so
an interrupted run never leaves a half-written model behind. When training
fails, Rasa's own last lines are part of the error.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bot.errors import NLUError
from bot.nlu.rasa.project import DEFAULT_EPOCHS, write_project

if TYPE_CHECKING:
    from collections.abc import Sequence

_LOGGER = logging.getLogger(__name__)

#: The repository's own Rasa venv, made by ``make setup-rasa``.
DEFAULT_VENV = Path(__file__).resolve().parents[3] / ".venv-rasa"

#: How many of Rasa's last output lines an error quotes.
_TAIL_LINES = 25


def rasa_executable(venv: Path | None) -> Path:
    """Return the ``rasa`` script of ``venv`` (default ``.venv-rasa``).

    Raises:
        NLUError: The venv has no ``rasa``; the message says how to make it.
    """
    folder = Path(venv) if venv is not None else DEFAULT_VENV
    exe = folder / "bin" / "rasa"
    if not exe.is_file():
        raise NLUError(
            f"the Rasa NLU backend needs Rasa Open Source 3.6 in {folder}, which has no "
            "bin/rasa: run `make setup-rasa` (it needs Python 3.10), or set nlu.rasa.venv, "
            "or point nlu.rasa.url at a running Rasa server"
        )
    return exe


def rasa_environment() -> dict[str, str]:
    """Return the environment Rasa runs in: ours, minus venv leaks, without telemetry."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONDONTWRITEBYTECODE="1",
        # One inference thread pool each, like the embedded NLU; 2 cores here.
        TF_NUM_INTRAOP_THREADS=env.get("TF_NUM_INTRAOP_THREADS", "1"),
        TF_NUM_INTEROP_THREADS=env.get("TF_NUM_INTEROP_THREADS", "1"),
    )
    return env


def model_path(cache_dir: Path, key: str) -> Path:
    """Return where the model of cache key ``key`` lives."""
    return Path(cache_dir) / f"nlu-{key}.tar.gz"


def _run_rasa(cmd: list[str], cwd: Path, echo: IO[str] | None, timeout_s: float) -> None:
    """Run a Rasa command, keeping its last lines; raise NLUError when it fails."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=rasa_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip()[-500:])
            if echo is not None:
                echo.write(line)
                echo.flush()
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            raise NLUError(f"`rasa train nlu` took longer than {timeout_s:g} s") from exc
    if code != 0:
        quoted = "\n".join(f"  | {line}" for line in tail if line)
        raise NLUError(f"`rasa train nlu` failed (exit code {code}); Rasa said:\n{quoted}")


def train_model(
    nlu_paths: Sequence[Path],
    cache_dir: Path,
    *,
    venv: Path | None = None,
    epochs: int = DEFAULT_EPOCHS,
    echo: IO[str] | None = None,
    timeout_s: float = 3600.0,
    config_text: str | None = None,
) -> Path:
    """Return a Rasa NLU model of ``nlu_paths``, training it unless it is cached.

    Args:
        nlu_paths: The bot's ``nlu.yml`` files.
        cache_dir: Where models are kept, one per content hash.
        venv: The Rasa venv; ``.venv-rasa`` of this repository when ``None``.
        epochs: DIET's training epochs.
        echo: Where Rasa's output (its progress bars included) is copied.
        timeout_s: How long training may take.
        config_text: A ``config.yml`` to use instead of the documented pipeline.

    Raises:
        FlowError: An NLU file is malformed (``file:line``).
        NLUError: Rasa is missing, or training failed (with Rasa's message).
    """
    exe = rasa_executable(venv)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rasa-train-", dir=cache_dir) as scratch:
        folder = Path(scratch)
        key = write_project(nlu_paths, folder, epochs=epochs, config_text=config_text)
        target = model_path(cache_dir, key)
        if target.is_file():
            _LOGGER.info("Using the cached Rasa model %s.", target)
            return target
        _LOGGER.info("Training a Rasa NLU model (%d epochs) into %s.", epochs, target)
        cmd = [str(exe), "train", "nlu", "--config", "config.yml", "--nlu", "data/nlu.yml"]
        cmd += ["--out", "out", "--fixed-model-name", f"nlu-{key}"]
        _run_rasa(cmd, folder, echo, timeout_s)
        built = folder / "out" / f"nlu-{key}.tar.gz"
        if not built.is_file():
            raise NLUError(f"`rasa train nlu` succeeded but wrote no model at {built}")
        partial = target.with_suffix(".partial")
        shutil.move(built, partial)
        partial.replace(target)
    _LOGGER.info("Trained the Rasa model %s.", target)
    return target
