from __future__ import annotations

from typing import Any

from llm.prompt import NO_PASSAGES, Prompt, build_prompt, format_passages, history_messages
from llm.types import ChatMessage, Passage


def _words(text: str) -> int:
    """A simple real counter: one token per word."""
    return len(text.split())


PASSAGES = [
    Passage(
        f"a.md#{i}", f"Title {i}", " ".join(["word"] * 40), 0.9 - i / 10, extra={"heading": f"H{i}"}
    )
    for i in range(3)
]
HISTORY: list[dict[str, Any]] = [
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "hello there"},
    {"event": "bot", "text": "Hi! How can I help?"},
    {"event": "slot", "name": "x", "value": 1},
    {"event": "user", "text": "I have a question about returns"},
    {"event": "bot", "text": "Sure, go ahead."},
    {"event": "user", "text": "How long do I have?"},
]


def _build(budget: int, history_limit: int = 6) -> Prompt:
    return build_prompt(
        "How long do I have?",
        PASSAGES,
        HISTORY,
        instructions="Answer from the passages.",
        history_limit=history_limit,
        budget_tokens=budget,
        count_tokens=_words,
    )


def test_full_prompt_has_system_passages_history_and_question() -> None:
    prompt = _build(10_000)
    roles = [m.role for m in prompt.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    system = prompt.messages[0].content
    assert system.startswith("Answer from the passages.")
    assert "[1] Title 0 - H0\n" in system
    assert "[3] Title 2 - H2\n" in system
    assert prompt.messages[1] == ChatMessage("user", "hello there")
    assert prompt.messages[-1] == ChatMessage("user", "How long do I have?")
    assert prompt.passages == tuple(PASSAGES)
    assert prompt.history_kept == 4
    assert prompt.tokens == sum(_words(m.content) + 4 for m in prompt.messages)


def test_history_goes_first_oldest_first_then_lowest_passages() -> None:
    full = _build(10_000).tokens
    one_less = _build(full - 1)
    assert one_less.history_kept == 3
    assert one_less.messages[1] == ChatMessage("assistant", "Hi! How can I help?")
    assert one_less.passages == tuple(PASSAGES)

    no_history = _build(full - 32)  # the four history messages: 6 + 9 + 10 + 7 tokens
    assert no_history.history_kept == 0
    assert len(no_history.passages) == 3

    two_passages = _build(no_history.tokens - 1)
    assert two_passages.history_kept == 0
    assert two_passages.passages == tuple(PASSAGES[:2])
    assert "[3]" not in two_passages.messages[0].content
    for budget in (full - 1, full - 32, no_history.tokens - 1):
        assert _build(budget).tokens <= budget


def test_instructions_and_question_stay_when_nothing_fits() -> None:
    prompt = _build(5)
    assert prompt.passages == ()
    assert prompt.history_kept == 0
    assert NO_PASSAGES in prompt.messages[0].content
    assert prompt.messages[-1].content == "How long do I have?"


def test_history_limit_and_event_filtering() -> None:
    assert history_messages(HISTORY, 2, "How long do I have?") == [
        ChatMessage("user", "I have a question about returns"),
        ChatMessage("assistant", "Sure, go ahead."),
    ]
    assert history_messages(HISTORY, 0) == []
    # Without the question, the last user message is history too.
    assert history_messages(HISTORY, 1)[-1] == ChatMessage("user", "How long do I have?")


def test_passages_without_heading_show_only_the_title() -> None:
    text = format_passages([Passage("b.md#0", "Gift cards", "Never expire.")])
    assert text == "[1] Gift cards\nNever expire."
