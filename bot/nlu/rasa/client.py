"""Parsing through Rasa's ``/model/parse``, with the embedded NLU as a fallback.

No turn fails because Rasa is down: when the server is not ready, times out,
refuses the connection or answers nonsense, the message is parsed by the
fallback NLU, ``helpline_nlu_fallbacks_total{reason}`` counts it and a
warning is logged (once per outage, then at most once a minute).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.dialogue.nlu import NLU, Entity, Intent, ParseResult
from bot.errors import NLUError
from bot.lifecycle import Service
from bot.metrics import NLU_FALLBACKS

_LOGGER = logging.getLogger(__name__)

RANKING_SIZE = 10
#: Seconds between repeated warnings while Rasa stays unavailable.
WARN_EVERY_S = 60.0


def _entity(raw: Any) -> Entity | None:
    if not isinstance(raw, dict) or "entity" not in raw or "value" not in raw:
        return None
    return Entity(
        entity=str(raw["entity"]),
        value=str(raw["value"]),
        start=int(raw.get("start") or 0),
        end=int(raw.get("end") or 0),
        extractor=str(raw.get("extractor") or "rasa"),
    )


def from_rasa(body: Any, text: str, threshold: float) -> ParseResult:
    """Turn a ``/model/parse`` answer into a :class:`ParseResult`.

    DIET's top confidence is the in-scope score: below ``threshold`` the
    message is out of scope, as with the embedded NLU.

    Raises:
        NLUError: The answer is not a Rasa parse result.
    """
    if not isinstance(body, dict) or not isinstance(body.get("intent"), dict):
        raise NLUError("Rasa answered /model/parse without an intent")
    ranking = tuple(
        Intent(str(item["name"]), float(item.get("confidence") or 0.0))
        for item in body.get("intent_ranking") or [body["intent"]]
        if isinstance(item, dict) and item.get("name")
    )[:RANKING_SIZE]
    top = ranking[0] if ranking else None
    confidence = top.confidence if top else 0.0
    out_of_scope = top is None or confidence < threshold
    entities = tuple(e for e in map(_entity, body.get("entities") or []) if e is not None)
    return ParseResult(
        text=text,
        intent=None if out_of_scope else top,
        ranking=ranking,
        entities=entities,
        out_of_scope=out_of_scope,
        oos_score=1.0 - confidence,
    )


class RasaNLU(Service):
    """An :class:`~bot.dialogue.nlu.NLU` that asks a Rasa server, or the fallback.

    Args:
        url: Returns the server's base URL, or ``None`` while it is not ready.
        fallback: Parses whatever Rasa cannot.
        timeout_s: The whole ``/model/parse`` exchange's limit.
        threshold: DIET confidence below which a message is out of scope.
        owned: Started and stopped with this client (the sidecar).
    """

    def __init__(
        self,
        url: Callable[[], str | None],
        fallback: NLU,
        *,
        timeout_s: float = 1.0,
        threshold: float = 0.5,
        owned: Service | None = None,
    ) -> None:
        self._url = url
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.threshold = threshold
        self.owned = owned
        self._session: aiohttp.ClientSession | None = None
        self._outage_since: float | None = None
        self._last_warning = 0.0
        self._last_failure: str | None = None

    async def start(self) -> None:
        """Open the HTTP session and start the owned sidecar."""
        self._session = aiohttp.ClientSession()
        if self.owned is not None:
            await self.owned.start()

    async def stop(self) -> None:
        """Stop the sidecar, close the session and the fallback."""
        if self.owned is not None:
            await self.owned.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        close = getattr(self.fallback, "close", None)
        if close is not None:
            close()

    def status(self) -> dict[str, Any]:
        """Return what ``/healthz`` reports: ``rasa`` is ready, starting, off or failing."""
        info: dict[str, Any] = {"backend": "rasa", "url": self._url()}
        sidecar = self.owned
        error = getattr(sidecar, "error", None)
        if error:
            info.update(rasa="off", reason=error)
        elif info["url"] is None:
            info["rasa"] = "starting"
        else:
            failing = self._last_failure not in (None, "not_ready")
            info["rasa"] = "failing" if failing else "ready"
        if sidecar is not None:
            info.update(pid=getattr(sidecar, "pid", None), restarts=getattr(sidecar, "restarts", 0))
        return info

    async def parse(self, text: str) -> ParseResult:
        """Parse with Rasa, or with the fallback NLU when Rasa cannot answer."""
        base = self._url()
        if base is None or self._session is None:
            return await self._fall_back(text, "not_ready", "the Rasa server is not ready")
        try:
            async with self._session.post(
                f"{base}/model/parse",
                json={"text": text},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                if resp.status != 200:
                    detail = (await resp.text())[:200]
                    return await self._fall_back(text, "error", f"HTTP {resp.status}: {detail}")
                body = await resp.json(content_type=None)
            result = from_rasa(body, text, self.threshold)
        except TimeoutError:
            return await self._fall_back(text, "timeout", f"no answer in {self.timeout_s:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return await self._fall_back(text, "unavailable", str(exc) or type(exc).__name__)
        except (ValueError, NLUError) as exc:
            return await self._fall_back(text, "error", str(exc))
        self._last_failure = None
        if self._outage_since is not None:
            _LOGGER.info("Rasa answers again after %.1f s.", time.monotonic() - self._outage_since)
            self._outage_since = None
        return result

    async def _fall_back(self, text: str, reason: str, detail: str) -> ParseResult:
        NLU_FALLBACKS.labels(reason=reason).inc()
        self._last_failure = reason
        now = time.monotonic()
        first = self._outage_since is None
        if first:
            self._outage_since = now
        if first or now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            _LOGGER.warning(
                "Rasa NLU unavailable (%s: %s); the embedded NLU parses instead.", reason, detail
            )
        return await self.fallback.parse(text)
