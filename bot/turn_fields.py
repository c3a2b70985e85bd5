"""What a turn adds to its record and to the metrics besides its replies.

The local and cloud confidence of an open-ended answer (shown in the agent
console), and the model provider, tokens, cost and citations of the model
call behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot import metrics

if TYPE_CHECKING:
    from bot.dialogue.engine import TurnResult
    from bot.storage.records import TurnRecord


def scores(result: TurnResult) -> dict[str, Any]:
    """The local and cloud confidence of an open-ended turn, for the agent console."""
    answer = result.answer
    if answer is None:
        return {}
    pairs = (
        ("local_confidence", answer.local_confidence),
        ("cloud_confidence", answer.cloud_confidence),
    )
    return {key: round(value, 4) for key, value in pairs if value is not None}


def answer_fields(result: TurnResult) -> dict[str, Any]:
    """The model provider, tokens, cost and citations of an open-ended turn."""
    answer = result.answer
    if answer is None:
        return {}
    return {
        "provider": answer.provider,
        "tokens_in": answer.tokens_in,
        "tokens_out": answer.tokens_out,
        "cost_usd": answer.cost_usd,
        "citations": list(answer.citations) or None,
    }


def count_model_use(record: TurnRecord) -> None:
    """Add an open-ended turn's tokens and cost to the metrics."""
    if record.provider is None:
        return
    metrics.LLM_TOKENS.labels(record.provider, "in").inc(record.tokens_in or 0)
    metrics.LLM_TOKENS.labels(record.provider, "out").inc(record.tokens_out or 0)
    metrics.LLM_COST.labels(record.provider).inc(record.cost_usd or 0.0)
