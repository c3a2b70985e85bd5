"""The assembled bot: store, NLU, actions, flows, engine and manager.

:class:`Runtime` builds everything from a :class:`bot.config.Config` and owns
its lifecycle; the server, the shell, the e2e runner and the benchmarks all
start one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Self

from bot.actions import ActionDeps, ActionRegistry
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.nlu import ParseResult
from bot.dialogue.project import Project, load_project
from bot.manager import DialogueManager
from bot.storage.demo import demo_orders
from bot.storage.store import Store

if TYPE_CHECKING:
    from bot.config import Config
    from bot.dialogue.nlu import NLU

_LOGGER = logging.getLogger(__name__)
ENCODER_FOLDER = "minilm-int8"


class NoNLU:
    """Used when a bot has no NLU data: every message is out of scope."""

    async def parse(self, text: str) -> ParseResult:
        """Return an out-of-scope reading of ``text``."""
        return ParseResult(text, out_of_scope=True, oos_score=1.0)


def build_nlu(project: Project, config: Config) -> NLU:
    """Train (or load from cache) the embedded NLU for the project."""
    if not project.nlu_files:
        _LOGGER.warning("The bot has no NLU data; every message is out of scope.")
        return NoNLU()
    from bot.nlu.embedded import EmbeddedNLU
    from bot.nlu.encoder import prepare_encoder

    encoder_dir = prepare_encoder(config.models.cache_dir / ENCODER_FOLDER)
    return EmbeddedNLU.train(
        project.nlu_files,
        encoder_dir,
        cache_dir=config.models.cache_dir / "nlu",
        intra_op_threads=config.nlu.threads,
    )


class Runtime:
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
        return load_project(root, self.actions.has)

    async def start(self) -> None:
        """Load the bot, open the store, train the NLU and recover lost turns."""
        try:
            project = self.load_project()
            await self.store.start()
            await self.store.upgrade()
            await self.seed_demo_data()
            await self.actions.start()
            nlu = self._nlu or build_nlu(project, self.config)
            settings = EngineSettings(
                max_message_chars=self.config.server.max_message_chars,
                action_timeout_s=self.config.dialogue.action_timeout_s,
            )
            engine = Engine(project, self.actions, None, settings)
            self._manager = DialogueManager(engine, nlu, self.store)
            await self._manager.recover()
        except BaseException:
            await self.stop()
            raise

    async def seed_demo_data(self) -> None:
        """Insert the demo orders, or put them back as they were."""
        await self.store.seed_orders(demo_orders())

    async def stop(self) -> None:
        """Release everything that :meth:`start` opened."""
        nlu = self._manager.nlu if self._manager else self._nlu
        close = getattr(nlu, "close", None)
        if close is not None:
            close()
        await self.actions.stop()
        await self.store.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
