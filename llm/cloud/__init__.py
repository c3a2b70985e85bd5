"""Cloud models over OpenAI-compatible Chat Completions: chain, retries, budget."""

from llm.cloud.backoff import CircuitBreaker, CircuitState, full_jitter, parse_retry_after
from llm.cloud.chain import CloudChain, estimate_prompt_tokens, estimate_tokens
from llm.cloud.ledger import MemoryLedger, UsageLedger, cost_usd, month_of
from llm.cloud.provider import CircuitOpen, Provider

__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "CloudChain",
    "MemoryLedger",
    "Provider",
    "UsageLedger",
    "cost_usd",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "full_jitter",
    "month_of",
    "parse_retry_after",
]
