"""The agent console: pages at ``/console``, the JSON API and socket at ``/console/api``.

It is not a customer channel: ``send`` is never given anything, because no
conversation has the channel name ``console``. It owns three background tasks
(the bus relay, the queue notices and the socket sessions' sweep), started
and cancelled with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.bus import ALL
from bot.storage.console_store import ConsoleStore
from bot.tasks import OwnedTasks
from connectors.console import api_admin, api_inbox, auth
from connectors.console.availability import Notices, SlackNotifier
from connectors.console.headers import secure_headers
from connectors.console.live import Relay
from connectors.console.mw_csrf import require_csrf
from connectors.console.mw_session import require_session
from connectors.console.sockets import Sockets
from connectors.console.state import SESSIONS_TOPIC, STATE, ConsoleState
from connectors.console.throttle import throttle_logins

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from bot.channels import ConnectorContext
    from bot.messages import OutboundMessage
    from connectors.console.config import ConsoleConfig

_LOGGER = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_MAX_ASSET_NAME = 100
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
PLACEHOLDER = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Helpline console"
    "</title></head><body><p>The console app ({name}) is not installed.</p></body></html>"
)
NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


class ConsoleConnector:
    """Serves the agent console.

    Args:
        config: The ``connectors.console`` section.
        ctx: What the server hands every connector.
    """

    name = "console"

    def __init__(self, config: ConsoleConfig, ctx: ConnectorContext) -> None:
        self.config = config
        self.ctx = ctx
        self.state = ConsoleState(config, ConsoleStore(ctx.store), ctx)
        self.slack = SlackNotifier(config)
        self.notices = Notices(self.state)
        self.sockets = Sockets(self.state)
        self._tasks = OwnedTasks()

    async def start(self) -> None:
        """Start the bus relay, the queue notices and the Slack client."""
        await self.slack.start()
        relay = Relay(self.state, self.slack.notify, lambda: len(self.sockets) > 0)
        # Subscribe before returning, so no event after start is missed.
        events = self.ctx.bus.subscribe(ALL)
        self._spawn(self._relay(relay, events), "console-relay")
        self._spawn(self.notices.run(), "console-notices")
        self._spawn(self._watch(self.ctx.bus.subscribe(SESSIONS_TOPIC)), "console-sessions")

    async def _relay(self, relay: Relay, events: Any) -> None:
        with events:
            await relay.run(events)

    async def _watch(self, events: Any) -> None:
        with events:
            await self.sockets.watch(events)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.spawn(coro, name)

    async def close_sockets(self) -> None:
        """Close the console sockets with a reconnect hint (the server drains first)."""
        await self.sockets.close()

    async def stop(self) -> None:
        """Close the sockets, cancel and await the tasks, close the Slack client."""
        await self.sockets.close()
        await self._tasks.stop()
        await self.slack.stop()

    async def send(self, message: OutboundMessage) -> None:
        """Never used: the console is no customer channel."""
        _LOGGER.warning("The console got a message to deliver; it has no customers.")

    def api_app(self) -> web.Application:
        """The ``/console/api`` sub-application with its middlewares."""
        app = web.Application(
            middlewares=[throttle_logins, require_session, require_csrf],
            client_max_size=256 * 1024,
        )
        app[STATE] = self.state
        app.router.add_post("/login", auth.login)
        app.router.add_post("/logout", auth.logout)
        app.router.add_get("/me", auth.me)
        app.router.add_get("/ws", self.sockets.handle)
        api_inbox.add_routes(app)
        api_admin.add_routes(app)
        return app

    def mount(self, app: web.Application) -> None:
        """Add the pages at the root and the API sub-application."""
        app.router.add_get("/console", self.app_page)
        app.router.add_get("/console/login", self.login_page)
        app.router.add_get("/console/static/{name}", self.asset)
        app.add_subapp("/console/api", self.api_app())
        app.on_response_prepare.append(secure_headers)

    async def app_page(self, request: web.Request) -> web.StreamResponse:
        """The app for a logged-in agent; otherwise a redirect to the login page."""
        if await auth.session_of(self.state, request) is None:
            raise web.HTTPFound("/console/login", headers=NO_STORE)
        return await _page("console.html")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        """The login page."""
        return await _page("login.html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """A file of ``static/`` (no sub-folders, no dot files)."""
        name = request.match_info["name"]
        # The name is checked before it reaches the file system: a name of
        # thousands of characters made ``is_file`` raise (ENAMETOOLONG).
        if len(name) > _MAX_ASSET_NAME or not _ASSET_NAME.match(name):
            raise web.HTTPNotFound()
        path = STATIC / name
        if not await asyncio.to_thread(path.is_file):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


async def _page(name: str) -> web.StreamResponse:
    path = STATIC / name
    if await asyncio.to_thread(path.is_file):
        return web.FileResponse(path, headers=NO_STORE)
    return web.Response(text=PLACEHOLDER.format(name=name), content_type="text/html")
