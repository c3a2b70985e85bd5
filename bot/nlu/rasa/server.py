"""A supervised ``rasa run --enable-api`` sidecar on loopback.

:class:`RasaSidecar` trains (or takes from the cache) the model, starts Rasa
in its own process group, waits until ``/status`` names the model, then
watches it: a process that exits or stops answering is restarted with
backoff. Until it is ready, :attr:`RasaSidecar.url` is ``None`` and the
client parses with the embedded NLU instead, so starting Helpline never waits
for Rasa's minute-long start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bot.errors import HelplineError
from bot.lifecycle import Service
from bot.metrics import RASA_RESTARTS
from bot.nlu.rasa.project import DEFAULT_EPOCHS
from bot.nlu.rasa.train import rasa_environment, rasa_executable, train_model
from bot.tasks import OwnedTasks

if TYPE_CHECKING:
    from collections.abc import Sequence

_LOGGER = logging.getLogger(__name__)

#: Seconds between health checks of a running server.
HEALTH_INTERVAL_S = 2.0
#: Failed health checks in a row after which a live process counts as hung.
HUNG_AFTER = 3
#: Restart backoff bounds, in seconds.
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def rasa_status(session: aiohttp.ClientSession, base_url: str) -> str | None:
    """Return the model file a Rasa server at ``base_url`` serves, or ``None``."""
    try:
        async with session.get(
            f"{base_url}/status", timeout=aiohttp.ClientTimeout(total=2)
        ) as resp:
            if resp.status != 200:
                return None
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    model = body.get("model_file") if isinstance(body, dict) else None
    return str(model) if model else None


class RasaSidecar(Service):
    """Trains the bot's Rasa NLU model and keeps a Rasa server running with it."""

    def __init__(
        self,
        nlu_paths: Sequence[Path],
        cache_dir: Path,
        *,
        venv: Path | None = None,
        epochs: int = DEFAULT_EPOCHS,
        port: int = 0,
        startup_timeout_s: float = 300.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.nlu_paths = list(nlu_paths)
        self.cache_dir = Path(cache_dir).resolve()
        self.venv = venv
        self.epochs = epochs
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self.model: Path | None = None
        self.error: str | None = None
        self.restarts = 0
        self.ready = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks = OwnedTasks()
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        """Where the server listens, ready or not."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str | None:
        """The server's URL while it is healthy, else ``None``."""
        return self.base_url if self.ready.is_set() else None

    @property
    def pid(self) -> int | None:
        """The Rasa process id, while one runs."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> None:
        """Start supervising in the background; returns at once."""
        self._session = aiohttp.ClientSession()
        self._tasks.spawn(self._supervise(), name="rasa-sidecar")

    async def stop(self) -> None:
        """Stop supervising and end the Rasa process."""
        await self._tasks.stop()
        await self._terminate()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _supervise(self) -> None:
        try:
            exe = rasa_executable(self.venv)
            self.model = await asyncio.to_thread(
                train_model, self.nlu_paths, self.cache_dir, venv=self.venv, epochs=self.epochs
            )
        except HelplineError as exc:
            self.error = str(exc)
            _LOGGER.error("The Rasa NLU backend is off; the embedded NLU answers: %s", exc)
            return
        backoff = BACKOFF_MIN_S
        while True:
            healthy = await self._run_once(exe)
            self.ready.clear()
            self.restarts += 1
            RASA_RESTARTS.inc()
            backoff = BACKOFF_MIN_S if healthy else min(backoff * 2, BACKOFF_MAX_S)
            _LOGGER.warning("Rasa server ended; restarting it in %.0f s.", backoff)
            await asyncio.sleep(backoff)

    async def _run_once(self, exe: Path) -> bool:
        """Run Rasa until it dies or hangs; return whether it ever became healthy."""
        assert self.model is not None
        log_path = self.cache_dir / "rasa-server.log"
        with log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                str(exe), "run", "--enable-api", "--model", str(self.model),
                "--interface", self.host, "--port", str(self.port),
                cwd=self.cache_dir, env=rasa_environment(),
                stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _LOGGER.info("Started Rasa (pid %d) on %s.", self._proc.pid, self.base_url)
        try:
            if not await self._wait_healthy():
                _LOGGER.error("Rasa did not become healthy; its log is %s.", log_path)
                return False
            self.ready.set()
            _LOGGER.info("Rasa is serving %s at %s.", self.model.name, self.base_url)
            await self._watch()
            return True
        finally:
            await self._terminate()

    async def _wait_healthy(self) -> bool:
        assert self._proc is not None
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout_s
        while loop.time() < deadline and self._proc.returncode is None:
            if await rasa_status(self._session, self.base_url):
                return True
            await asyncio.sleep(0.5)
        return False

    async def _watch(self) -> None:
        """Return when the process exits or misses ``HUNG_AFTER`` health checks."""
        assert self._proc is not None
        assert self._session is not None
        misses = 0
        while misses < HUNG_AFTER:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), HEALTH_INTERVAL_S)
                _LOGGER.warning("Rasa exited with code %s.", self._proc.returncode)
                return
            ok = await rasa_status(self._session, self.base_url)
            misses = 0 if ok else misses + 1
        _LOGGER.warning("Rasa stopped answering /status; killing it.")

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
