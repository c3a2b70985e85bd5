"""Traces of a real turn exported to a real OTLP/HTTP receiver, and logs that name the conversation."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bot import tracing
from bot.bus import LocalBus
from bot.config import TracingSettings, load_config
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import load_project
from bot.dispatch import Dispatcher
from bot.logs import conversation_label, setup_logging
from bot.manager import DialogueManager
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import NoNLU
from bot.storage.store import Store
from llm.answerer import LLMAnswerer
from llm.settings import LLMSettings
from llm.types import Completion
from tests.bot.dialogue.conftest import ScriptedActions
from tests.llm.test_answerer import CLOUD_OK, PASSAGES, UNSURE_LOCAL, FixedRetriever, ScriptedModel

PROJECT = Path(__file__).parent / "dialogue" / "project"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
_LOGGER = logging.getLogger("tests.tracing")


class StreamingModel(ScriptedModel):
    """A scripted local model that takes the token callback the widget path passes."""

    async def complete(  # type: ignore[override]
        self, messages: Any, settings: Any, on_token: Callable[[str], None] | None = None
    ) -> Completion:
        return await super().complete(messages, settings)


class LoggingChannel:
    """A channel that logs each delivery, as a connector would."""

    name = "test"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, message: OutboundMessage) -> None:
        _LOGGER.info("Sending a reply.")
        self.sent.append(message)


@pytest.fixture
async def collector(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[str, list[Any]]]:
    """A local OTLP/HTTP receiver; yields its URL and the spans it got."""
    spans: list[Any] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                spans.extend((service["service.name"], span) for span in scope.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(app)
    yield str(server.make_url("")), spans
    await tracing.shutdown()


@pytest.fixture
async def dispatcher(store: Store) -> AsyncIterator[Dispatcher]:
    project = load_project(PROJECT, lambda name: False)
    local, cloud = StreamingModel("smollm2-int8", UNSURE_LOCAL), ScriptedModel("gpt-test", CLOUD_OK)
    answerer = LLMAnswerer(LLMSettings(), FixedRetriever(PASSAGES), local, cloud)
    engine = Engine(project, ScriptedActions(), answerer, EngineSettings(seed=1))
    dispatcher = Dispatcher(store, LocalBus(), retry_base_s=0.01)
    dispatcher.bind(DialogueManager(engine, NoNLU(), store))
    yield dispatcher
    await dispatcher.stop()


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        out[attribute.key] = getattr(value, value.WhichOneof("value"))
    return out


async def test_a_turn_is_one_trace_from_message_to_delivery(
    collector: tuple[str, list[Any]], dispatcher: Dispatcher
) -> None:
    url, spans = collector
    assert tracing.configure(TracingSettings(otlp_endpoint=url, service_name="helpline-test"))
    channel = LoggingChannel()
    dispatcher.register(channel)
    await dispatcher.submit(InboundMessage("test", "c7", "pat", "how long do refunds take?", "m1"))
    async with asyncio.timeout(20):
        await dispatcher.drain()
    assert len(channel.sent) == 1
    await tracing.shutdown()  # flushes the batch to the receiver

    assert {service for service, _ in spans} == {"helpline-test"}
    by_name = {span.name: span for _, span in spans}
    assert set(by_name) >= {
        "helpline.inbound",
        "helpline.turn",
        "helpline.nlu.parse",
        "helpline.llm.answer",
        "helpline.llm.local",
        "helpline.llm.cloud",
        "helpline.deliver",
    }
    root = by_name["helpline.inbound"]
    assert root.parent_span_id == b""
    assert {span.trace_id for _, span in spans} == {root.trace_id}
    parents = {
        "helpline.turn": "helpline.inbound",
        "helpline.nlu.parse": "helpline.turn",
        "helpline.llm.answer": "helpline.turn",
        "helpline.llm.local": "helpline.llm.answer",
        "helpline.llm.cloud": "helpline.llm.answer",
        # In the background task submit spawned, after the turn: still this message's.
        "helpline.deliver": "helpline.inbound",
    }
    for child, parent in parents.items():
        assert by_name[child].parent_span_id == by_name[parent].span_id, child
    label = conversation_label("test", "c7")
    assert _attrs(root) == {"helpline.channel": "test", "helpline.conversation": label}
    assert root.kind == root.SPAN_KIND_SERVER
    assert _attrs(by_name["helpline.llm.local"])["helpline.llm.model"] == "smollm2-int8"
    assert _attrs(by_name["helpline.llm.cloud"])["helpline.llm.model"] == "gpt-test"
    answer = _attrs(by_name["helpline.llm.answer"])
    assert (answer["helpline.route"], answer["helpline.llm.provider"]) == ("cloud", "openai")
    assert _attrs(by_name["helpline.deliver"])["helpline.delivered"] is True


async def test_every_line_of_a_turn_and_its_delivery_names_the_conversation(
    dispatcher: Dispatcher,
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("info", json=True, stream=stream)
        dispatcher.register(LoggingChannel())
        await dispatcher.submit(
            InboundMessage("test", "c8", "pat", "how long do refunds take?", "m1")
        )
        async with asyncio.timeout(20):
            await dispatcher.drain()
        _LOGGER.info("After the turn.")
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    during = [line for line in lines if line["message"] != "After the turn."]
    loggers = {line["logger"] for line in during}
    assert {"llm.answerer", "tests.tracing"} <= loggers  # the escalation and the delivery
    for line in during:
        label = conversation_label("test", "c8")
        assert (line.get("conversation_id"), line.get("channel")) == (label, "test"), line
        assert label != "test:c8"
    after = next(line for line in lines if line["message"] == "After the turn.")
    assert "conversation_id" not in after
    assert "channel" not in after


def test_tracing_is_off_by_default_and_checks_its_endpoint(tmp_path: Path) -> None:
    config = tmp_path / "helpline.yml"
    config.write_text("storage: {url: 'sqlite+aiosqlite:///x.db'}\n")
    assert load_config(config).tracing.otlp_endpoint is None
    assert not tracing.configure(load_config(config).tracing)
    config.write_text("tracing:\n  otlp_endpoint: collector:4318\n")
    with pytest.raises(Exception, match=r"tracing\.otlp_endpoint") as error:
        load_config(config)
    assert "line 2" in str(error.value) or "helpline.yml:2" in str(error.value)
