"""Verbs that run the bot: ``run`` (the server) and ``shell`` (a terminal chat)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from bot.config import Config, load_config
from bot.logs import setup_logging

_LOGGER = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``run`` and ``shell`` verbs."""
    run = subparsers.add_parser("run", help="serve the bot over HTTP")
    run.add_argument("--host", default=None, help="address to bind (default from config)")
    run.add_argument("--port", type=int, default=None, help="port (default from config)")
    run.add_argument("--bot", default=None, help="bot project folder (default from config)")
    run.set_defaults(handler=_run)
    shell = subparsers.add_parser("shell", help="chat with the bot in the terminal")
    shell.add_argument("--bot", default=None, help="bot project folder (default from config)")
    shell.add_argument("--sender", default="shell", help="conversation id to use")
    shell.set_defaults(handler=_shell)


def configured(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides."""
    config = load_config(args.config)
    updates: dict[str, Any] = {}
    if getattr(args, "bot", None):
        updates["bot"] = config.bot.model_copy(update={"path": args.bot})
    server: dict[str, Any] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    if server:
        updates["server"] = config.server.model_copy(update=server)
    if updates:
        config = config.model_copy(update=updates)
    setup_logging(config.logging.level, config.logging.json_format)
    return config


def _run(args: argparse.Namespace) -> int:
    from bot.server import create_app

    config = configured(args)
    asyncio.run(_serve(create_app(config), config.server.host, config.server.port))
    return 0


async def _serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain (see :func:`bot.server.drain`).

    On the signal the listening socket closes first (new connections are
    refused), running turns finish and deliver, the sockets close with a
    reconnect hint, and then the application shuts down.
    """
    from aiohttp import web

    from bot.server import drain

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        _LOGGER.info("Serving on http://%s:%d", host, port)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        _LOGGER.info("Stopping: no new connections.")
        await site.stop()
        await drain(app)
    finally:
        await runner.cleanup()


def _shell(args: argparse.Namespace) -> int:
    config = configured(args)
    return asyncio.run(_chat(config, args.sender))


async def _chat(config: Config, sender: str) -> int:
    from bot.messages import InboundMessage
    from bot.runtime import Runtime

    async with Runtime(config) as runtime:
        print("Chat with the bot. Type /quit or press Ctrl-D to leave.")
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print()
                return 0
            if text.strip() == "/quit":
                return 0
            message = InboundMessage("shell", sender, sender, text)
            for reply in await runtime.manager.handle(message, delivered=True):
                print(f"bot> {reply.text}")
                for button in reply.buttons:
                    print(f"     [{button.title}] -> {button.payload}")
            sys.stdout.flush()
