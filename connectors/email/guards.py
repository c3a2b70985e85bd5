"""Middleware: never answer machines, mailing lists or ourselves.

Answering an auto-reply, a bounce or our own mail starts a mail loop, so such
mail is never submitted: it is marked seen, logged and counted
(``helpline_inbound_ignored_total{channel="email",reason=...}``) and
nothing else. It is not stored either, because every stored message gets a
turn and a turn may reply.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from connectors.email.threads import is_ours

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connectors.email.translate import ParsedEmail

#: Local parts of addresses that belong to machines.
_SYSTEM_SENDER = re.compile(
    r"^(?:(?:mailer-daemon|postmaster)(?:\+.*)?|(?:bounces?|(?:no|do[-_.]?not)[-_.]?reply)(?:[-+_.].*)?)$",
    re.IGNORECASE,
)
_BULK = frozenset({"bulk", "list", "junk", "auto_reply"})


class LoopGuard:
    """Says why a mail must not be answered, or ``None`` when it may be.

    Args:
        own_addresses: Our addresses; mail from them is ours, looped back.
    """

    def __init__(self, own_addresses: Iterable[str]) -> None:
        self.own = frozenset(a.strip().lower() for a in own_addresses if a.strip())

    def check(self, mail: ParsedEmail) -> str | None:
        """Return the reason to ignore ``mail``, or ``None``."""
        headers = mail.headers
        if mail.sender in self.own:
            return "own_address"
        if is_ours(mail.message_id):
            return "own_message"
        auto = headers.get("auto-submitted", "").split(";")[0].strip().lower()
        if auto and auto != "no":
            return "auto_submitted"
        if headers.get("precedence", "").strip().lower() in _BULK:
            return "precedence"
        if "list-id" in headers or "list-unsubscribe" in headers:
            return "mailing_list"
        if "x-autoreply" in headers or "x-autorespond" in headers:
            return "autoreply"
        if headers.get("return-path", "").strip() == "<>":
            return "bounce"
        if _SYSTEM_SENDER.match(mail.sender.rpartition("@")[0]):
            return "system_sender"
        return None
