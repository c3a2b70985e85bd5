"""What the NLU tells the dialogue core about one message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Intent:
    """An intent name with a calibrated confidence in ``[0, 1]``."""

    name: str
    confidence: float


@dataclass(frozen=True)
class Entity:
    """An extracted entity: ``entity`` names a slot-like type."""

    entity: str
    value: str
    start: int = 0
    end: int = 0
    extractor: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the Rasa-style dict of this entity."""
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "extractor": self.extractor,
        }


@dataclass(frozen=True)
class ParseResult:
    """The NLU's reading of one message.

    Attributes:
        text: The text that was parsed.
        intent: The top intent; ``None`` when the message is out of scope.
        ranking: Intents by falling confidence, at most ten.
        entities: Entities found by the regex and lookup extractors.
        out_of_scope: Whether the message belongs to no known intent.
        oos_score: How out-of-scope the message looks, in ``[0, 1]``.
    """

    text: str
    intent: Intent | None = None
    ranking: tuple[Intent, ...] = ()
    entities: tuple[Entity, ...] = ()
    out_of_scope: bool = False
    oos_score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the Rasa ``/model/parse``-style dict."""
        intent = (
            {"name": self.intent.name, "confidence": self.intent.confidence}
            if self.intent
            else {"name": "out_of_scope", "confidence": self.oos_score}
        )
        return {
            "text": self.text,
            "intent": intent,
            "intent_ranking": [{"name": i.name, "confidence": i.confidence} for i in self.ranking],
            "entities": [e.to_dict() for e in self.entities],
            "out_of_scope": self.out_of_scope,
        }


class NLU(Protocol):
    """Anything that parses text into a :class:`ParseResult`."""

    async def parse(self, text: str) -> ParseResult:
        """Parse one message."""
        ...
