"""The HTTP client of one rasa-sdk action server.

This is the one place where aiohttp errors become :class:`~bot.errors.ActionError`.

The domain: rasa-sdk 3.6 reads it from every call (and hands the action ``{}``
when it is missing); rasa-sdk 3.8 and later keep the last domain they got,
under its digest, and answer 449 when a call carries neither the domain nor
the digest they hold. The client keeps a "server wants the domain" flag: while
it is set every call carries the domain; while it is not, calls carry only the
digest, and a 449 makes the client resend the call with the domain and set
the flag for the calls after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.actions.webhook import (
    DOMAIN_MISSING,
    RASA_VERSION,
    build_action_call,
    complete_domain,
    domain_digest,
    error_message,
    parse_action_response,
)
from bot.errors import ActionError
from bot.lifecycle import Service

if TYPE_CHECKING:
    from bot.dialogue.actions import ActionContext, ActionResult

_LOGGER = logging.getLogger(__name__)


class ActionServerClient(Service):
    """Runs actions on the rasa-sdk action server at ``url`` over one HTTP session.

    Args:
        url: The webhook URL, for example ``http://127.0.0.1:5055/webhook``.
        domain: The domain dict sent to the server.
        timeout: Seconds one action may take, a resend after a 449 included.
        rasa_version: The Rasa version announced to the server.
        send_domain: The initial "server wants the domain" flag. ``True``
            (the default, Rasa 3.6's behaviour) sends the domain with every
            call, which every rasa-sdk version understands; ``False`` sends
            only its digest until the server answers 449, as Rasa Pro does
            with rasa-sdk 3.8 and later.
    """

    def __init__(
        self,
        url: str,
        *,
        domain: Mapping[str, Any] | None = None,
        timeout: float,
        rasa_version: str = RASA_VERSION,
        send_domain: bool = True,
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._rasa_version = rasa_version
        self._wants_domain = send_domain
        self._domain: dict[str, Any] = {}
        self._digest = ""
        self._session: aiohttp.ClientSession | None = None
        self.set_domain(domain)

    @property
    def wants_domain(self) -> bool:
        """Whether calls carry the domain itself, not only its digest."""
        return self._wants_domain

    def set_domain(self, domain: Mapping[str, Any] | None) -> None:
        """Send ``domain`` from now on (its new digest tells a caching server it changed)."""
        self._domain = complete_domain(domain)
        self._digest = domain_digest(self._domain)

    async def start(self) -> None:
        """Open the HTTP session; idempotent."""
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Close the HTTP session; idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        """Run action ``name`` on the server and return what it answered.

        Raises:
            ActionError: The client is not started, or the server is
                unreachable, timed out, refused the action (404 unknown, 400
                rejected, 449 domain missing even with the domain, 5xx
                failed) or answered with something that is not an answer.
        """
        if self._session is None:
            raise ActionError(f"cannot run {name!r} remotely: the action registry is not started")
        deadline = asyncio.get_running_loop().time() + self._timeout
        sent_domain = self._wants_domain
        status, text = await self._post(self._session, name, context, sent_domain, deadline)
        if status == DOMAIN_MISSING and not sent_domain:
            _LOGGER.info(
                "Action server at %s asked for the domain; it goes with every call from now on.",
                self.url,
            )
            self._wants_domain = True
            status, text = await self._post(self._session, name, context, True, deadline)
        if status != 200:
            raise ActionError(error_message(self.url, name, status, text))
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ActionError(
                f"action server at {self.url} answered {name!r} with invalid JSON"
            ) from exc
        return parse_action_response(name, body)

    def _encode(self, name: str, context: ActionContext, include_domain: bool) -> str:
        """Return the JSON body of the call that runs ``name``.

        Raises:
            ActionError: The tracker holds a value that is not JSON.
        """
        payload = build_action_call(
            name,
            context,
            self._domain,
            self._rasa_version,
            include_domain=include_domain,
            digest=self._digest,
        )
        try:
            return json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise ActionError(
                f"cannot send action {name!r}: the tracker is not JSON: {exc}"
            ) from exc

    async def _post(
        self,
        session: aiohttp.ClientSession,
        name: str,
        context: ActionContext,
        include_domain: bool,
        deadline: float,
    ) -> tuple[int, str]:
        """POST one action call before ``deadline`` (loop time); return the status and body."""
        data = self._encode(name, context, include_domain)
        remaining = deadline - asyncio.get_running_loop().time()
        _LOGGER.debug("Calling action %s on %s (domain sent: %s).", name, self.url, include_domain)
        try:
            async with session.post(
                self.url,
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=max(remaining, 0.001)),
            ) as resp:
                return resp.status, await resp.text()
        except TimeoutError as exc:
            raise ActionError(
                f"action {name!r} timed out after {self._timeout:g} s at action server {self.url}"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ActionError(f"action server at {self.url} is unreachable: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ActionError(f"action server at {self.url} failed on {name!r}: {exc}") from exc
