"""Button payloads: Rasa's ``/intent{"entity": "value"}`` messages, read without NLU."""

from __future__ import annotations

import json
import re

from bot.dialogue.nlu import Entity, Intent, ParseResult

_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w-]*)(?P<entities>\{.*\})?$", re.DOTALL)


def parse_payload(text: str) -> ParseResult | None:
    """Read a Rasa button payload such as ``/affirm`` or ``/inform{"order_id": "HL-1"}``."""
    match = _PAYLOAD.match(text.strip())
    if match is None:
        return None
    entities: tuple[Entity, ...] = ()
    if match.group("entities"):
        try:
            data = json.loads(match.group("entities"))
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        entities = tuple(Entity(str(k), str(v), extractor="payload") for k, v in data.items())
    intent = Intent(match.group("intent"), 1.0)
    return ParseResult(text, intent, (intent,), entities)


def csat_score(text: str) -> int | None:
    """Read a ``/csat{"score": N}`` payload (N from 1 to 5), else ``None``."""
    parsed = parse_payload(text)
    if parsed is None or parsed.intent is None or parsed.intent.name != "csat":
        return None
    values = [e.value for e in parsed.entities if e.entity == "score"]
    if len(values) != 1 or values[0] not in {"1", "2", "3", "4", "5"}:
        return None
    return int(values[0])
