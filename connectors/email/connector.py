"""The email connector: IMAP in, SMTP out.

Inbound, each unseen mail is parsed, passed through the middleware (loop
guard, per-sender rate limit), placed in its thread and submitted; the IMAP
watcher marks it seen only after ``submit`` returned, so a crash before that
fetches it again and the store's idempotency (the Message-ID is the message
id) makes the second submit a no-op.

Outbound, a reply is answered to the mail it replies to (Reply-To or From),
with ``In-Reply-To``/``References`` and a Message-ID derived from its store
id, so the outbox's retries send the very same mail. aiosmtplib's errors are
translated to :class:`~bot.errors.DeliveryError` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiosmtplib

from bot import metrics
from bot.errors import ChannelError, DeliveryError, InvalidInput, StorageError
from bot.lifecycle import Service
from connectors.email.guards import LoopGuard
from connectors.email.imap import MailboxWatcher, raise_if_cancelled, tls_context
from connectors.email.ratelimit import SenderRateLimit
from connectors.email.threads import Threader, normalise_subject, our_message_id
from connectors.email.translate import (
    CHANNEL,
    Reply,
    compose_reply,
    parse_email,
    reply_subject,
    thread_references,
    to_inbound,
)

if TYPE_CHECKING:
    from email.message import EmailMessage

    from bot.channels import ConnectorContext
    from bot.messages import OutboundMessage
    from bot.storage.records import StoredMessage
    from connectors.email.config import EmailConfig
    from connectors.email.threads import Thread
    from connectors.email.translate import ParsedEmail

_LOGGER = logging.getLogger(__name__)


class Guard(Protocol):
    """Middleware: the reason not to answer a mail, or ``None``."""

    def check(self, mail: ParsedEmail) -> str | None:
        """Return why ``mail`` must not be answered, or ``None``."""
        ...


class EmailConnector(Service):
    """Reads a mailbox over IMAP and answers over SMTP."""

    name = CHANNEL

    def __init__(self, config: EmailConfig, ctx: ConnectorContext) -> None:
        self.config = config
        self.ctx = ctx
        self.threader = Threader(ctx.store)
        self.guards: list[Guard] = [
            LoopGuard([config.address]),
            SenderRateLimit(config.rate_limit.burst, config.rate_limit.per_hour),
        ]
        self.watcher = MailboxWatcher(config, self.receive)
        smtp = config.smtp
        self._smtp_tls = tls_context(smtp.ca_file) if smtp.ssl or smtp.starttls else None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching the mailbox in a task this connector owns."""
        self._task = asyncio.create_task(self.watcher.run(), name="email:imap")

    async def stop(self) -> None:
        """Stop watching; a mail being handled stays unseen and is fetched again."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def receive(self, raw: bytes) -> None:
        """Take one mail; once this returns it may be marked seen.

        Raises:
            StorageError: It could not be stored; it must stay unseen.
        """
        if len(raw) > self.config.max_mail_bytes:
            _LOGGER.error(
                "A mail of %d bytes is over max_mail_bytes (%d) and is not read.",
                len(raw),
                self.config.max_mail_bytes,
            )
            metrics.INBOUND_IGNORED.labels(CHANNEL, "too_large").inc()
            return
        try:
            # Parsing a large mail takes seconds of CPU: off the event loop.
            mail = await asyncio.to_thread(parse_email, raw, self.config.max_attachment_bytes)
        except (ChannelError, ValueError, LookupError) as exc:
            _LOGGER.error("An unreadable mail is skipped: %s", exc)
            metrics.INBOUND_IGNORED.labels(CHANNEL, "unreadable").inc()
            return
        for guard in self.guards:
            reason = guard.check(mail)
            if reason is not None:
                _LOGGER.info(
                    "Mail %s from %s is not answered: %s.", mail.message_id, mail.sender, reason
                )
                metrics.INBOUND_IGNORED.labels(CHANNEL, reason).inc()
                return
        thread = await self.threader.resolve(mail)
        try:
            received = await self.ctx.submit(to_inbound(mail, thread.key, _text(mail, thread)))
        except InvalidInput as exc:
            # Permanent: fetching it again would fail again (and hold the mailbox).
            _LOGGER.error("Mail %s cannot be stored and is skipped: %s", mail.message_id, exc)
            metrics.INBOUND_IGNORED.labels(CHANNEL, "invalid").inc()
            return
        _LOGGER.info(
            "Mail %s from %s is stored as message %d of %s.",
            mail.message_id,
            mail.sender,
            received.inbound_id,
            thread.key,
        )

    async def send(self, message: OutboundMessage) -> None:
        """Send one reply by SMTP.

        Raises:
            DeliveryError: Temporary failures (4xx, no connection) to retry;
                ``permanent`` when the recipient or the mail is refused (5xx).
        """
        try:
            stored = await self.ctx.store.message(int(message.metadata["message_id"]))
            followup = message.channel != CHANNEL
            original = None if followup else await self._original(stored)
        except StorageError as exc:
            raise DeliveryError(f"the reply's context cannot be read: {exc}") from exc
        email_meta: dict[str, Any] = original.metadata.get("email", {}) if original else {}
        if followup:
            # An agent's reply to a customer of another channel who left this
            # address: a new mail, not a reply in a thread.
            email_meta = {"subject": self.config.followup_subject}
            recipient = message.metadata.get("email_to")
        else:
            recipient = email_meta.get("reply_to") or email_meta.get("from")
        if not isinstance(recipient, str) or not recipient:
            raise DeliveryError("the conversation has no email address", permanent=True)
        agent = message.metadata.get("agent")
        agent_name = agent.get("name") if isinstance(agent, dict) else None
        reply = Reply(
            from_name=str(agent_name or self.config.display_name),
            from_addr=self.config.address,
            to=recipient,
            subject=email_meta["subject"]
            if followup
            else reply_subject(email_meta.get("subject", "")),
            message_id=our_message_id(stored, self.config.domain),
            in_reply_to=_msg_id(email_meta.get("message_id")),
            references=thread_references(email_meta) if not followup else [],
            date=datetime.now(UTC),
            automatic=agent_name is None,
        )
        await self._deliver(compose_reply(message.text, message.buttons, reply))

    async def _original(self, stored: StoredMessage) -> StoredMessage | None:
        """The inbound mail a reply answers: its turn's, else the latest before it."""
        if stored.in_reply_to is not None:
            return await self.ctx.store.message(stored.in_reply_to)
        earlier = [
            m
            for m in await self.ctx.store.transcript(stored.conversation_id)
            if m.direction == "in" and m.id < stored.id
        ]
        return earlier[-1] if earlier else None

    async def _deliver(self, mail: EmailMessage) -> None:
        settings = self.config.smtp
        try:
            await aiosmtplib.send(
                mail,
                hostname=settings.host,
                port=settings.port,
                username=settings.user or None,
                password=settings.password.get_secret_value() or None,
                use_tls=settings.ssl,
                start_tls=settings.starttls,
                tls_context=self._smtp_tls,
                timeout=settings.timeout_s,
            )
        except aiosmtplib.SMTPException as exc:
            raise_if_cancelled()
            raise _delivery_error(exc) from exc
        except (OSError, TimeoutError) as exc:
            raise_if_cancelled()
            raise DeliveryError(f"the SMTP server cannot be reached: {exc}") from exc
        _LOGGER.info("Sent %s to %s.", mail["Message-ID"], mail["To"])


def _delivery_error(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """Translate an SMTP error: a 5xx for the recipient or the mail is permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        return DeliveryError(f"the recipient was refused: {exc}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPSenderRefused):
        # Our own configuration is wrong: keep the reply until it is fixed.
        _LOGGER.error("The SMTP server refused our login or address: %s", exc)
        return DeliveryError(f"SMTP refused us: {exc}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        permanent = 500 <= exc.code < 600
        return DeliveryError(f"SMTP answered {exc.code}: {exc}", permanent=permanent)
    return DeliveryError(f"the SMTP server cannot be reached: {exc}")


def _msg_id(value: Any) -> str | None:
    """A Message-ID to refer to, not the raw-bytes hash used when a mail had none."""
    return value if isinstance(value, str) and value.startswith("<") else None


def _text(mail: ParsedEmail, thread: Thread) -> str:
    """What the bot reads: the new text; a button title becomes its payload."""
    text = mail.text or mail.full_text or normalise_subject(mail.subject)
    buttons = thread.answered.buttons if thread.answered is not None else []
    choice = text.strip().splitlines()[0].strip(" .!").casefold() if text.strip() else ""
    for button in buttons:
        if choice in {str(button.get("title", "")).casefold(), str(button.get("payload", ""))}:
            return str(button.get("payload") or button.get("title"))
    return text
