"""The dialogue state: slot values and the dialogue stack, JSON-serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Frame:
    """One flow on the dialogue stack.

    Attributes:
        flow_id: The flow this frame runs.
        step_id: The step to run next; ``None`` before the first step.
        waiting: The step is a ``collect`` that has asked and awaits input.
        interrupted: Another user flow was started on top of this one.
        called: The frame was pushed by a ``call`` step of the frame below.
        context: Values a pattern reads as ``context.*``.
    """

    flow_id: str
    step_id: str | None = None
    waiting: bool = False
    interrupted: bool = False
    called: bool = False
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def is_pattern(self) -> bool:
        """Whether the frame runs a conversation-repair pattern."""
        return self.flow_id.startswith("pattern_")


@dataclass
class DialogueState:
    """Everything the engine needs to continue a conversation."""

    slots: dict[str, Any] = field(default_factory=dict)
    stack: list[Frame] = field(default_factory=list)

    def top(self) -> Frame | None:
        """Return the frame on top of the stack."""
        return self.stack[-1] if self.stack else None

    def top_user_frame(self) -> Frame | None:
        """Return the topmost frame that runs a user flow (not a pattern)."""
        return next((f for f in reversed(self.stack) if not f.is_pattern), None)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"slots": dict(self.slots), "stack": [asdict(f) for f in self.stack]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DialogueState:
        """Rebuild a state from :meth:`to_dict` output (``None``: fresh state)."""
        if not data:
            return cls()
        return cls(dict(data.get("slots") or {}), [Frame(**f) for f in data.get("stack") or []])
