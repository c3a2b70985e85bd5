"""Model drafts: how they are shown, and whether a model's drafts are worth waiting for.

``llm.answer_mode: auto`` asks the local model for a draft only while its
drafts pass the groundedness checks. :class:`DraftRecord` keeps the outcome
of the last :data:`WINDOW` drafts: the model is asked while fewer than
:data:`MIN_DRAFTS` are known or while at least :data:`MIN_PASS_RATE` of them
passed; otherwise only every :data:`PROBE_EVERY`-th question, so a model
that improves (a better one behind the same URL) is noticed again. With the
embedded 135M model nearly every draft fails, so after a few questions the
bot quotes the KB at once instead of making customers wait seconds for a
draft that will be thrown away.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING

from llm.grounding import citation_numbers, strip_markers

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.types import Passage

WINDOW = 20
MIN_DRAFTS = 3
MIN_PASS_RATE = 0.5
PROBE_EVERY = 10

_SPACES = re.compile(r"[ \t]+")


class DraftRecord:
    """The pass/fail record of a model's recent drafts (see the module docstring)."""

    def __init__(self) -> None:
        self._outcomes: deque[bool] = deque(maxlen=WINDOW)
        self._skipped = 0

    @property
    def pass_rate(self) -> float | None:
        """The share of recent drafts that passed, ``None`` before any."""
        if not self._outcomes:
            return None
        return sum(self._outcomes) / len(self._outcomes)

    def worth_trying(self) -> bool:
        """Whether to ask the model for a draft now (counts a skipped question)."""
        rate = self.pass_rate
        if len(self._outcomes) < MIN_DRAFTS or (rate is not None and rate >= MIN_PASS_RATE):
            return True
        self._skipped += 1
        if self._skipped >= PROBE_EVERY:
            self._skipped = 0
            return True
        return False

    def record(self, passed: bool) -> None:
        """Note the outcome of one draft."""
        self._outcomes.append(passed)


def render_draft(text: str, passages: Sequence[Passage]) -> tuple[str, tuple[str, ...]]:
    """Return a draft's customer-facing text and the ids of the passages it cites.

    ``[n]`` markers are removed and the cited articles' titles appended as
    ``(Source: A; B)``. With no valid marker the top passage is the citation
    and no source line is added (the draft may not come from it). List
    numbering such as "[1] Visa" is not a citation.
    """
    numbers = citation_numbers(text, len(passages))
    clean = _SPACES.sub(" ", strip_markers(text)).strip()
    if not numbers:
        return clean, (passages[0].id,) if passages else ()
    cited = [passages[n - 1] for n in numbers]
    titles = list(dict.fromkeys(p.title for p in cited))
    return f"{clean}\n\n(Source: {'; '.join(titles)})", tuple(p.id for p in cited)
