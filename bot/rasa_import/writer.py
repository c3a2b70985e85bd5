"""Writing a converted project: all of it, checked, or nothing.

The files go to a temporary folder next to the target; the bot there is
loaded with Helpline's own loaders (project, config, e2e tests) and only then
moved into place, so an error leaves the target as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from bot.config import load_config
from bot.dialogue.project import load_project
from bot.e2e import load_cases
from bot.e2e_run import collect_files
from bot.errors import ConfigError
from bot.rasa_import.convert import BOT_DIR

_LOGGER = logging.getLogger(__name__)


def check_target(out: Path, force: bool) -> None:
    """Refuse a target folder that holds something, unless ``force``.

    Raises:
        ConfigError: ``out`` is a file, or a non-empty folder without ``force``.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out} exists and is not empty; use --force to replace it")


def verify(folder: Path) -> None:
    """Load the bot in ``folder`` as Helpline would, with every custom action remote.

    Raises:
        FlowError: The flows, domain or tests do not load.
        ConfigError: The generated ``helpline.yml`` is invalid.
    """
    load_config(folder / "helpline.yml")
    load_project(folder / BOT_DIR)
    tests = folder / BOT_DIR / "tests"
    if tests.is_dir():
        for path in collect_files(tests):
            load_cases(path)


def write_project(files: dict[str, str], out: Path, force: bool = False) -> None:
    """Write ``files`` (relative path → text) as the folder ``out``, atomically.

    Raises:
        ConfigError: ``out`` holds something and ``force`` is not set.
        FlowError: The converted bot does not load (nothing is written then).
    """
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        verify(staging)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _LOGGER.info("Wrote the imported bot to %s.", out)


def _replace(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``; an old ``out`` is removed only once that worked."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}-old-{staging.name}")
    out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
