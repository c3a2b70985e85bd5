"""The action registry: in-process Python actions and rasa-sdk action servers.

A bot project's ``actions.py`` marks its actions with :func:`action`; marking
registers nothing, so import order never matters. :meth:`ActionRegistry.load_module`
imports the file and registers what it marks, and a name defined twice is an
error. An action that is not local runs on the configured rasa-sdk action
server, when there is one.

Example::

    @action("action_check_order")
    async def check_order(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        order = await deps.orders.get_order(ctx.slots["order_id"])
        ...
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypeVar

from bot.actions.client import ActionServerClient
from bot.actions.webhook import RASA_VERSION
from bot.dialogue.actions import ActionContext, ActionResult
from bot.errors import ActionError
from bot.lifecycle import Service

_LOGGER = logging.getLogger(__name__)

#: The attribute :func:`action` sets on the functions it marks.
_MARK = "__helpline_action__"

#: Seconds an action may run, locally or remotely, unless told otherwise.
DEFAULT_TIMEOUT = 5.0


class OrderLookup(Protocol):
    """Finds and changes orders by id; the Store implements it."""

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        """Return the order as a dict, or ``None`` when there is none."""
        ...

    async def update_order(self, order_id: str, changes: dict[str, Any]) -> bool:
        """Change ``status``, ``shipping_address`` or ``returnable``; ``False`` if unknown."""
        ...


@dataclass(frozen=True)
class ActionDeps:
    """Services an in-process action may use.

    Attributes:
        orders: Order lookup, when a store is configured.
    """

    orders: OrderLookup | None = None


LocalAction = Callable[[ActionContext, ActionDeps], Awaitable[ActionResult]]
_F = TypeVar("_F", bound=LocalAction)


def action(name: str) -> Callable[[_F], _F]:
    """Mark an async function as the in-process action ``name``.

    The function is returned unchanged; :meth:`ActionRegistry.load_module`
    finds it later. Marking registers nothing by itself.
    """
    if not name:
        raise ActionError("an action name must not be empty")

    def mark(fn: _F) -> _F:
        setattr(fn, _MARK, name)
        return fn

    return mark


def marked_name(obj: object) -> str | None:
    """Return the name :func:`action` gave ``obj``, or ``None`` if unmarked."""
    name = getattr(obj, _MARK, None) if callable(obj) else None
    return name if isinstance(name, str) else None


def _describe(fn: object) -> str:
    """Name a function and where it is defined, for error messages."""
    code = getattr(fn, "__code__", None)
    label = getattr(fn, "__qualname__", None) or repr(fn)
    if code is None:
        return label
    return f"{label} ({code.co_filename}:{code.co_firstlineno})"


def _import_file(path: Path) -> ModuleType:
    """Import the Python file at ``path`` under a name no other file gets.

    Raises:
        ActionError: The file is missing or fails to import.
    """
    resolved = path.resolve()
    if not resolved.is_file():
        raise ActionError(f"cannot load actions from {path}: no such file")
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"_helpline_actions_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ActionError(f"cannot load actions from {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so that dataclasses and pickling in it work.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:  # the file itself, or a file it imports
        del sys.modules[module_name]
        where = f"{exc.filename or path}:{exc.lineno}"
        raise ActionError(f"{where}: cannot load actions: {exc.msg}") from exc
    except Exception as exc:
        del sys.modules[module_name]
        where = f"{path}:{_failing_line(exc, resolved)}"
        raise ActionError(f"{where}: cannot load actions: {exc!r}") from exc
    return module


def _failing_line(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` that the traceback of ``exc`` last passed through."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if Path(frame.f_code.co_filename) == path:
            line = lineno
    return line


def _add(table: dict[str, LocalAction], name: str, fn: LocalAction) -> None:
    """Add ``fn`` to ``table`` as action ``name``, refusing a taken name."""
    if not name:
        raise ActionError(f"{_describe(fn)} has an empty action name")
    if not inspect.iscoroutinefunction(fn):
        raise ActionError(f"action {name!r} must be an async function: {_describe(fn)}")
    existing = table.get(name)
    if existing is not None:
        raise ActionError(
            f"action {name!r} is defined twice: by {_describe(existing)} and by {_describe(fn)}"
        )
    table[name] = fn


class ActionRegistry(Service):
    """Runs custom actions by name; implements the ``ActionRunner`` protocol.

    Local actions run first. Any other name goes to the rasa-sdk action server
    at ``endpoint`` (for example ``http://127.0.0.1:5055/webhook``) when one is
    configured, through an :class:`~bot.actions.client.ActionServerClient`
    whose HTTP session :meth:`start` opens and :meth:`stop` closes; the
    registry is also an async context manager.

    Args:
        deps: Services handed to in-process actions.
        endpoint: The action server's webhook URL, or ``None`` for local only.
        domain: The domain dict sent to the action server.
        timeout: Seconds an action may take, locally or remotely.
        rasa_version: The Rasa version announced to the action server.
        send_domain: Send the domain with every remote call (``True``, what
            every rasa-sdk version understands), or only when the server asks
            with a 449 (``False``, for rasa-sdk 3.8 and later); see
            :mod:`bot.actions.client`.
    """

    def __init__(
        self,
        *,
        deps: ActionDeps | None = None,
        endpoint: str | None = None,
        domain: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        rasa_version: str = RASA_VERSION,
        send_domain: bool = True,
    ) -> None:
        if timeout <= 0:
            raise ActionError(f"action timeout must be positive, not {timeout!r}")
        self._deps = deps or ActionDeps()
        self._timeout = timeout
        self._local: dict[str, LocalAction] = {}
        self._remote = (
            ActionServerClient(
                endpoint,
                domain=domain,
                timeout=timeout,
                rasa_version=rasa_version,
                send_domain=send_domain,
            )
            if endpoint
            else None
        )

    @property
    def endpoint(self) -> str | None:
        """The action server's webhook URL, if any."""
        return self._remote.url if self._remote is not None else None

    @property
    def sends_domain(self) -> bool:
        """Whether remote calls carry the domain (see :mod:`bot.actions.client`)."""
        return self._remote is not None and self._remote.wants_domain

    def set_domain(self, domain: Mapping[str, Any] | None) -> None:
        """Send ``domain`` to the action server from now on (``project.domain.to_rasa()``)."""
        if self._remote is not None:
            self._remote.set_domain(domain)

    @property
    def local_names(self) -> list[str]:
        """The names of the in-process actions, sorted."""
        return sorted(self._local)

    def register(self, name: str, fn: LocalAction) -> None:
        """Register the async function ``fn`` as the in-process action ``name``.

        Raises:
            ActionError: ``name`` is taken or ``fn`` is not an async function.
        """
        _add(self._local, name, fn)

    def load_module(self, path: Path) -> list[str]:
        """Import a bot project's ``actions.py`` and register what it marks.

        All of the file's actions are registered, or none of them.

        Returns:
            The names registered, sorted.

        Raises:
            ActionError: The file fails to import or defines a taken name.
        """
        module = _import_file(path)
        table = dict(self._local)
        seen: set[int] = set()
        added: list[str] = []
        for value in vars(module).values():
            name = marked_name(value)
            # The same function bound to two variables is still one action.
            if name is not None and id(value) not in seen:
                seen.add(id(value))
                _add(table, name, value)
                added.append(name)
        self._local = table
        _LOGGER.info("Loaded %d actions from %s.", len(added), path)
        return sorted(added)

    def has(self, name: str) -> bool:
        """Return whether ``name`` can run: it is local, or a server is set."""
        return name in self._local or self._remote is not None

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        """Run action ``name``, in process when local, else on the action server.

        Raises:
            ActionError: The action is unknown, failed or timed out.
        """
        fn = self._local.get(name)
        if fn is not None:
            return await self._run_local(name, fn, context)
        if self._remote is None:
            raise ActionError(f"no action named {name!r} and no action server configured")
        return await self._remote.run(name, context)

    async def _run_local(self, name: str, fn: LocalAction, context: ActionContext) -> ActionResult:
        """Run an in-process action under the timeout, translating its errors."""
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                result = await fn(context, self._deps)
        except ActionError:
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise ActionError(f"action {name!r} timed out after {self._timeout:g} s") from exc
            raise ActionError(f"action {name!r} failed: {exc!r}") from exc
        if not isinstance(result, ActionResult):
            raise ActionError(f"action {name!r} returned {type(result).__name__}, not ActionResult")
        return result

    async def start(self) -> None:
        """Open the HTTP session for the action server; idempotent."""
        if self._remote is not None:
            await self._remote.start()

    async def stop(self) -> None:
        """Close the HTTP session; idempotent."""
        if self._remote is not None:
            await self._remote.stop()
