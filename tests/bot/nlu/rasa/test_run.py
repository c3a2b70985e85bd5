"""``helpline run`` with ``nlu.backend: rasa``: it runs the Rasa sidecar and stops it on exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.nlu.rasa.server import free_port

from .conftest import ROOT, TEST_EPOCHS

pytestmark = pytest.mark.timeout(900)

#: Hang guard for the sidecar to come up (about 40 s here).
READY_GUARD_S = 400.0


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _turn(base: str, text: str) -> list[dict[str, Any]]:
    body = json.dumps({"sender": "run-test", "message": text}).encode()
    request = urllib.request.Request(f"{base}/webhooks/rest/webhook", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return list(json.loads(resp.read()))


def _wait(predicate: Any, guard_s: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"helpline run exited:\n{log.read_text(errors='replace')[-4000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out:\n{log.read_text(errors='replace')[-4000:]}")


def test_run_supervises_rasa_and_stops_it(tmp_path: Path, rasa_model: Path) -> None:
    port = free_port()
    config = tmp_path / "helpline.yml"
    config.write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path / 'helpline.db'}\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        f"server:\n  port: {port}\n"
        f"nlu:\n  backend: rasa\n  rasa: {{epochs: {TEST_EPOCHS}, threshold: 0.3}}\n"
        "llm:\n  enabled: false\n"
    )
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        health = _wait(lambda: _get(f"{base}/healthz"), 120, proc, log)
        assert health["nlu"]["backend"] == "rasa"
        # While Rasa may still be starting, the embedded NLU answers every turn.
        assert _turn(base, "hello")
        health = _wait(
            lambda: (h := _get(f"{base}/healthz")) and h["nlu"]["rasa"] == "ready" and h,
            READY_GUARD_S,
            proc,
            log,
        )
        rasa_pid = health["nlu"]["pid"]
        replies = _turn(base, "where is my order HL-12345?")
        assert any("HL-12345" in r.get("text", "") for r in replies), replies
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    with pytest.raises(ProcessLookupError):
        os.killpg(rasa_pid, 0)  # no Rasa process is left behind
    assert "Started Rasa" in log.read_text(errors="replace")
