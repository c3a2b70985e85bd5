"""The website chat widget: ``/widget.js``, ``/widget.css`` and the ``/widget/ws`` socket.

Delivery: ``send`` has nothing left to do. The dispatcher stores every reply
and publishes it on the conversation's bus topic before calling ``send``;
every open socket of the visitor forwards it from the bus, and a visitor who
is offline gets it replayed from the store when the widget reconnects. So a
reply counts as delivered once it is stored and pushed to the live sockets.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from bot import metrics
from connectors.net import client_ip
from connectors.restart import close_for_restart
from connectors.widget.origin import OriginGuard
from connectors.widget.ratelimit import RateLimit
from connectors.widget.session import WidgetSession
from connectors.widget.translate import CHANNEL

if TYPE_CHECKING:
    from bot.channels import ConnectorContext
    from bot.messages import OutboundMessage
    from connectors.widget.config import WidgetConfig
    from connectors.widget.translate import FrameMiddleware

_LOGGER = logging.getLogger(__name__)
SOCKET_PATH = "/widget/ws"
_ASSETS = {
    "/widget.js": ("widget.js", "text/javascript"),
    "/widget.css": ("widget.css", "text/css"),
}


DEMO_PATH = "/widget/demo"
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Helpline widget demo</title></head>
<body><h1>Northwind Goods</h1><p>The chat bubble in the corner is the Helpline widget.</p>
<script src="/widget.js" data-title="Northwind Goods" data-greeting="Hi! How can I help?"></script>
</body></html>
"""


class _Asset:
    """A static file served from memory with an ETag."""

    def __init__(self, name: str, content_type: str) -> None:
        self.body = (resources.files(__package__) / "static" / name).read_bytes()
        self.etag = hashlib.sha256(self.body).hexdigest()[:16]
        self.content_type = content_type

    async def __call__(self, request: web.Request) -> web.Response:
        headers = {hdrs.ETAG: f'"{self.etag}"', hdrs.CACHE_CONTROL: "public, max-age=300"}
        if request.headers.get(hdrs.IF_NONE_MATCH) == f'"{self.etag}"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, content_type=self.content_type, headers=headers)


class WidgetConnector:
    """The widget channel: serves the script and one WebSocket per open tab."""

    name = CHANNEL

    def __init__(self, config: WidgetConfig, ctx: ConnectorContext) -> None:
        self.config = config
        self.ctx = ctx
        self.origins = OriginGuard(config.allowed_origins)
        self.middleware: list[FrameMiddleware] = [RateLimit(config.visitor_rate, config.ip_rate)]
        self._sockets: set[web.WebSocketResponse] = set()

    async def start(self) -> None:
        """Nothing to open: sockets come in through the server's routes."""

    async def stop(self) -> None:
        """Close every open socket; the widgets reconnect to another replica or later."""
        await self.close_sockets()

    async def send(self, message: OutboundMessage) -> None:
        """Count the reply: it is already stored and on the bus (see the module doc)."""
        metrics.MESSAGES.labels(CHANNEL, "out").inc()
        _LOGGER.debug("Widget reply %s is stored and pushed.", message.metadata.get("message_id"))

    def mount(self, app: web.Application) -> None:
        """Add ``/widget.js``, ``/widget.css``, ``/widget/ws`` and ``/widget/demo`` to ``app``."""
        for path, (name, content_type) in _ASSETS.items():
            app.router.add_get(path, _Asset(name, content_type))
        app.router.add_get(SOCKET_PATH, self.socket)
        app.router.add_get(DEMO_PATH, self.demo)
        app.on_shutdown.append(self._on_shutdown)

    async def demo(self, request: web.Request) -> web.Response:
        """A page that embeds the widget, so ``make run`` has something to open."""
        return web.Response(text=DEMO_PAGE, content_type="text/html")

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close_sockets()

    async def close_sockets(self) -> None:
        """Close every open socket: a ``reconnect`` frame, then 1012 "service restart"."""
        for ws in list(self._sockets):
            await close_for_restart(ws)

    async def socket(self, request: web.Request) -> web.StreamResponse:
        """Check the origin, upgrade, and serve the visitor until the socket closes."""
        refusal = self.origins.refusal(request)
        if refusal is not None:
            metrics.HTTP_ERRORS.labels(CHANNEL, "forbidden_origin").inc()
            body = {"error": "forbidden_origin", "reason": refusal}
            return web.json_response(body, status=403)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self.config.max_frame_bytes * 8)
        if not ws.can_prepare(request).ok:
            body = {"error": "not_websocket", "reason": "expected a WebSocket upgrade"}
            return web.json_response(body, status=400)
        await ws.prepare(request)
        self._sockets.add(ws)
        session = WidgetSession(ws, self.ctx, self.config, self.middleware, self._ip(request))
        try:
            await session.run()
        finally:
            self._sockets.discard(ws)
            await ws.close()
        return ws

    def _ip(self, request: web.Request) -> str:
        return client_ip(request, self.config.trust_forwarded_for)
