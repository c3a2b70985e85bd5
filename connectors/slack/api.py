"""The Slack Web API, with its errors translated at this one boundary.

slack-sdk's :class:`AsyncWebClient` does the HTTP. Its own retry handlers
are switched off (``retry_handlers=[]``): the outbox already retries every
reply with backoff, honours ``Retry-After`` and survives restarts, and two
retry layers would multiply the attempts and hold a reply's delivery task
hostage to a second, invisible backoff. Every failure leaves this module as a
:class:`DeliveryError`:

* HTTP 429 → ``DeliveryError(retry_after=Retry-After)``;
* HTTP 5xx, Slack's transient errors (``internal_error``, ``fatal_error``,
  ``service_unavailable``, ``request_timeout``) and connection errors or
  timeouts → ``DeliveryError`` (retried);
* anything else Slack refuses (``channel_not_found``, ``not_in_channel``,
  ``is_archived``, ``invalid_auth``...) → ``DeliveryError(permanent=True)``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import DeliveryError

#: ``ok: false`` errors that may pass if the call is made again later.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
#: Errors that mean the token itself is wrong: a configuration problem.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
DEFAULT_RETRY_AFTER_S = 1.0


class SlackApi:
    """A Web API client for one token, over one pooled aiohttp session.

    Args:
        token: The token calls are made with (bot or app-level).
        base_url: The Web API base URL.
        timeout_s: The time limit of one call.
    """

    def __init__(self, token: str, base_url: str, timeout_s: float) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    @property
    def client(self) -> AsyncWebClient:
        """The underlying slack-sdk client (Socket Mode shares it)."""
        if self._client is None:
            raise RuntimeError("the Slack API client is not started")
        return self._client

    async def start(self) -> None:
        """Open the HTTP session."""
        timeout = aiohttp.ClientTimeout(total=self._timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._client = AsyncWebClient(
            token=self._token,
            base_url=self._base_url,
            session=self._session,
            timeout=int(self._timeout_s),
            retry_handlers=[],  # the outbox is the one retry layer
        )

    async def stop(self) -> None:
        """Close the HTTP session."""
        session, self._session, self._client = self._session, None, None
        if session is not None:
            await session.close()

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call a Web API method with a JSON body and return Slack's answer.

        Raises:
            DeliveryError: Slack refused or could not be reached; see the
                module docstring for which errors are retried.
        """
        return await self._call(method, {"json": kwargs})

    async def read(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call a read method (``conversations.history``...) with query arguments.

        Slack takes JSON bodies only for write methods.

        Raises:
            DeliveryError: As :meth:`call`.
        """
        return await self._call(method, {"http_verb": "GET", "params": kwargs})

    async def _call(self, method: str, how: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, **how)
        except SlackApiError as exc:
            raise translate(method, exc) from exc
        except aiohttp.ClientConnectorError as exc:  # nothing was sent
            raise DeliveryError(f"Slack {method}: cannot reach Slack: {exc!r}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The request may have gone out and been taken before the answer was lost.
            raise DeliveryError(
                f"Slack {method}: cannot reach Slack: {exc!r}", maybe_delivered=True
            ) from exc
        except SlackClientError as exc:
            raise DeliveryError(f"Slack {method}: {exc}", permanent=True) from exc
        data = response.data
        return data if isinstance(data, dict) else {}


def error_code(exc: SlackApiError) -> str:
    """Slack's ``error`` string of a failed call, or ``http_<status>``."""
    data = exc.response.data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return f"http_{exc.response.status_code}"


def translate(method: str, exc: SlackApiError) -> DeliveryError:
    """Map a refused Web API call onto a retried or permanent :class:`DeliveryError`."""
    status, code = exc.response.status_code, error_code(exc)
    text = f"Slack {method} failed: {code} (HTTP {status})"
    if status == 429:
        return DeliveryError(text, retry_after=_retry_after(exc.response.headers))
    if status >= 500 or code in TRANSIENT_ERRORS:
        return DeliveryError(text)
    return DeliveryError(text, permanent=True)


def _retry_after(headers: Any) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
