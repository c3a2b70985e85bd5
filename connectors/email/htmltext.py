"""HTML mail bodies to plain text, with the stdlib's ``html.parser``.

Block elements become line breaks, list items get a dash, links keep their
target, and ``<blockquote>`` content is prefixed with ``> `` so that the quote
stripper sees an HTML reply's quoted part like a plain-text one. No
third-party converter is used: html2text is GPL-licensed and BeautifulSoup's
``get_text`` loses the block structure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements that end a line.
_LINES = frozenset("dd div dt figure footer form header li main nav section td th tr".split())
#: Elements that stand apart as a paragraph, with a blank line around them.
_PARAGRAPHS = frozenset(
    "address article aside blockquote dl h1 h2 h3 h4 h5 h6 hr ol p pre table ul".split()
)
_SKIPPED = frozenset({"head", "script", "style", "title", "template"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._line_depth = 0
        self._quote_depth = 0
        self._skip_depth = 0
        self._pre_depth = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += 1
        self._structure(tag)
        if tag == "blockquote":
            self._quote_depth += 1
            self._line_depth = self._quote_depth
        elif tag == "li":
            self._write("- ")
        elif tag == "pre":
            self._pre_depth += 1
        elif tag == "a":
            self._href = dict(attrs).get("href")
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "a":
            self._end_link()
        elif tag != "br":
            self._structure(tag)
        if tag == "blockquote":
            self._quote_depth = max(0, self._quote_depth - 1)
            self._line_depth = self._quote_depth
        elif tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._structure(tag)

    def _structure(self, tag: str) -> None:
        if tag == "br":
            self._break(keep_empty=True)
        elif tag in _LINES:
            self._break()
        elif tag in _PARAGRAPHS:
            self._break()
            if self.lines and self.lines[-1] != "":
                self.lines.append("")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            first, *rest = data.split("\n")
            self._write(first)
            for line in rest:
                self._break(keep_empty=True)
                self._write(line)
            return
        text = _SPACES.sub(" ", data)
        if not self._line or self._line[-1].endswith(" "):
            text = text.lstrip(" ")
        self._write(text)

    def _write(self, text: str) -> None:
        if not text:
            return
        if not self._line:
            self._line_depth = self._quote_depth
        self._line.append(text)
        if self._href is not None:
            self._link_text.append(text)

    def _end_link(self) -> None:
        href, label = self._href, "".join(self._link_text).strip()
        self._href = None
        if href and href.startswith(("http://", "https://")) and href != label:
            self._write(f" <{href}>")

    def _break(self, *, keep_empty: bool = False) -> None:
        text = "".join(self._line).rstrip()
        if text or keep_empty:
            self.lines.append(("> " * self._line_depth + text).rstrip())
        self._line = []
        self._line_depth = self._quote_depth


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML body."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    parser.handle_endtag("p")  # flush the last line
    text = "\n".join(line.rstrip() for line in parser.lines)
    return _BLANK_RUNS.sub("\n\n", text).strip()
