"""``helpline agents add|list|disable`` in a subprocess, against a SQLite config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.connectors.console.api_support import PROJECT
from tests.processes import helpline


def agents(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return helpline("--config", str(config), "agents", *args, stdin=stdin)


def test_agents_add_list_disable(tmp_path: Path) -> None:
    db = tmp_path / "helpline.db"
    config = tmp_path / "helpline.yml"
    settings = {
        "bot": {"path": str(PROJECT)},
        "storage": {"url": f"sqlite+aiosqlite:///{db}"},
        "llm": {"enabled": False},
    }
    config.write_text(json.dumps(settings))
    add = ["add", "--email", "Ana@Example.com", "--name", "Ana", "--role", "admin"]
    made = agents(config, *add, "--password-stdin", stdin="s3cret-password\n")
    assert made.returncode == 0, made.stderr
    assert "Created admin Ana <ana@example.com>" in made.stdout
    again = agents(config, *add, "--password-stdin", stdin="s3cret-password\n")
    assert again.returncode == 2
    assert "exists" in again.stderr
    short = agents(
        config, "add", "--email", "b@x.io", "--name", "B", "--password-stdin", stdin="x\n"
    )
    assert short.returncode == 2
    assert "at least 8" in short.stderr
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        hashed = conn.execute(text("SELECT password_hash FROM agents")).scalar_one()
    engine.dispose()
    assert hashed.startswith("$argon2id$")
    listed = agents(config, "list")
    assert listed.returncode == 0
    assert "ana@example.com\tAna\tadmin\taway" in listed.stdout
    off = agents(config, "disable", "--email", "ana@example.com")
    assert off.returncode == 0
    assert "disabled" in agents(config, "list").stdout
    assert agents(config, "disable", "--email", "nobody@example.com").returncode == 2
