"""Real servers for tests, each run as a process in a process group of its own.

The rasa-sdk action servers, the Rasa NLU server and the importer's action
server all start the same way: a command on a free loopback port, its output
in a log file, polled until a health URL answers, and the whole process group
ended afterwards (Sanic and Rasa fork workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


ROOT = Path(__file__).parents[1]


def helpline(
    *args: str, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``helpline`` console script in a fresh interpreter; return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """Return our environment without the variables that would leak our venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def answers(url: str) -> bool:
    """Return whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the process and everything it forked: they share a group we made."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@contextlib.contextmanager
def serve(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    health_url: str,
    log_path: Path,
    limit_s: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until the block ends; fail the test if ``health_url`` never answers.

    ``limit_s`` only stops a hang: a server that exits or takes longer fails
    with the end of its log.
    """
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + limit_s
        while not answers(health_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"{cmd[0]} did not come up at {health_url}:\n{tail}")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)
