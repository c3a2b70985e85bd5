"""The ``connectors.email`` section of ``helpline.yml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImapSettings(_Section):
    """Where inbound mail is read.

    ``ssl`` is implicit TLS (port 993); ``starttls`` upgrades a plain
    connection (port 143). ``ca_file`` trusts a private CA (self-hosted servers).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=993, ge=1, le=65535)
    user: str = ""
    password: SecretStr = SecretStr("")
    mailbox: str = "INBOX"
    ssl: bool = True
    starttls: bool = False
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _one_tls_mode(self) -> ImapSettings:
        if self.ssl and self.starttls:
            raise ValueError("choose either ssl (implicit TLS) or starttls, not both")
        return self


class SmtpSettings(_Section):
    """Where replies are sent; ``user`` empty means no authentication."""

    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    user: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = True
    ssl: bool = False
    ca_file: Path | None = None
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.ssl and self.starttls:
            raise ValueError("choose either ssl (implicit TLS) or starttls, not both")
        return self


class RateLimitSettings(_Section):
    """A token bucket per sender: ``burst`` messages at once, refilled at ``per_hour``."""

    burst: int = Field(default=10, ge=1)
    per_hour: float = Field(default=30.0, gt=0)


class EmailConfig(_Section):
    """The email channel: IMAP in, SMTP out.

    Attributes:
        enabled: Off unless configured.
        address: Our address: the From of replies; mail from it is ignored.
        display_name: The From display name of bot replies (an agent's reply
            shows the agent's name instead).
        followup_subject: The subject of an agent's reply by email to a
            customer of another channel who left an address for it.
        poll_interval_s: Seconds between mailbox scans (and the longest IDLE).
        idle: Wait with IMAP IDLE when the server supports it, else poll.
        max_attachment_bytes: Larger attachments are noted as too large.
        max_mail_bytes: A larger mail is not parsed: it is logged, counted
            (``too_large``) and left answered by nobody but the team.
        reconnect_min_s: The first wait before reconnecting; it doubles.
        reconnect_max_s: The longest wait between reconnects.
        timeout_s: Limit of one IMAP command.
    """

    enabled: bool = False
    address: str = ""
    display_name: str = "Helpline"
    followup_subject: str = "Your question to our support team"
    imap: ImapSettings = Field(default_factory=ImapSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    poll_interval_s: float = Field(default=60.0, gt=0)
    idle: bool = True
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    max_mail_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=300.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _needs_address(self) -> EmailConfig:
        if self.enabled and "@" not in self.address:
            raise ValueError("'address' must be our email address when the channel is enabled")
        return self

    @property
    def domain(self) -> str:
        """The domain of our address, used in our Message-IDs."""
        return self.address.rpartition("@")[2] or "helpline.invalid"
