"""Private PostgreSQL and Redis servers that a test may stop and start again.

The machine's shared servers (5432, 6379) are used by other tests, so tests
that take a server down mid-run start their own: a throwaway PostgreSQL
cluster (``initdb`` with trust auth, run as the ``postgres`` user because
PostgreSQL refuses root) and a ``redis-server`` without persistence, each on
a free port that stays the same across restarts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import free_port

INITDB = os.environ.get("HELPLINE_TEST_INITDB", "/usr/local/bin/initdb")
POSTGRES = os.environ.get("HELPLINE_TEST_POSTGRES", "/usr/local/bin/postgres")
REDIS_SERVER = os.environ.get("HELPLINE_TEST_REDIS_SERVER", "redis-server")


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until something accepts connections on ``port``; fail with the log if not."""
    import socket

    deadline = time.monotonic() + 60  # a hang guard
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"server on port {port} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _end(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server we started: SIGTERM (fast shutdown), then SIGKILL after a while."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


class _PrivateServer:
    """What both private servers share: a process, a folder, stop and close."""

    folder: Path
    proc: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        """Stop the server (PostgreSQL: a fast shutdown that ends sessions) and wait."""
        _end(self.proc)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivatePostgres(_PrivateServer):
    """A PostgreSQL cluster of one test, in a temporary folder owned by ``postgres``."""

    def __init__(self) -> None:
        if shutil.which(INITDB) is None or shutil.which(POSTGRES) is None:
            pytest.skip(f"{INITDB} or {POSTGRES} is not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="helpline-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            _as_postgres([INITDB, "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
        )

    def stop(self, *, immediate: bool = False) -> None:
        """A fast shutdown (SIGINT to the postmaster: every session ends), then wait.

        Signalling ``runuser`` would ask for a smart shutdown, which waits for
        the clients, and ``runuser`` kills the server two seconds later,
        leaving a ``postmaster.pid`` that makes the next start fail.

        ``immediate``: SIGQUIT instead, a crash as far as clients can tell:
        no session commits anything more. In a fast shutdown, a transaction
        waiting for a lock whose holder is ended first may still get the lock
        and commit before its own session ends.
        """
        pid_file = self.data / "postmaster.pid"
        if self.proc is not None and self.proc.poll() is None and pid_file.exists():
            sig = signal.SIGQUIT if immediate else signal.SIGINT
            with contextlib.suppress(ValueError, IndexError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        super().stop()

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server on its port and wait until it accepts connections."""
        cmd = [POSTGRES, "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder)]
        cmd += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(_as_postgres(cmd), stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, self.log)
        # The port opens before the server accepts logins; wait for that too.
        deadline = time.monotonic() + 60
        while "ready to accept connections" not in self.log.read_text()[-2000:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)


class PrivateRedis(_PrivateServer):
    """A ``redis-server`` of one test, without persistence (a restart forgets every key)."""

    def __init__(self) -> None:
        if shutil.which(REDIS_SERVER) is None:
            pytest.skip(f"{REDIS_SERVER} is not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="helpline-redis-"))
        self.log = self.folder / "redis.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port and wait until it accepts connections."""
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, self.log)
