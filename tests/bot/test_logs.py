from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from bot.errors import ConfigError
from bot.logs import (
    bind_conversation,
    current_conversation,
    setup_logging,
    unbind_conversation,
)

_LOGGER = logging.getLogger("tests.logs")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "tests.logs"]


def test_json_line_carries_bound_conversation(stream: io.StringIO) -> None:
    setup_logging("info", json=True, stream=stream)
    token = bind_conversation("conv-42")
    try:
        _LOGGER.info("Reply sent to %s.", "alice", extra={"channel": "slack", "n": 3})
    finally:
        unbind_conversation(token)
    _LOGGER.warning("Outside the conversation.")

    first, second = records(stream)
    assert first["level"] == "INFO"
    assert first["logger"] == "tests.logs"
    assert first["message"] == "Reply sent to alice."
    assert first["conversation_id"] == "conv-42"
    assert first["channel"] == "slack"
    assert first["n"] == 3
    assert datetime.fromisoformat(str(first["ts"])).tzinfo is not None
    assert second["message"] == "Outside the conversation."
    assert "conversation_id" not in second
    assert current_conversation() is None


def test_level_filters_records(stream: io.StringIO) -> None:
    setup_logging("WARNING", json=True, stream=stream)
    _LOGGER.info("Hidden.")
    _LOGGER.error("Shown.")
    assert [r["message"] for r in records(stream)] == ["Shown."]


def test_exception_and_unserialisable_extra(stream: io.StringIO) -> None:
    setup_logging("DEBUG", json=True, stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        _LOGGER.exception("Action failed.", extra={"when": datetime(2024, 1, 2)})
    (record,) = records(stream)
    assert record["level"] == "ERROR"
    assert "ValueError: boom" in str(record["exc_info"])
    assert "Traceback" in str(record["exc_info"])
    assert record["when"] == "2024-01-02 00:00:00"


def test_explicit_extra_conversation_wins(stream: io.StringIO) -> None:
    setup_logging("INFO", json=True, stream=stream)
    token = bind_conversation("bound")
    try:
        _LOGGER.info("Explicit.", extra={"conversation_id": "explicit"})
    finally:
        unbind_conversation(token)
    assert records(stream)[0]["conversation_id"] == "explicit"


async def test_concurrent_tasks_keep_their_own_conversation(stream: io.StringIO) -> None:
    setup_logging("INFO", json=True, stream=stream)

    async def turn(conv_id: str) -> None:
        bind_conversation(conv_id)
        for step in range(3):
            _LOGGER.info("Step %d of %s.", step, conv_id)
            await asyncio.sleep(0)

    await asyncio.gather(turn("a"), turn("b"))
    lines = records(stream)
    assert len(lines) == 6
    for line in lines:
        assert str(line["message"]).endswith(f"of {line['conversation_id']}.")
    assert current_conversation() is None


def test_text_format(stream: io.StringIO) -> None:
    setup_logging("INFO", json=False, stream=stream)
    token = bind_conversation("conv-7")
    try:
        _LOGGER.info("Hello %s.", "text")
    finally:
        unbind_conversation(token)
    _LOGGER.info("Unbound.")
    first, second = [line for line in stream.getvalue().splitlines() if "tests.logs" in line]
    assert first.endswith("INFO     tests.logs [conv-7]: Hello text.")
    assert second.endswith("INFO     tests.logs: Unbound.")
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


def test_setup_twice_replaces_own_handler(stream: io.StringIO) -> None:
    before = len(logging.getLogger().handlers)
    setup_logging("INFO", json=True, stream=io.StringIO())
    setup_logging("INFO", json=True, stream=stream)
    assert len(logging.getLogger().handlers) == before + 1
    _LOGGER.info("Once.")
    assert len(records(stream)) == 1


def test_unknown_level(stream: io.StringIO) -> None:
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD", json=True, stream=stream)
