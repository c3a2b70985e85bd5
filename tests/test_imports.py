"""Every module imports on its own in a fresh interpreter: no import cycles."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def modules() -> list[str]:
    names = []
    for package in ("bot", "connectors", "llm"):
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            # Alembic revision files are loaded by Alembic, not imported by name.
            if ".migrations." in info.name or info.name == "bot.__main__":
                continue
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", modules())
def test_module_imports_alone(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error::SyntaxWarning", "-c", f"import {name}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_dialogue_core_has_no_io_dependencies() -> None:
    code = (
        "import sys, bot.dialogue.engine, bot.dialogue.project;"
        "bad = [m for m in ('aiohttp', 'sqlalchemy', 'onnxruntime', 'slack_sdk', 'torch')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr
