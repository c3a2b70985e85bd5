r"""Strip the quoted history and the signature from a reply's text.

The work is done by ``mail-parser-reply`` (multi-language: "On ... wrote:",
"Am ... schrieb ...:", "Le ... a écrit :", Outlook's "From:/Sent:" blocks in
each language, "-- " signatures, sign-offs). Three narrow fixes around it,
each for a case measured to fail on real-client-shaped samples
(``tests/connectors/email/samples``):

* Gmail's attribution lines are rewritten to the form the library knows:
  Spanish "El ..., X (<x@y>) escribió:" (its pattern can never match: its
  negative look-ahead repeats the pattern itself), Dutch "Op ... schreef
  X <x@y>:" (it wants "schreef:" last), and an address wrapped after its "<".
* Mobile "sent from" lines in languages the library has no pattern for
  ("Von meinem iPhone gesendet", "Envoyé de mon iPhone"...) are dropped.
* A trailing block of ``>``-quoted lines without any attribution line is
  dropped.

Two of the library's signature patterns are too greedy for a support inbox
and are left out: Swedish ``/\\w+`` (it cuts at a ``/command`` line) and
Danish ``Tak`` (it cuts at any line starting with "Take...").
"""

from __future__ import annotations

import re
from typing import Any

from mailparser_reply import parser as _reply

#: Languages whose quote headers and sign-offs are recognised.
LANGUAGES = ("en", "de", "fr", "es", "nl", "sv", "it", "pl", "da")
_GREEDY_SIGNATURES = frozenset({r"/\w+", "Tak"})
_SPANISH = re.compile(r"^(El\s.+?)\s+escribió:$", re.MULTILINE)
_DUTCH_GMAIL = re.compile(r"^(Op\s.+?)\s(schreef)\s(.+):$", re.MULTILINE)
_WRAPPED_ADDRESS = re.compile(r"<\n(\S+@\S+>)")
_SENT_FROM = re.compile(
    r"^(?:Von meinem \S+( \S+)? gesendet|Envoyé de mon \S+|Enviado desde mi \S+"
    r"|Skickat från min \S+|Verstuurd vanaf mijn \S+|Sent from my \S+( \S+)?"
    r"|Inviato da \S+( \S+)?|Get Outlook for \S+)\s*$",
    re.MULTILINE | re.IGNORECASE,
)
_TRAILING_QUOTE = re.compile(r"(?:\n>[^\n]*)+\s*\Z")


class _Message(_reply.EmailMessage):  # type: ignore[misc]
    """The library's message, without its two over-greedy signature patterns."""

    def _get_language_regex(self, language: str, regex_key: str) -> str:
        if regex_key != "signatures":
            return str(super()._get_language_regex(language, regex_key))
        patterns: Any = _reply.MAIL_LANGUAGES.get(language, {}).get(regex_key, [])
        if isinstance(patterns, str):
            patterns = [patterns]
        return "|".join(p for p in patterns if p not in _GREEDY_SIGNATURES)


def strip_reply(text: str) -> str:
    """Return the new part of a reply: no quoted history, no signature.

    A text that is nothing but a quote comes back empty.
    """
    if not text.strip():
        return ""
    prepared = _WRAPPED_ADDRESS.sub(r"<\1", text.replace("\r\n", "\n"))
    prepared = _SPANISH.sub(r"On \1 wrote:", prepared)
    prepared = _DUTCH_GMAIL.sub(r"\1 \3 \2:", prepared)
    message = _Message(text=prepared, languages=list(LANGUAGES), keep_hyphen_lists=True)
    replies = message.read().replies
    if replies and replies[0].headers:
        return ""  # the text starts with a quote header: nothing new was written
    latest = replies[0].body if replies else prepared
    latest = _SENT_FROM.sub("", latest)
    latest = _TRAILING_QUOTE.sub("", "\n" + latest)
    return re.sub(r"\n{3,}", "\n\n", latest).strip()
