"""One message's way as logs and, optionally, OpenTelemetry traces.

The decorators here wrap the few methods a message passes through: the
inbound message (:meth:`bot.dispatch.Dispatcher.submit`,
:meth:`bot.manager.DialogueManager.handle`), its turn, the NLU parse, the
LLM answer with its local and cloud steps, and each delivery. Every wrapper
binds the conversation for logging (``conversation_id`` and ``channel`` on
each record, see :func:`bot.logs.conversation_scope`). When
``tracing.otlp_endpoint`` is set, each one is also a span, exported over
OTLP/HTTP in batches from a background thread. The turn runs in a task the
inbound call spawns, and deliveries in tasks the turn spawns; asyncio copies
the context into each task, so their spans hang under the message's span.

With tracing off (the default) OpenTelemetry is never imported and a wrapper
costs one function call and a context variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from bot.logs import conversation_label, conversation_scope

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from bot.config import TracingSettings

_LOGGER = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Attributes = dict[str, str | int | float | bool]

TRACES_PATH = "/v1/traces"
_state: dict[str, Any] = {"tracer": None, "provider": None}


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL (or the full URL)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def configure(settings: TracingSettings) -> bool:
    """Start exporting spans when ``settings.otlp_endpoint`` is set.

    Returns:
        Whether tracing is on.
    """
    if settings.otlp_endpoint is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    url = traces_url(settings.otlp_endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _state["provider"], _state["tracer"] = provider, provider.get_tracer("helpline")
    _LOGGER.info("Exporting traces to %s as service %s.", url, settings.service_name)
    return True


async def shutdown() -> None:
    """Export the spans still buffered and stop tracing (off the event loop)."""
    provider = _state["provider"]
    _state["provider"] = _state["tracer"] = None
    if provider is not None:
        await asyncio.to_thread(provider.shutdown)


def traced(
    name: str,
    *,
    scope: Callable[..., tuple[str, str]] | None = None,
    before: Callable[..., Attributes] | None = None,
    after: Callable[[Any], Attributes] | None = None,
    server: bool = False,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Wrap an async function in a log scope and, with tracing on, a span.

    Args:
        name: The span's name.
        scope: From the call's arguments, the ``(channel, external_id)`` to bind.
        before: From the call's arguments, the span's attributes.
        after: From the result, attributes added when the call returns.
        server: A span of kind SERVER (a message coming in) instead of INTERNAL.
    """

    def wrap(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            where = scope(*args, **kwargs) if scope is not None else None
            bound = conversation_scope(*where) if where else contextlib.nullcontext()
            with bound:
                tracer = _state["tracer"]
                if tracer is None:
                    return await fn(*args, **kwargs)
                from opentelemetry.trace import SpanKind

                kind = SpanKind.SERVER if server else SpanKind.INTERNAL
                attributes = before(*args, **kwargs) if before is not None else {}
                with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
                    result = await fn(*args, **kwargs)
                    if after is not None:
                        span.set_attributes(after(result))
                    return result

        return wrapper

    return wrap


def _where(channel: str, external_id: str) -> Attributes:
    label = conversation_label(channel, external_id)
    return {"helpline.channel": channel, "helpline.conversation": label}


def _message_scope(_self: Any, message: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    return message.channel, message.conversation_id


def _message_attrs(_self: Any, message: Any, *args: Any, **kwargs: Any) -> Attributes:
    return _where(message.channel, message.conversation_id)


def _conv_scope(_self: Any, conv: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    return conv.channel, conv.external_id


def _turn_attrs(_self: Any, conv: Any, inbound_id: int, *args: Any, **kwargs: Any) -> Attributes:
    return {**_where(conv.channel, conv.external_id), "helpline.inbound_id": inbound_id}


def _parse_attrs(result: Any) -> Attributes:
    intent = result.intent
    attributes: Attributes = {"helpline.nlu.out_of_scope": bool(result.out_of_scope)}
    if intent is not None:
        attributes.update(
            {"helpline.nlu.intent": intent.name, "helpline.nlu.confidence": intent.confidence}
        )
    return attributes


def _answer_attrs(answer: Any) -> Attributes:
    if answer is None:
        return {}
    attributes: Attributes = {
        "helpline.route": answer.route,
        "helpline.confidence": answer.confidence,
    }
    if answer.provider is not None:
        attributes["helpline.llm.provider"] = answer.provider
    return attributes


def _model_attrs(route: str) -> Callable[..., Attributes]:
    def attrs(answerer: Any, *args: Any, **kwargs: Any) -> Attributes:
        model = getattr(answerer, f"_{route}", None)
        name = getattr(model, "name", None)
        return {"helpline.route": route, "helpline.llm.model": str(name) if name else "none"}

    return attrs


def _delivered(ok: Any) -> Attributes:
    return {"helpline.delivered": bool(ok)}


inbound = traced("helpline.inbound", scope=_message_scope, before=_message_attrs, server=True)
turn = traced(
    "helpline.turn",
    scope=_conv_scope,
    before=_turn_attrs,
    after=lambda r: {"helpline.replies": len(r)},
)
nlu_parse = traced("helpline.nlu.parse", after=_parse_attrs)
llm_answer = traced("helpline.llm.answer", after=_answer_attrs)
llm_local = traced("helpline.llm.local", before=_model_attrs("local"))
llm_cloud = traced("helpline.llm.cloud", before=_model_attrs("cloud"))
delivery = traced("helpline.deliver", scope=_message_scope, before=_message_attrs, after=_delivered)
