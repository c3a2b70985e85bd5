"""The aiohttp application: health, metrics and the connectors' sub-apps."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from bot.channels import Channel, ConnectorContext, HttpChannel
from bot.config import validate_section
from bot.errors import StorageError
from bot.runtime import Runtime
from bot.storage.lifecycle import RetentionPruner
from connectors import registry

if TYPE_CHECKING:
    from bot.config import Config
    from bot.messages import InboundMessage, OutboundMessage

_LOGGER = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)
CHANNELS = web.AppKey("channels", list[Channel])
RETENTION = web.AppKey("retention", RetentionPruner)


async def healthz(request: web.Request) -> web.Response:
    """Report whether the bot is up and its database answers."""
    runtime = request.app[RUNTIME]
    try:
        await runtime.store.ping()
    except StorageError as exc:
        return web.json_response({"status": "unavailable", "reason": str(exc)}, status=503)
    body: dict[str, Any] = {"status": "ok"}
    # A degraded NLU (Rasa down, the embedded NLU answering) is reported, not a 503.
    status = getattr(runtime.manager.nlu, "status", None) if runtime.started else None
    if callable(status):
        body["nlu"] = status()
    return web.json_response(body)


async def metrics_view(request: web.Request) -> web.Response:
    """Serve the Prometheus metrics."""
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()
    _LOGGER.info("Bot %s is ready.", runtime.config.bot.path)
    yield
    await runtime.stop()


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Prune old conversations once a day while serving (``storage.retention_days``)."""
    async with app[RETENTION]:
        yield


async def drain(app: web.Application) -> None:
    """Before stopping (SIGTERM): finish the running turns, then close the sockets.

    Called once the listening socket is closed and before aiohttp's own
    shutdown, which stops reading every open connection. New messages are
    refused (:class:`~bot.errors.ShuttingDown`, a "send it again" to the
    client), running turns finish and deliver within
    ``server.drain_timeout_s``, and only then do the connectors close their
    sockets, with a hint to reconnect.
    """
    runtime = app[RUNTIME]
    timeout_s = runtime.config.server.drain_timeout_s
    _LOGGER.info("Draining: no new messages; running turns get %.1f s to finish.", timeout_s)
    # /v1 requests drain alongside the turns, within the same time.
    finished, _ = await asyncio.gather(
        runtime.dispatcher.shutdown(timeout_s), _drain_api(runtime, timeout_s)
    )
    _LOGGER.info("Drained (%s); closing the sockets.", "all done" if finished else "timed out")
    for channel in app[CHANNELS]:
        close_sockets = getattr(channel, "close_sockets", None)
        if close_sockets is not None:
            await close_sockets()


async def _drain_api(runtime: Runtime, timeout_s: float) -> None:
    """End the ``/v1`` requests in flight within ``timeout_s`` (streams get ``[DONE]``)."""
    if runtime.api_endpoint is not None:
        await runtime.api_endpoint.drain(timeout_s)


async def _api_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """Serve ``/v1`` on its own listener (``llm.api.listen: own``) while the bot runs."""
    listener = app[RUNTIME].api_listener
    if listener is None:
        yield
        return
    async with listener:
        yield


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the connectors once the bot is up, then deliver what an earlier run left."""
    runtime, started = app[RUNTIME], []
    try:
        for channel in app[CHANNELS]:
            await channel.start()
            started.append(channel)
        await runtime.dispatcher.start()
        yield
    finally:
        await runtime.dispatcher.stop()
        for channel in reversed(started):
            await channel.stop()


async def _plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """No answer names the server's software and version, nor may it be sniffed."""
    response.headers["Server"] = "Helpline"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def create_app(config: Config, runtime: Runtime | None = None) -> web.Application:
    """Build the application; the runtime starts with it and stops with it."""
    runtime = runtime or Runtime(config)
    app = web.Application(client_max_size=1024**2)
    app[RUNTIME] = runtime
    app.cleanup_ctx.append(_runtime_ctx)
    app[RETENTION] = RetentionPruner(runtime.store, config.storage.retention_days)
    app.cleanup_ctx.append(_retention_ctx)
    app.cleanup_ctx.append(_channels_ctx)
    app.cleanup_ctx.append(_api_listener_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.on_response_prepare.append(_plain_server_header)
    if runtime.openai_app is not None:
        app.add_subapp("/v1", runtime.openai_app)
    app[CHANNELS] = _build_connectors(config, runtime, app)
    return app


def _build_connectors(config: Config, runtime: Runtime, app: web.Application) -> list[Channel]:
    """Build every enabled connector, register it for delivery and mount its routes.

    An HTTP connector either has ``mount(app)``, to add routes at the root (the
    widget's ``/widget.js``), or ``prefix`` and ``sub_app()``.
    """
    context = ConnectorContext(
        submit=runtime.dispatcher.submit,
        handle=functools.partial(_handle_sync, runtime),
        push=runtime.dispatcher.push,
        bus=runtime.bus,
        store=runtime.store,
        server=config.server,
    )
    wanted = set(config.connectors) | (registry.ENABLED_BY_DEFAULT & set(registry.available()))
    channels: list[Channel] = []
    for name in sorted(wanted):
        spec = registry.load(name)
        settings = validate_section(config, name, spec.config)
        if not getattr(settings, "enabled", True):
            continue
        channel = spec.build(settings, context)
        runtime.dispatcher.register(channel)
        mount = getattr(channel, "mount", None)
        if mount is not None:
            mount(app)
        elif isinstance(channel, HttpChannel):
            app.add_subapp(channel.prefix.rstrip("/"), channel.sub_app())
        channels.append(channel)
        if name == "console":
            hours = getattr(settings, "business_hours", None)
            runtime.desk = replace(runtime.desk, business_hours=hours.is_open if hours else None)
    names = {channel.name for channel in channels}
    runtime.desk = replace(runtime.desk, email_outbound="email" in names)
    return channels


async def _handle_sync(runtime: Runtime, message: InboundMessage) -> list[OutboundMessage]:
    """Run a turn for a channel that returns the replies in its response."""
    return await runtime.dispatcher.handle(message)
