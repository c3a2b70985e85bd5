"""``helpline db prune`` against a real database, as subprocesses and ``main()`` calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.storage import Store
from tests.bot.storage.lifecycle_data import backdate, customer
from tests.bot.test_cli_erase import GONE, counts, helpline, run_main


async def _seed(url: str) -> tuple[int, int]:
    async with Store(url) as store:
        await store.upgrade()
        old = await customer(store, "rest", "old", "old")
        await backdate(store, old, 40)
        return old, await customer(store, "rest", "new", "new")


def seed(url: str) -> tuple[int, int]:
    """A conversation inactive for 40 days and a fresh one."""
    return asyncio.run(_seed(url))


def config(folder: Path, url: str, retention: int | None) -> Path:
    """Write a helpline.yml with (or without) ``storage.retention_days``."""
    storage: dict[str, object] = {"url": url}
    if retention is not None:
        storage["retention_days"] = retention
    path = folder / "helpline.yml"
    path.write_text(json.dumps({"storage": storage, "logging": {"level": "WARNING"}}))
    return path


def test_prune_uses_the_configured_retention(db_url: str, tmp_path: Path) -> None:
    old, new = seed(db_url)
    result = helpline("--config", str(config(tmp_path, db_url, 30)), "db", "prune", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conversations"] == 1
    assert counts(db_url, old) == GONE
    assert counts(db_url, new)["conversations"] == 1


def test_prune_older_than_overrides_and_dry_run_keeps_everything(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _ = seed(db_url)
    path = str(config(tmp_path, db_url, None))
    code, out, _ = run_main(capsys, "-c", path, "db", "prune", "--older-than-days", "50")
    assert (code, out.splitlines()[0]) == (0, "Deleted 0 conversation(s) inactive for 50 day(s):")
    args = ("-c", path, "db", "prune", "--older-than-days", "30", "--dry-run", "--json")
    code, out, _ = run_main(capsys, *args)
    assert (code, json.loads(out)["conversations"], json.loads(out)["dry_run"]) == (0, 1, True)
    assert counts(db_url, old)["messages"] == 4


@pytest.mark.parametrize(
    ("retention", "extra", "message"),
    [
        (None, [], "no retention is configured: pass --older-than-days N or set"),
        (30, ["--older-than-days", "0"], "--older-than-days must be 1 or more, not 0"),
        (None, ["--older-than-days", "-3"], "--older-than-days must be 1 or more, not -3"),
    ],
)
def test_bad_input_is_refused_and_prunes_nothing(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    retention: int | None,
    extra: list[str],
    message: str,
) -> None:
    old, _ = seed(db_url)
    path = str(config(tmp_path, db_url, retention))
    code, out, err = run_main(capsys, "-c", path, "db", "prune", *extra)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {message}")
    assert counts(db_url, old)["messages"] == 4


def test_a_retention_below_one_day_is_a_config_error(db_url: str, tmp_path: Path) -> None:
    result = helpline("--config", str(config(tmp_path, db_url, 0)), "db", "prune")
    assert result.returncode == 2
    assert "storage.retention_days" in result.stderr
