"""``helpline erase`` against a real database, as subprocesses and ``main()`` calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.storage import Store
from tests.bot.storage.lifecycle_data import customer, rows
from tests.processes import helpline

ROOT = Path(__file__).parents[2]
GONE = dict.fromkeys(
    ("messages", "turns", "events", "inbox", "notes", "audit_log", "llm_usage", "conversations"),
    0,
)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Call ``main()`` in-process; return the exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


async def _seed(url: str) -> tuple[int, int]:
    async with Store(url) as store:
        await store.upgrade()
        pat = await customer(store, "email", "<t1@shop.test>", "pat@shop.test")
        sam = await customer(store, "widget", "sam", "sam")
        return pat, sam


def seed(url: str) -> tuple[int, int]:
    """Two customers with data in every table."""
    return asyncio.run(_seed(url))


async def _rows(url: str, ids: list[int]) -> dict[str, int]:
    async with Store(url) as store:
        return await rows(store, ids)


def counts(url: str, cid: int) -> dict[str, int]:
    """Rows per table that still name conversation ``cid``."""
    return asyncio.run(_rows(url, [cid]))


def test_erase_in_a_subprocess_deletes_one_customer(db_url: str) -> None:
    pat, sam = seed(db_url)
    result = helpline("erase", "--customer", "Pat@Shop.test", "--url", db_url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["conversations"] == 1
    assert report["deleted"]["messages"] == 4
    assert report["unlinked"] == {"llm_usage": 1, "audit_log": 2}
    assert counts(db_url, pat) == GONE
    assert counts(db_url, sam)["messages"] == 4


def test_erase_dry_run_prints_the_counts_and_keeps_everything(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pat, _ = seed(db_url)
    code, out, _ = run_main(
        capsys, "erase", "--customer", "pat@shop.test", "--dry-run", "--url", db_url
    )
    assert code == 0
    assert (
        out.splitlines()[0]
        == "Would delete (dry run) 1 conversation(s) of customer 'pat@shop.test':"
    )
    assert "  messages       4" in out
    assert counts(db_url, pat)["messages"] == 4


def test_erase_of_an_unknown_customer_says_so(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, sam = seed(db_url)
    code, out, _ = run_main(
        capsys, "erase", "--customer", "sam", "--channel", "slack", "--url", db_url
    )
    assert (code, out) == (0, "No data found for customer 'sam' on slack; nothing to erase.\n")
    assert counts(db_url, sam)["conversations"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--customer", "  "], "--customer must name a customer id"),
        (["--customer", "sam", "--channel", ""], "--channel must name a channel"),
    ],
)
def test_blank_input_is_refused_and_deletes_nothing(
    db_url: str, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    _, sam = seed(db_url)
    code, out, err = run_main(capsys, "erase", *extra, "--url", db_url)
    assert (code, out) == (2, "")
    assert err == f"error: {message}\n"
    assert counts(db_url, sam)["messages"] == 4


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.db"
    code, _, err = run_main(
        capsys, "erase", "--customer", "sam", "--url", f"sqlite+aiosqlite:///{path}"
    )
    assert code == 1
    assert "There is no database at" in err
    assert not path.exists()


def test_a_database_without_the_schema_is_not_migrated_behind_your_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite+aiosqlite:///{path}"
    code, _, err = run_main(capsys, "erase", "--customer", "sam", "--url", url)
    assert code == 1
    assert "schema revision none" in err
    assert "helpline db upgrade" in err
