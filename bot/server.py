"""The aiohttp application: health, metrics and the connectors' sub-apps."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from bot.config import validate_section
from bot.errors import StorageError
from bot.runtime import Runtime
from connectors.rest import RestConfig, RestConnector

if TYPE_CHECKING:
    from bot.config import Config
    from bot.messages import InboundMessage, OutboundMessage

_LOGGER = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    """Report whether the bot is up and its database answers."""
    runtime = request.app[RUNTIME]
    try:
        await runtime.store.ping()
    except StorageError as exc:
        return web.json_response({"status": "unavailable", "reason": str(exc)}, status=503)
    return web.json_response({"status": "ok"})


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


def create_app(config: Config, runtime: Runtime | None = None) -> web.Application:
    """Build the application; the runtime starts with it and stops with it."""
    runtime = runtime or Runtime(config)
    app = web.Application(client_max_size=1024**2)
    app[RUNTIME] = runtime
    app.cleanup_ctx.append(_runtime_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    if runtime.openai_app is not None:
        app.add_subapp("/v1", runtime.openai_app)
    rest = validate_section(config, "rest", RestConfig)
    if rest.enabled:
        connector = RestConnector(rest, functools.partial(_handle_sync, runtime))
        app.add_subapp(connector.prefix.rstrip("/"), connector.sub_app())
    return app


async def _handle_sync(runtime: Runtime, message: InboundMessage) -> list[OutboundMessage]:
    """Run a turn for a channel that returns the replies in its response."""
    return await runtime.manager.handle(message, delivered=True)
