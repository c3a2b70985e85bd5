"""Writing e2e test cases for the imported bot, from stories and rules.

A user turn's text is the story's ``user:`` text, the value a story sets for
a slot collected from the whole answer, or else the first NLU example of the
intent with the same entities (their values replaced by the story's). A turn
that only utters responses checks them in order (step style); a turn that runs
custom actions checks with assertions, since what an action says is its own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.errors import FlowError
from bot.nlu.data import parse_example

if TYPE_CHECKING:
    from collections.abc import Mapping


def slug(text: str) -> str:
    """Return ``text`` as a lower-case identifier."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "case"


class E2EWriter:
    """Builds e2e steps from the NLU examples of the imported bot."""

    def __init__(self, examples: Mapping[str, list[str]], slots: Mapping[str, Any]) -> None:
        self.examples = examples
        self.slots = slots

    def user_text(self, intent: str, entities: Mapping[str, Any]) -> str | None:
        """Return an example of ``intent`` with exactly ``entities``, values filled in."""
        for raw in self.examples.get(intent, []):
            try:
                text, found = parse_example(raw)
            except FlowError:
                continue
            if {e.entity for e in found} != set(entities):
                continue
            for entity in sorted(found, key=lambda e: e.start, reverse=True):
                value = entities.get(entity.entity)
                if value is not None:
                    text = text[: entity.start] + str(value) + text[entity.end :]
            return text
        return None

    def turn(
        self, text: str, expected: list[str], slots: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Return the steps of one user turn that runs ``expected`` and sets ``slots``."""
        known = {k: v for k, v in slots.items() if k in self.slots}
        utters = [a for a in expected if a.startswith("utter_")]
        custom = [a for a in expected if not a.startswith("utter_")]
        if not custom:
            steps: list[dict[str, Any]] = [{"user": text}]
            steps += [{"utter": u} for u in utters]
            if known:
                steps.append({"slot_was_set": [{k: v} for k, v in known.items()]})
            return steps
        assertions: list[dict[str, Any]] = [{"action_executed": a} for a in custom]
        assertions += [{"bot_uttered": {"utter_name": u}} for u in utters]
        if known:
            assertions.append({"slot_was_set": [{"name": k, "value": v} for k, v in known.items()]})
        return [{"user": text, "assertions": assertions}]
