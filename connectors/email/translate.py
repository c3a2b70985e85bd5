"""Translation between raw mail and Helpline messages.

Inbound: RFC 5322 bytes are parsed with ``email.policy.default``; the text
part is preferred, an HTML-only body is converted to text, and the quoted
history and signature are stripped (:mod:`connectors.email.quotes`).
Attachments are recorded as metadata only. Outbound: a reply is composed as
``multipart/alternative`` (plain text and escaped HTML) with the threading
headers the connector computed.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import asdict, dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parseaddr
from typing import TYPE_CHECKING, Any

from bot.errors import ChannelError
from bot.messages import InboundMessage
from connectors.email.htmltext import html_to_text
from connectors.email.quotes import strip_reply

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from bot.messages import Button

CHANNEL = "email"
#: The store keeps external ids in 255 characters; longer ones are hashed.
MAX_ID_CHARS = 255
#: References kept on a reply: the thread root and the latest ones (RFC 5322 3.6.4).
MAX_REFERENCES = 20
_MSG_ID = re.compile(r"<[^<>\s]+>")
#: Headers the loop guards read, lower-cased.
GUARD_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "return-path",
)


@dataclass(frozen=True)
class Attachment:
    """What is kept of an attachment: never its content."""

    filename: str | None
    content_type: str
    size: int
    too_large: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    """One inbound mail, parsed.

    Attributes:
        message_id: The Message-ID (with angle brackets), or ``sha256:`` and
            the hash of the raw bytes when it has none.
        sender: The From address, lower-cased.
        sender_name: The From display name.
        reply_to: Where a reply goes (Reply-To, else From).
        subject: The Subject, unfolded.
        in_reply_to: Message-IDs in In-Reply-To.
        references: Message-IDs in References, oldest first.
        headers: The loop-guard headers present, lower-cased names.
        text: The new part of the body: quotes and signature stripped.
        full_text: The whole body as text.
        html: Whether the text came from an HTML part.
    """

    message_id: str
    sender: str
    sender_name: str
    reply_to: str
    subject: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    date: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    full_text: str = ""
    html: bool = False
    attachments: tuple[Attachment, ...] = ()

    @property
    def thread_ids(self) -> list[str]:
        """References then In-Reply-To, without repeats: the thread's ancestry."""
        return list(dict.fromkeys((*self.references, *self.in_reply_to)))


def fit_id(value: str) -> str:
    """Return ``value``, or its hash when it is too long for the store."""
    if len(value) <= MAX_ID_CHARS:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References value."""
    return tuple(_MSG_ID.findall(value or ""))


#: How much of a body reply extraction reads. Its regular expressions hold the
#: GIL for the whole text (seconds on a mail of megabytes, even in a thread);
#: a customer's new words come first and are never this long.
MAX_REPLY_SCAN_CHARS = 64 * 1024


def parse_email(raw: bytes, max_attachment_bytes: int) -> ParsedEmail:
    """Parse one RFC 5322 message.

    Raises:
        ChannelError: It has no usable From address.
    """
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    name, sender = _address(msg, "From")
    if not sender:
        raise ChannelError("the message has no From address")
    own_id = message_ids(_header(msg, "Message-ID"))
    body_part = msg.get_body(preferencelist=("plain", "html"))
    full_text, is_html = _body_text(body_part)
    full_text = full_text.replace("\x00", "")  # no database text holds NUL; it carries nothing
    return ParsedEmail(
        message_id=own_id[0] if own_id else "sha256:" + hashlib.sha256(raw).hexdigest(),
        sender=sender,
        sender_name=name,
        reply_to=_address(msg, "Reply-To")[1] or sender,
        subject=" ".join(_header(msg, "Subject").split()),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        date=_header(msg, "Date") or None,
        in_reply_to=message_ids(_header(msg, "In-Reply-To")),
        references=message_ids(_header(msg, "References")),
        headers={k: _header(msg, k) for k in GUARD_HEADERS if msg.get(k) is not None},
        text=strip_reply(full_text[:MAX_REPLY_SCAN_CHARS]),
        full_text=full_text,
        html=is_html,
        attachments=_attachments(msg, body_part, max_attachment_bytes),
    )


def _header(msg: EmailMessage, name: str) -> str:
    """A header as text; a malformed one falls back to its raw value."""
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # header parser defects
        value = msg.get_all(name, [""])[0] if msg.get_all(name) else None
    return str(value).strip() if value is not None else ""


def _address(msg: EmailMessage, name: str) -> tuple[str, str]:
    display, addr = parseaddr(_header(msg, name))
    return display, addr.strip().lower()


def _addresses(msg: EmailMessage, name: str) -> tuple[str, ...]:
    return tuple(a.lower() for _, a in getaddresses([_header(msg, name)]) if a)


def _body_text(part: Any) -> tuple[str, bool]:
    """The text of the chosen body part, and whether it was HTML."""
    if part is None:
        return "", False
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return "", False
    if part.get_content_subtype() == "html":
        return html_to_text(content), True
    return content.replace("\r\n", "\n").strip(), False


def _attachments(msg: EmailMessage, body: Any, limit: int) -> tuple[Attachment, ...]:
    found = []
    for part in msg.walk():
        if part.is_multipart() or part is body:
            continue
        disposition = part.get_content_disposition()
        is_text = part.get_content_maintype() == "text"
        if disposition != "attachment" and is_text and not part.get_filename():
            continue  # the other alternative of the body
        size = len(part.get_payload(decode=True) or b"")
        found.append(Attachment(part.get_filename(), part.get_content_type(), size, size > limit))
    return tuple(found)


def inbound_metadata(mail: ParsedEmail) -> dict[str, Any]:
    """What the store keeps of a mail: enough to thread and answer it."""
    return {
        "email": {
            "from": mail.sender,
            "from_name": mail.sender_name,
            "reply_to": mail.reply_to,
            "to": list(mail.to),
            "cc": list(mail.cc),
            "subject": mail.subject,
            "date": mail.date,
            "message_id": mail.message_id,
            "in_reply_to": list(mail.in_reply_to),
            "references": list(mail.references),
            "html": mail.html,
            "attachments": [asdict(a) for a in mail.attachments],
        }
    }


def to_inbound(mail: ParsedEmail, conversation_id: str, text: str) -> InboundMessage:
    """The inbound message of a parsed mail in conversation ``conversation_id``."""
    return InboundMessage(
        CHANNEL,
        fit_id(conversation_id),
        mail.sender,
        text,
        fit_id(mail.message_id),
        inbound_metadata(mail),
    )


def reply_subject(subject: str) -> str:
    """``Re: subject``, without stacking a second ``Re:``."""
    subject = subject.strip() or "Your message"
    return subject if re.match(r"re\s*:", subject, re.IGNORECASE) else f"Re: {subject}"


def thread_references(original: dict[str, Any]) -> list[str]:
    """The References of a reply to ``original`` (inbound email metadata)."""
    chain = [*original.get("references", []), original.get("message_id", "")]
    ids = [i for i in dict.fromkeys(chain) if i.startswith("<")]
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids


@dataclass(frozen=True)
class Reply:
    """Everything a reply's headers need besides its text."""

    from_name: str
    from_addr: str
    to: str
    subject: str
    message_id: str
    in_reply_to: str | None
    references: Sequence[str]
    date: datetime
    automatic: bool = True


def options_line(buttons: Sequence[Button]) -> str:
    """The text fallback of buttons: reply with one of their titles."""
    return "Reply with one of: " + ", ".join(b.title for b in buttons) if buttons else ""


def compose_reply(text: str, buttons: Sequence[Button], reply: Reply) -> EmailMessage:
    """Build the reply: headers, a plain-text part and an escaped HTML part."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=reply.from_name, addr_spec=reply.from_addr)
    msg["To"] = reply.to
    msg["Subject"] = reply.subject
    msg["Date"] = format_datetime(reply.date)
    msg["Message-ID"] = reply.message_id
    if reply.in_reply_to:
        msg["In-Reply-To"] = reply.in_reply_to
    if reply.references:
        msg["References"] = " ".join(reply.references)
    if reply.automatic:
        msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer this
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office back
    options = options_line(buttons)
    msg.set_content(f"{text}\n\n{options}\n" if options else f"{text}\n")
    msg.add_alternative(_html(text, buttons), subtype="html")
    return msg


def _html(text: str, buttons: Sequence[Button]) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs)
    if buttons:
        items = "".join(f"<li>{html.escape(b.title)}</li>" for b in buttons)
        body += f"<p>Reply with one of:</p>\n<ul>{items}</ul>\n"
    return f'<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n{body}</body></html>\n'
