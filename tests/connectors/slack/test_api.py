"""Which failed Web API calls may have reached Slack (so a retry checks first)."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import DeliveryError
from connectors.slack.api import SlackApi
from tests.processes import free_port


async def _error(api: SlackApi) -> DeliveryError:
    await api.start()
    try:
        with pytest.raises(DeliveryError) as caught:
            await api.call("chat.postMessage", channel="D1", text="hi")
    finally:
        await api.stop()
    return caught.value


async def test_no_connection_means_nothing_was_sent() -> None:
    error = await _error(SlackApi("xoxb-1", f"http://127.0.0.1:{free_port()}/api/", 5))
    assert not error.permanent
    assert not error.maybe_delivered


async def test_a_connection_cut_after_the_request_may_have_delivered_it() -> None:
    async def take_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request went out
        writer.close()

    server = await asyncio.start_server(take_and_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        error = await _error(SlackApi("xoxb-1", f"http://127.0.0.1:{port}/api/", 5))
    assert not error.permanent
    assert error.maybe_delivered
