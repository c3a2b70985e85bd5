"""The ``helpline`` command as a user runs it, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import helpline

ROOT = Path(__file__).parents[2]
PROJECT = ROOT / "tests" / "bot" / "dialogue" / "project"


def write_config(folder: Path, db_url: str, bot: Path = PROJECT, timeout: float = 5) -> Path:
    config = folder / "helpline.yml"
    config.write_text(
        json.dumps(
            {
                "bot": {"path": str(bot)},
                "storage": {"url": db_url},
                "dialogue": {"action_timeout_s": timeout},
                "models": {"cache_dir": str(ROOT / "var" / "models")},
                "llm": {"enabled": False},
                "logging": {"level": "WARNING", "json": True},
            }
        )
    )
    return config


def test_e2e_passes_and_prints_the_summary(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    result = helpline("--config", str(config), "test", "e2e", str(PROJECT / "tests"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED order_status_happy_path" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "5 passed, 0 failed"


def test_e2e_failure_exits_non_zero(tmp_path: Path) -> None:
    cases = tmp_path / "failing.yml"
    cases.write_text((PROJECT / "tests" / "failing.yml.txt").read_text())
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    result = helpline("--config", str(config), "test", "e2e", str(cases))
    assert result.returncode == 1
    assert "FAILED wrong_expectation" in result.stdout
    assert "expected utter_hours but the bot said 'utter_greet'" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "1 passed, 1 failed"


def test_malformed_flows_exit_2_with_file_and_line(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    bot.mkdir()
    (bot / "flows.yml").write_text(
        "flows:\n  a:\n    description: x\n    steps:\n      - collect: nope\n"
    )
    (bot / "tests").mkdir()
    (bot / "tests" / "t.yml").write_text(
        "test_cases:\n  - test_case: t\n    steps:\n      - user: hi\n"
    )
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db", bot)
    result = helpline("--config", str(config), "test", "e2e")
    assert result.returncode == 2
    assert f"{bot / 'flows.yml'}:5: flow 'a'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "helpline.yml"
    config.write_text("server:\n  port: lots\n")
    result = helpline("--config", str(config), "db", "upgrade")
    assert result.returncode == 2
    assert "helpline.yml:2: server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/up.db")
    result = helpline("--config", str(config), "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "up.db").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_with_database_down_gives_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    config = write_config(tmp_path, url)
    result = helpline("--config", str(config), "run", "--port", str(free_port()))
    assert result.returncode == 1
    assert "Cannot connect to the database" in result.stderr
    assert "Traceback" not in result.stderr


def post(base: str, body: dict[str, Any], timeout: float = 30) -> Any:
    request = urllib.request.Request(
        f"{base}/webhooks/rest/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/run.db", timeout=1)
    port = free_port()
    procs: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "bot", "--config", str(config), "run", "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, text=True, env={**os.environ})
        procs.append(proc)
        wait_ready(f"http://127.0.0.1:{port}", proc)
        return proc

    yield f"http://127.0.0.1:{port}", start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def test_killed_mid_turn_loses_nothing(server: tuple[str, Any]) -> None:
    base, start = server
    proc = start()
    assert (
        post(base, {"sender": "k", "message": "/greet", "message_id": "k-1"})[0]["text"] == "Hello!"
    )
    # The slow action sleeps far longer than this; kill the server mid-turn.
    request = urllib.request.Request(
        f"{base}/webhooks/rest/webhook",
        data=json.dumps({"sender": "k", "message": "/slow", "message_id": "k-2"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(request, timeout=0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    start()
    # The stored message was processed at startup; the retry gets its replies.
    replies = post(base, {"sender": "k", "message": "/slow", "message_id": "k-2"})
    assert [r["text"] for r in replies] == [
        "Sorry, something went wrong on my side. Please try again."
    ]
    again = post(base, {"sender": "k", "message": "/slow", "message_id": "k-2"})
    assert again == replies
    assert (
        post(base, {"sender": "k", "message": "/greet", "message_id": "k-3"})[0]["text"] == "Hello!"
    )


def test_init_scaffolds_a_bot_that_passes_its_tests(tmp_path: Path) -> None:
    bot = tmp_path / "mybot"
    result = helpline("init", str(bot))
    assert result.returncode == 0, result.stderr
    assert (bot / "actions.py").exists()
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/x.db", bot)
    result = helpline("--config", str(config), "test", "e2e")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1 passed, 0 failed"
    again = helpline("init", str(bot))
    assert again.returncode == 2
    assert "exists and is not empty" in again.stderr


def test_shell_chats_in_the_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/shell.db")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "shell"],
        input="/check_order\nHL-12345\n/quit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bot> What is your order number?" in result.stdout
    assert "bot> Shall I go ahead with HL-12345?" in result.stdout
    assert "     [Yes] -> /affirm" in result.stdout
