"""Build the chat messages of a grounded answer within a token budget.

The prompt is, in order:

1. a ``system`` message: the instructions from the settings, then the
   passages numbered ``[1]`` .. ``[k]`` (best first), each with its article
   title and section heading, so the model can cite them as ``[n]``;
2. the recent conversation (the last ``history_messages`` user and bot
   events) as ``user`` / ``assistant`` messages;
3. the question as the last ``user`` message.

When the whole prompt exceeds ``prompt_budget_tokens`` (measured with the
model's own ``count_tokens``), the oldest history goes first, then the
lowest-ranked passages. The instructions and the question are always kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm.types import ChatMessage, Passage

_LOGGER = logging.getLogger(__name__)
# Chat templates add a few tokens per message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4
NO_PASSAGES = "(No passage of the knowledge base matches this question.)"

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """Estimate tokens without a tokenizer: about 4 characters per token."""
    return len(text) // 4 + 1


@dataclass(frozen=True)
class Prompt:
    """The messages to send and what they contain.

    Attributes:
        messages: System, history and question, ready for a ``ChatModel``.
        passages: The passages kept, in the order numbered ``[1]`` .. ``[k]``.
        history_kept: How many history messages were kept.
        tokens: The prompt size by the counter used, overheads included.
    """

    messages: tuple[ChatMessage, ...]
    passages: tuple[Passage, ...]
    history_kept: int
    tokens: int


def format_passages(passages: Sequence[Passage]) -> str:
    """Number the passages ``[1]`` .. ``[k]`` with their title and heading."""
    if not passages:
        return NO_PASSAGES
    blocks = []
    for number, passage in enumerate(passages, start=1):
        heading = passage.extra.get("heading", "")
        label = f"{passage.title} - {heading}" if heading else passage.title
        blocks.append(f"[{number}] {label}\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def history_messages(
    history: Sequence[Mapping[str, Any]], limit: int, question: str | None = None
) -> list[ChatMessage]:
    """Turn Rasa-style ``user`` and ``bot`` events into the last ``limit`` chat messages.

    Other events (slots, actions, flows) are skipped. A trailing user event
    that repeats ``question`` is dropped: the question is added separately.
    """
    messages = []
    for event in history:
        role = {"user": "user", "bot": "assistant"}.get(str(event.get("event")))
        text = event.get("text")
        if role and isinstance(text, str) and text.strip():
            messages.append(ChatMessage(role, text.strip()))
    if messages and question is not None and messages[-1] == ChatMessage("user", question.strip()):
        messages.pop()
    return messages[-limit:] if limit > 0 else []


def _system(instructions: str, passages: Sequence[Passage]) -> ChatMessage:
    return ChatMessage("system", f"{instructions}\n\nPassages:\n\n{format_passages(passages)}")


def build_prompt(
    question: str,
    passages: Sequence[Passage],
    history: Sequence[Mapping[str, Any]],
    *,
    instructions: str,
    history_limit: int,
    budget_tokens: int,
    count_tokens: TokenCounter = approx_tokens,
) -> Prompt:
    """Build the messages for ``question`` within ``budget_tokens``.

    Args:
        question: The customer's message.
        passages: Retrieved passages, best first.
        history: The conversation's events, oldest first.
        instructions: The system prompt.
        history_limit: The most history messages to include.
        budget_tokens: The largest prompt, in tokens.
        count_tokens: The model's token counter.

    Returns:
        The prompt; see :class:`Prompt`.
    """
    turns = history_messages(history, history_limit, question)
    kept = list(passages)

    def size(message: ChatMessage) -> int:
        return count_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS

    asked = ChatMessage("user", question.strip())
    turn_sizes = [size(m) for m in turns]
    fixed = size(asked)
    system = _system(instructions, kept)
    total = fixed + size(system) + sum(turn_sizes)
    while total > budget_tokens and turns:
        turns.pop(0)
        total -= turn_sizes.pop(0)
    while total > budget_tokens and kept:
        kept.pop()
        system = _system(instructions, kept)
        total = fixed + size(system)
    if total > budget_tokens:
        _LOGGER.warning(
            "The prompt needs %d tokens even without passages or history (budget %d).",
            total,
            budget_tokens,
        )
    _LOGGER.debug(
        "The prompt has %d tokens, %d of %d passages and %d history messages.",
        total,
        len(kept),
        len(passages),
        len(turns),
    )
    messages = (system, *turns, asked)
    return Prompt(messages, tuple(kept), len(turns), total)
