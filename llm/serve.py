"""``helpline serve-model``: the local model as a worker process behind the OpenAI API.

The worker listens at once and loads the configured local model in the background
(``/healthz`` says ``loading`` with 503 until it is ``ready``). It serves:

- ``/v1/chat/completions`` and ``/v1/models`` (:mod:`llm.openai_api`); every
  response carries ``X-Helpline-Load`` (chat requests inside the worker, generating
  or queued) and ``X-Helpline-Capacity`` (one generating plus ``max_queue``
  waiting), which :class:`llm.pool.WorkerPool` routes by;
- ``/healthz``: ``status`` (loading/ready/draining/failed), the model, queue depth,
  load and capacity;
- ``/metrics``: Prometheus metrics (``helpline_model_server_*``).

On SIGTERM or SIGINT it drains: new chat requests get 503 with ``Retry-After`` (a
pool routes them to another worker), requests in flight finish, then it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from llm.factory import LocalModelProxy, load_local, openai_endpoint
from llm.openai_api import RETRY_AFTER_S, error_response
from llm.pool import CAPACITY_HEADER, LOAD_HEADER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from llm.local.runtime import LocalModel
    from llm.settings import LLMSettings

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT = 8081
DRAIN_TIMEOUT_S = 120.0


class ModelServer:
    """The worker's state and its aiohttp application.

    Args:
        settings: The ``llm`` settings (``llm.local`` says which model and its queue).
        models_dir: The model cache (``models.cache_dir``).
        name: The model id served at ``/v1/models``.
    """

    def __init__(
        self, settings: LLMSettings, models_dir: Path, *, name: str = "helpline-local"
    ) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self.proxy = LocalModelProxy(name)
        self.endpoint = openai_endpoint(self.proxy, settings)
        self._model: LocalModel | None = None
        self.status = "loading"
        self.in_flight = 0
        self.capacity = settings.local.max_queue + 1

    @property
    def model(self) -> LocalModel | None:
        """The loaded model, once ready."""
        return self._model

    def app(self) -> web.Application:
        """The worker's application: ``/v1``, ``/healthz`` and ``/metrics``."""
        app = web.Application(middlewares=[self._admit])
        app.add_subapp("/v1", self.endpoint.app)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.on_response_prepare.append(self._load_headers)
        return app

    async def load(self) -> None:
        """Load the configured model (preparing it first if it is not yet)."""
        try:
            self._model = await load_local(self.settings, self.models_dir)
            self.proxy.model = self._model
        except BaseException:
            self.status = "failed"
            raise
        if self.status == "loading":
            self.status = "ready"
        _LOGGER.info("The model worker is ready.")

    async def drain(self, timeout_s: float) -> None:
        """Refuse new chat requests; those in flight get ``timeout_s``, then are ended.

        A stream still running at the deadline ends with an error event and
        ``data: [DONE]`` (see :meth:`llm.openai_api.OpenAIEndpoint.drain`).
        """
        self.status = "draining"
        _LOGGER.info("Draining: %d request(s) in flight.", self.in_flight)
        if not await self.endpoint.drain(timeout_s):
            _LOGGER.warning("%d request(s) still in flight after %g s.", self.in_flight, timeout_s)

    async def close(self) -> None:
        """Stop the model."""
        if self._model is not None:
            self.proxy.model = None
            await self._model.stop()
            self._model = None

    @web.middleware
    async def _admit(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Count chat requests in flight; refuse them with 503 unless ready."""
        if not request.path.startswith("/v1/chat/"):
            return await handler(request)
        if self.status != "ready":
            refusal = error_response(
                503, f"The model worker is {self.status}.", kind="server_error", code="model_busy"
            )
            refusal.headers["Retry-After"] = str(RETRY_AFTER_S)
            metrics.MODEL_SERVER_REQUESTS.labels("503").inc()
            return refusal
        self._enter()
        status = "500"
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        finally:
            metrics.MODEL_SERVER_REQUESTS.labels(status).inc()
            self._leave()

    def _enter(self) -> None:
        self.in_flight += 1
        metrics.MODEL_SERVER_IN_FLIGHT.set(self.in_flight)

    def _leave(self) -> None:
        self.in_flight -= 1
        metrics.MODEL_SERVER_IN_FLIGHT.set(self.in_flight)

    async def _load_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Tell a pool how loaded this worker is, on every response."""
        response.headers[LOAD_HEADER] = str(self.in_flight)
        response.headers[CAPACITY_HEADER] = str(self.capacity)

    def _queue_depth(self) -> int:
        model = self._model
        return model.queue_depth if model is not None else 0

    async def healthz(self, request: web.Request) -> web.Response:
        """``GET /healthz``: 200 when ready, else 503; both say status and load."""
        model = self._model
        body: dict[str, Any] = {
            "status": self.status,
            "model": self.proxy.name,
            "queue_depth": self._queue_depth(),
            "busy": bool(model is not None and model.gate.busy),
            "in_flight": self.in_flight,
            "capacity": self.capacity,
        }
        return web.json_response(body, status=200 if self.status == "ready" else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """``GET /metrics``: the Prometheus metrics."""
        metrics.MODEL_SERVER_QUEUE.set(self._queue_depth())
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(
    settings: LLMSettings,
    models_dir: Path,
    *,
    host: str,
    port: int,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
) -> int:
    """Run a model worker until SIGTERM/SIGINT; return the exit status (1 if loading failed)."""
    server = ModelServer(settings, models_dir)
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    if not settings.api.keys and host not in ("127.0.0.1", "::1", "localhost"):
        _LOGGER.warning(
            "The model worker listens on %s without llm.api.keys: anyone who reaches it "
            "may use the model.",
            host,
        )
    try:
        await web.TCPSite(runner, host, port).start()
        _LOGGER.info("The model worker listens on http://%s:%d (loading the model).", host, port)
        loading = asyncio.create_task(server.load())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if loading.done() and loading.exception() is not None:
            _LOGGER.error("The model could not be loaded: %s", loading.exception())
            status = 1
        else:
            await stopping
        loading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loading
        await server.drain(drain_timeout_s)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        await server.close()
    _LOGGER.info("The model worker stopped.")
    return status
