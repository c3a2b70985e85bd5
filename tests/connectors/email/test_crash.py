"""A real crash between fetching a mail and storing it loses nothing and answers once.

The app runs as ``python -m bot run`` in a subprocess. The test holds the
SQLite write lock, so the app can fetch the mail but not store it; once its
log says the mail was fetched, the app is killed with SIGKILL. After a restart
the mail (still unseen) is fetched again, stored, answered once and marked
seen.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.email.conftest import Dovecot, SmtpSink, email_section, free_port
from tests.connectors.email.test_email_app import CUSTOMER, PROJECT, mail, transcript_id

ROOT = Path(__file__).parents[3]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)
    return result


class App:
    """``helpline run`` in a subprocess, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(config), "run"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def logged(self, text: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the app exited:\n{self.log.read_text()[-3000:]}")
        return text in self.log.read_text()[self.offset :]

    def stop(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)


@pytest.fixture
def config(tmp_path: Path, dovecot: Dovecot, mailbox: str, smtp_sink: SmtpSink) -> Path:
    path = tmp_path / "helpline.yml"
    path.write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: sqlite+aiosqlite:///{tmp_path / 'h.db'}\n"
        f"server:\n  port: {free_port()}\nllm:\n  enabled: false\n"
        "logging:\n  level: DEBUG\n  json: false\n"
        f"connectors:\n  email:\n{email_section(dovecot, mailbox, smtp_sink)}"
    )
    return path


@pytest.fixture
def apps(config: Path, tmp_path: Path) -> Iterator[Callable[[], App]]:
    started: list[App] = []

    def start() -> App:
        started.append(App(config, tmp_path / "app.log"))
        return started[-1]

    yield start
    for app in started:
        app.stop(signal.SIGKILL)


def test_killed_between_fetch_and_store(
    apps: Callable[[], App], tmp_path: Path, dovecot: Dovecot, mailbox: str, smtp_sink: SmtpSink
) -> None:
    first = apps()
    wait_for(lambda: first.logged("Watching"), "the app watches the mailbox")
    lock = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the app can read, but not store
        raw = mail("/check_order")
        dovecot.append(mailbox, raw)
        wait_for(lambda: first.logged("Fetched mail UID"), "the mail is fetched")
        first.stop(signal.SIGKILL)
        assert lock.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "\\Seen" not in dovecot.flags(mailbox)[transcript_id(raw)]
    assert smtp_sink.handler.received == []

    second = apps()
    wait_for(lambda: smtp_sink.to(CUSTOMER), "the reply is sent")
    wait_for(lambda: "\\Seen" in dovecot.flags(mailbox)[transcript_id(raw)], "the mail is seen")
    second.stop(signal.SIGTERM)
    assert second.proc.returncode == 0
    [reply] = smtp_sink.to(CUSTOMER)
    assert reply["In-Reply-To"] == transcript_id(raw)
    with sqlite3.connect(tmp_path / "h.db") as db:
        rows = db.execute("SELECT direction, status FROM messages ORDER BY id").fetchall()
    assert rows == [("in", "processed"), ("out", "delivered")]
