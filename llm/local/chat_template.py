"""Chat prompts and tokens without transformers: the tokenizer, the chat template and decoding.

The prompt is built as transformers' ``apply_chat_template(..., add_generation_prompt=True)``
builds it: the Jinja template from ``tokenizer_config.json`` is rendered in a sandbox with
the special tokens (``bos_token``, ``eos_token``, ...) as variables, and the text is then
encoded *without* adding special tokens, because the template already writes them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

from bot.errors import LLMError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from llm.types import ChatMessage

_LOGGER = logging.getLogger(__name__)

_SPECIAL_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
    "mask_token",
)


def _token_text(value: object) -> str | None:
    """Read a special token saved either as a string or as an ``AddedToken`` dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _raise_exception(message: str) -> None:
    """Let templates reject a conversation, as transformers' ``raise_exception`` does."""
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: object,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """Serialise to JSON without Jinja's HTML escaping, as transformers does."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    """Give templates the current date, as transformers does."""
    return datetime.now().strftime(fmt)  # Templates want local time.


def _select_template(raw: object) -> str:
    """Pick the default template: a string, or the ``default`` entry of a named list."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        named = {item.get("name"): item.get("template") for item in raw if isinstance(item, dict)}
        chosen = named.get("default") or next(iter(named.values()), None)
        if isinstance(chosen, str):
            return chosen
    raise LLMError("tokenizer_config.json has no usable chat_template.")


class PromptCodec:
    """Tokenizer plus chat template of one model folder.

    Attributes:
        tokenizer: The fast tokenizer from ``tokenizer.json``.
        special_tokens: Special-token texts by name (``bos_token``, ``eos_token``, ...).
    """

    def __init__(self, tokenizer: Tokenizer, template: str, special_tokens: dict[str, str]) -> None:
        self.tokenizer = tokenizer
        self.special_tokens = special_tokens
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(template)
        except jinja2.TemplateError as exc:
            raise LLMError(f"The chat template does not compile: {exc}") from exc

    @classmethod
    def from_folder(cls, folder: Path) -> PromptCodec:
        """Read ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files.
            raise LLMError(f"Cannot read the tokenizer in {folder}: {exc}") from exc
        special: dict[str, str] = {}
        map_path = folder / "special_tokens_map.json"
        if map_path.is_file():
            for key, value in json.loads(map_path.read_text(encoding="utf-8")).items():
                text = _token_text(value)
                if text is not None and key in _SPECIAL_KEYS:
                    special[key] = text
        for key in _SPECIAL_KEYS:
            text = _token_text(config.get(key))
            if text is not None:
                special[key] = text
        raw_template = config.get("chat_template")
        jinja_file = folder / "chat_template.jinja"  # Where transformers >= 4.50 saves it.
        if raw_template is None and jinja_file.is_file():
            raw_template = jinja_file.read_text(encoding="utf-8")
        template = _select_template(raw_template)
        return cls(tokenizer, template, special)

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """Render the conversation as the prompt text, ending with the assistant header."""
        payload: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in messages]
        try:
            return self._template.render(
                messages=payload, add_generation_prompt=True, **self.special_tokens
            )
        except jinja2.TemplateError as exc:
            raise LLMError(f"The chat template rejected the conversation: {exc}") from exc

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens are parsed but none are added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def token_id(self, text: str | None) -> int | None:
        """The id of one token's text, or ``None``."""
        if text is None:
            return None
        found = self.tokenizer.token_to_id(text)
        return None if found is None else int(found)

    def decoder(self) -> IncrementalDecoder:
        """A fresh incremental decoder for one answer."""
        return IncrementalDecoder(self.tokenizer)


class IncrementalDecoder:
    """Turn token ids into text one id at a time, never splitting a character.

    The decoder decodes a small window of the accumulated ids twice (up to the last
    emitted token, and up to the newest) and emits the difference. Text that ends in
    U+FFFD is an incomplete multi-byte sequence and waits for the next token. This keeps
    the leading-space rules of SentencePiece and byte-level BPE tokenizers intact.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def push(self, token_id: int) -> str:
        """Add one id and return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full[len(prefix) :]
        return ""

    def flush(self) -> str:
        """Return whatever is still pending (an incomplete sequence) at the end."""
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return full[len(prefix) :] if full.startswith(prefix) else ""


class StopMatcher:
    """Find stop strings in streamed text, holding back text that may start one.

    Attributes:
        stopped: Whether a stop string was found; later text is discarded.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def _held_length(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that begins some stop string."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def feed(self, text: str) -> str:
        """Take new text and return the part that is safe to show."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buffer = self._pending + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buffer[:cut]
        held = self._held_length(buffer)
        self._pending = buffer[len(buffer) - held :] if held else ""
        return buffer[: len(buffer) - held]

    def flush(self) -> str:
        """Release held-back text when generation ends without a stop string."""
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest
