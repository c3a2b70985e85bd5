"""The one exception tree of Helpline.

Every error Helpline raises derives from :class:`HelplineError`, with one
subtree per area. Third-party errors are translated at exactly one boundary
with ``raise ... from exc``.
"""

from __future__ import annotations


class HelplineError(Exception):
    """Root of every error Helpline raises on purpose."""


class ConfigError(HelplineError):
    """The configuration file is missing, malformed or invalid."""


class SourceError(HelplineError):
    """An input file is malformed; the message names ``file:line``.

    Attributes:
        path: The file that holds the error.
        line: The 1-based line of the error, when known.
        reason: What is wrong, without the location.
    """

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class FlowError(SourceError):
    """A flow, domain or NLU file is invalid."""


class ActionError(HelplineError):
    """A custom action failed, timed out or is unknown."""


class NLUError(HelplineError):
    """The NLU pipeline cannot be trained or run."""


class StorageError(HelplineError):
    """The database cannot be reached or refused an operation."""


class ShuttingDown(StorageError):
    """The server is draining before it stops; the message was not taken (send it again)."""


class ChannelError(HelplineError):
    """A connector failed to receive or deliver a message."""


class InvalidInput(ChannelError):
    """Input from outside that can never be stored or processed: retrying cannot help.

    A connector answers it with a 4xx (or an error frame that the client must
    not resend), never with the 503 of an outage.
    """


class DeliveryError(ChannelError):
    """A reply could not be delivered now; the outbox retries it.

    Attributes:
        retry_after: Seconds the peer asked us to wait (e.g. Slack's 429), if any.
        permanent: The peer will never accept it (e.g. the channel is gone):
            the outbox stops retrying and logs it.
        maybe_delivered: The peer may have taken it all the same (the
            connection broke or timed out after the request went out); a
            channel that can tell checks before the next attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.maybe_delivered = maybe_delivered


class LLMError(HelplineError):
    """A language model backend failed."""


class ProviderUnavailable(LLMError):
    """A model provider cannot answer now (down, timing out, circuit open)."""


class RateLimited(ProviderUnavailable):
    """A provider refused for rate limits; ``retry_after`` is in seconds, if given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelBusy(ProviderUnavailable):
    """The local model's queue is full, or a request waited longer than allowed."""


class BudgetExhausted(LLMError):
    """The monthly cloud budget is spent."""


class ModelPrepareError(LLMError):
    """A model cannot be exported or quantized (missing files, unsupported, no disk)."""
