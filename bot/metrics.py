"""Prometheus metrics of the dialogue runtime, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "helpline_messages_total",
    "Messages by channel and direction (in/out).",
    ["channel", "direction"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "helpline_duplicate_messages_total",
    "Inbound messages seen before (retries), answered from the store.",
    ["channel"],
    registry=REGISTRY,
)
TURNS = Counter(
    "helpline_turns_total",
    "Turns by route: flow, local, cloud or human.",
    ["route"],
    registry=REGISTRY,
)
TURN_LATENCY = Histogram(
    "helpline_turn_latency_seconds",
    "Time to run one turn, storage included.",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
NLU_LATENCY = Histogram(
    "helpline_nlu_latency_seconds",
    "Time to parse one message with the NLU.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
    registry=REGISTRY,
)
TURNS_QUARANTINED = Counter(
    "helpline_turns_quarantined_total",
    "Inbound messages set aside as failed after their turns kept failing.",
    registry=REGISTRY,
)
HANDOFFS = Counter(
    "helpline_handoffs_total",
    "Conversations handed to a human, by reason.",
    ["reason"],
    registry=REGISTRY,
)
HTTP_ERRORS = Counter(
    "helpline_http_rejections_total",
    "Requests rejected with a 4xx, by channel and reason.",
    ["channel", "reason"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "helpline_llm_tokens_total",
    "Model tokens of open-ended turns, by provider and direction (in/out).",
    ["provider", "direction"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "helpline_llm_cost_usd_total",
    "What open-ended turns cost, by provider.",
    ["provider"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "helpline_deliveries_total",
    "Outbound delivery attempts, by channel and outcome (ok/retry/failed).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "helpline_outbox_pending",
    "Replies waiting for delivery on this replica, by channel.",
    ["channel"],
    registry=REGISTRY,
)
INBOUND_IGNORED = Counter(
    "helpline_inbound_ignored_total",
    "Inbound messages not answered on purpose (loops, auto-replies, rate limits), by reason.",
    ["channel", "reason"],
    registry=REGISTRY,
)
CONSOLE_FIRST_REPLY = Histogram(
    "helpline_console_first_reply_seconds",
    "Time from a handoff to the first human reply in the agent console.",
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400),
    registry=REGISTRY,
)
CONSOLE_RESOLUTION = Histogram(
    "helpline_console_resolution_seconds",
    "Time from a handoff to its resolution in the agent console.",
    buckets=(60, 300, 600, 1800, 3600, 14400, 86400, 259200),
    registry=REGISTRY,
)
CONSOLE_CSAT = Counter(
    "helpline_console_csat_total",
    "Customer satisfaction answers after a human conversation, by score (1-5).",
    ["score"],
    registry=REGISTRY,
)
NLU_FALLBACKS = Counter(
    "helpline_nlu_fallbacks_total",
    "Messages the embedded NLU parsed because the Rasa backend could not, by reason.",
    ["reason"],
    registry=REGISTRY,
)
RASA_RESTARTS = Counter(
    "helpline_rasa_restarts_total",
    "Times the Rasa NLU sidecar ended and was started again.",
    registry=REGISTRY,
)
BACKEND_RETRIES = Counter(
    "helpline_backend_retries_total",
    "Calls to the database or Redis that failed transiently and were tried again, by backend.",
    ["backend"],
    registry=REGISTRY,
)
RETENTION_PRUNED = Counter(
    "helpline_retention_pruned_rows_total",
    "Rows the retention prune removed (deleted) or kept with the conversation link cleared"
    " (unlinked), by table.",
    ["table", "kind"],
    registry=REGISTRY,
)
LLM_WORKER_REQUESTS = Counter(
    "helpline_llm_worker_requests_total",
    "Requests the model-worker pool sent (llm.local.url), by worker and outcome (ok/busy/failed).",
    ["worker", "outcome"],
    registry=REGISTRY,
)
LLM_WORKER_OUTSTANDING = Gauge(
    "helpline_llm_worker_outstanding",
    "Requests the model-worker pool has in flight, by worker.",
    ["worker"],
    registry=REGISTRY,
)
MODEL_SERVER_REQUESTS = Counter(
    "helpline_model_server_requests_total",
    "Chat completion requests a model worker (helpline serve-model) answered, by status.",
    ["status"],
    registry=REGISTRY,
)
MODEL_SERVER_IN_FLIGHT = Gauge(
    "helpline_model_server_in_flight",
    "Chat completion requests inside a model worker (generating or queued).",
    registry=REGISTRY,
)
MODEL_SERVER_QUEUE = Gauge(
    "helpline_model_server_queue_depth",
    "Requests waiting for the model's slot in a model worker.",
    registry=REGISTRY,
)
LLM_PROVIDER_ERRORS = Counter(
    "helpline_llm_provider_errors_total",
    "Failed attempts at a cloud provider (retries included), by provider and kind"
    " (timeout/connection/http_429/http_5xx/http_4xx/malformed).",
    ["provider", "kind"],
    registry=REGISTRY,
)
LLM_CIRCUIT_STATE = Gauge(
    "helpline_llm_circuit_state",
    "Circuit breaker of each cloud provider: 0 closed, 1 half-open (a trial call may go),"
    " 2 open (not called).",
    ["provider"],
    registry=REGISTRY,
)
