"""The assembled bot: store, NLU, actions, flows, engine and manager.

:class:`Runtime` builds everything from a :class:`bot.config.Config` and owns
its lifecycle; the server, the shell, the e2e runner and the benchmarks all
start one.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import tracing
from bot.actions import ActionDeps, ActionRegistry
from bot.bus import Bus, LocalBus
from bot.config import validate_llm_section
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.nlu import ParseResult
from bot.dialogue.project import Project, load_project
from bot.dispatch import Dispatcher
from bot.handoffs import DeskSettings
from bot.lifecycle import Service
from bot.manager import DialogueManager
from bot.storage.claims import Claims
from bot.storage.demo import demo_orders
from bot.storage.store import Store

if TYPE_CHECKING:
    from aiohttp import web

    from bot.config import Config
    from bot.dialogue.answer import Answerer
    from bot.dialogue.nlu import NLU
    from bot.replicas import Replicas

_LOGGER = logging.getLogger(__name__)
ENCODER_FOLDER = "minilm-int8"


class NoNLU:
    """Used when a bot has no NLU data: every message is out of scope."""

    async def parse(self, text: str) -> ParseResult:
        """Return an out-of-scope reading of ``text``."""
        return ParseResult(text, out_of_scope=True, oos_score=1.0)


def build_nlu(project: Project, config: Config) -> NLU:
    """Return the configured NLU backend for the project.

    The embedded NLU is trained (or loaded from cache) in every case: with
    ``nlu.backend: rasa`` it parses whatever the Rasa server cannot.
    """
    if not project.nlu_files:
        _LOGGER.warning("The bot has no NLU data; every message is out of scope.")
        return NoNLU()
    from bot.nlu.embedded import EmbeddedNLU
    from bot.nlu.encoder import prepare_encoder

    encoder_dir = prepare_encoder(config.models.cache_dir / ENCODER_FOLDER)
    embedded = EmbeddedNLU.train(
        project.nlu_files,
        encoder_dir,
        cache_dir=config.models.cache_dir / "nlu",
        intra_op_threads=config.nlu.threads,
    )
    if config.nlu.backend != "rasa":
        return embedded
    from bot.nlu.rasa.factory import build_rasa_nlu

    return build_rasa_nlu(project.nlu_files, config, embedded)


def _replicas(config: Config, store: Store) -> Replicas | None:
    """The Redis-backed parts when ``redis.url`` is set, else ``None`` (one replica)."""
    if not config.redis.url:
        return None
    from bot.replicas import Replicas

    return Replicas(config.redis, store)


class Runtime(Service):
    """Everything a running bot needs, started and stopped together."""

    def __init__(self, config: Config, *, nlu: NLU | None = None) -> None:
        self.config = config
        self.store = Store(config.storage.url)
        self.actions = ActionRegistry(
            deps=ActionDeps(orders=self.store),
            endpoint=config.actions.endpoint or None,
            timeout=config.dialogue.action_timeout_s,
        )
        self._nlu = nlu
        self._manager: DialogueManager | None = None
        #: Business hours and the email outbound, for handoffs; the server sets
        #: it from the connectors it builds, before start.
        self.desk = DeskSettings()
        self.replicas = _replicas(config, self.store)
        self.bus: Bus = self.replicas.bus if self.replicas else LocalBus()
        self.dispatcher = Dispatcher(
            self.store, self.bus, claims=self.replicas.claims if self.replicas else None
        )
        # Every replica, a lone one too, runs the turns of messages it
        # accepted but could not answer (a database outage) and sweeps the
        # outbox, without waiting for a restart.
        from bot.replicas.recovery import recover_forever

        claims = (
            self.replicas.claims
            if self.replicas
            else Claims(self.store, "single", config.redis.delivery_lease_s)
        )
        every = config.redis.recovery_interval_s
        self.dispatcher.add_background(
            lambda: recover_forever(self.dispatcher, claims, every), "recovery"
        )
        # The LLM package is plugged in by name: bot/ talks to it only through
        # the Answerer protocol and the /v1 sub-application.
        from llm.settings import LLMSettings

        self.llm_settings = validate_llm_section(config, LLMSettings)
        self._llm: Any = None
        self._llm_proxy: Any = None
        self.openai_app: web.Application | None = None
        # The /v1 endpoint (llm.api.listen): off, on its own listener or on this port.
        self.api_endpoint: Any = None
        self.api_listener: Any = None
        listen = self.llm_settings.api.listen
        if self.llm_settings.enabled and self.llm_settings.local.enabled and listen != "off":
            factory = importlib.import_module("llm.factory")
            self._llm_proxy = factory.LocalModelProxy("helpline-local")
            self.api_endpoint = factory.openai_endpoint(self._llm_proxy, self.llm_settings)
            if listen == "main":
                self.openai_app = self.api_endpoint.app
            else:
                self.api_listener = factory.api_listener(self.api_endpoint, self.llm_settings)

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has finished and the manager is there."""
        return self._manager is not None

    @property
    def manager(self) -> DialogueManager:
        """The dialogue manager; available once started."""
        if self._manager is None:
            raise RuntimeError("the runtime is not started")
        return self._manager

    def load_project(self) -> Project:
        """Load the bot project, registering its in-process actions first."""
        root = Path(self.config.bot.path)
        actions_file = root / "actions.py"
        if actions_file.exists() and not self.actions.local_names:
            self.actions.load_module(actions_file)
        project = load_project(root, self.actions.has)
        # Action servers read the domain (slots, responses) from each call.
        self.actions.set_domain(project.domain.to_rasa())
        return project

    async def start(self) -> None:
        """Load the bot, open the store, train the NLU and recover lost turns."""
        try:
            tracing.configure(self.config.tracing)
            project = self.load_project()
            await self.store.start()
            await self.store.upgrade()
            if self.replicas is not None:
                await self.replicas.start()
            await self.seed_demo_data()
            await self.actions.start()
            nlu = self._nlu or build_nlu(project, self.config)
            if self._nlu is None and isinstance(nlu, Service):
                self._nlu = nlu
                await nlu.start()
            settings = EngineSettings(
                max_message_chars=self.config.server.max_message_chars,
                action_timeout_s=self.config.dialogue.action_timeout_s,
            )
            answerer = await self._start_llm(project) if self.llm_settings.enabled else None
            engine = Engine(project, self.actions, answerer, settings)
            locks = self.replicas.locks if self.replicas else None
            self._manager = DialogueManager(
                engine,
                nlu,
                self.store,
                locks,
                max_attempts=self.config.dialogue.max_turn_attempts,
                desk=self.desk,
            )
            self.dispatcher.bind(self._manager)
            if self.replicas is None:  # replicas recover periodically (bot/replicas)
                await self._manager.recover()
        except BaseException:
            await self.stop()
            raise

    async def _start_llm(self, project: Project) -> Answerer:
        """Sync the knowledge base and load the models for open-ended turns."""
        from bot.nlu.data import load_nlu
        from bot.nlu.encoder import Encoder, prepare_encoder

        factory = importlib.import_module("llm.factory")
        folder = self.config.models.cache_dir / ENCODER_FOLDER
        encoder_dir = await asyncio.to_thread(prepare_encoder, folder)
        encoder = await asyncio.to_thread(Encoder, encoder_dir)
        # The bot's own regex entities (order ids) are what the cloud must not see.
        nlu_data = await asyncio.to_thread(load_nlu, project.nlu_files)
        self._llm = await factory.build_stack(
            self.llm_settings,
            store=self.store,
            encoder=encoder,
            kb_dir=project.kb_dir,
            models_dir=self.config.models.cache_dir,
            proxy=self._llm_proxy,
            entity_patterns=nlu_data.regexes,
        )
        answerer: Answerer = self._llm.answerer
        return answerer

    async def seed_demo_data(self) -> None:
        """Insert the demo orders, or put them back as they were."""
        await self.store.seed_orders(demo_orders())

    async def stop(self) -> None:
        """Release everything that :meth:`start` opened."""
        await self.dispatcher.stop()
        nlu = self._manager.nlu if self._manager else self._nlu
        if isinstance(nlu, Service):
            await nlu.stop()
        elif (close := getattr(nlu, "close", None)) is not None:
            await asyncio.to_thread(close)  # joins the inference thread
        if self._llm is not None:
            await self._llm.close()
            self._llm = None
        await self.actions.stop()
        if self.replicas is not None:
            await self.replicas.stop()
        await self.store.stop()
        await tracing.shutdown()
