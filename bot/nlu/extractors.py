"""Regex and lookup-table entity extraction, with synonym mapping.

The entity name is the regex or lookup name. Lookup values match without
regard to case, on word boundaries; longer values win over their prefixes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.dialogue.nlu import Entity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class EntityExtractor:
    """Finds regex and lookup entities in a text."""

    def __init__(
        self,
        regexes: Mapping[str, Sequence[str]],
        lookups: Mapping[str, Sequence[str]],
        synonyms: Mapping[str, str],
    ) -> None:
        """Compile the patterns once.

        Args:
            regexes: Patterns by entity name.
            lookups: Values by entity name.
            synonyms: Canonical value by lower-cased variant.
        """
        self._synonyms = {k.lower(): v for k, v in synonyms.items()}
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []
        for name, patterns in regexes.items():
            for pattern in patterns:
                self._patterns.append((name, "regex", re.compile(pattern)))
        for name, values in lookups.items():
            words = sorted({v.strip() for v in values if v.strip()}, key=len, reverse=True)
            if words:
                alternation = "|".join(re.escape(w) for w in words)
                compiled = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)
                self._patterns.append((name, "lookup", compiled))

    def extract(self, text: str) -> tuple[Entity, ...]:
        """Return the entities in ``text``, by position."""
        found: dict[tuple[str, int, int], Entity] = {}
        for name, kind, pattern in self._patterns:
            for match in pattern.finditer(text):
                if match.end() == match.start():
                    continue
                raw = match.group(0)
                value = self._synonyms.get(raw.lower(), raw)
                key = (name, match.start(), match.end())
                found.setdefault(key, Entity(name, value, match.start(), match.end(), kind))
        return tuple(sorted(found.values(), key=lambda e: (e.start, e.end, e.entity)))
