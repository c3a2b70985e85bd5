"""The ``connectors.widget`` section of ``helpline.yml``.

Business hours are written as weekday ranges with opening windows in a time
zone, e.g. ``["mon-fri 09:00-17:00", "sat 10:00-14:00"]`` in
``Europe/Berlin``; outside them the widget shows ``offline_message``.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bot.ratelimit import Bucket

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)
#: One opening window: the weekdays (0 = Monday) and the minutes of the day.
Window = tuple[frozenset[int], int, int]


def _minutes(clock: str, *, end: bool) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise ValueError(f"{clock!r} is not a time of day")
    return hours * 60 + minutes


def parse_window(text: str) -> Window:
    """Read ``"mon-fri 09:00-17:00"`` (or one day, ``"sat 10:00-14:00"``).

    Raises:
        ValueError: It is not written that way, or the window is empty.
    """
    match = _WINDOW.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} should look like 'mon-fri 09:00-17:00'")
    first, last = match.group("first"), match.group("last") or match.group("first")
    if first not in DAYS or last not in DAYS:
        raise ValueError(f"{text!r}: days are {', '.join(DAYS)}")
    a, b = DAYS.index(first), DAYS.index(last)
    days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(b + 1)])
    start = _minutes(match.group("start"), end=False)
    stop = _minutes(match.group("end"), end=True)
    if stop <= start:
        raise ValueError(f"{text!r}: the window must end after it starts (use 24:00)")
    return days, start, stop


class BusinessHours(BaseModel):
    """When people answer: opening windows in one time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    open: tuple[str, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("open")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            parse_window(window)
        return value

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (an aware datetime) falls in an opening window."""
        local = now.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        for days, start, stop in map(parse_window, self.open):
            if local.weekday() in days and start <= minute < stop:
                return True
        return False


class WidgetConfig(BaseModel):
    """The ``connectors.widget`` section; every key is optional.

    Attributes:
        enabled: Serve ``/widget.js`` and ``/widget/ws``.
        allowed_origins: Pages that may open the socket, e.g.
            ``https://shop.example.com``; ``*`` allows any. Empty (the
            default) allows the server's own origin and ``localhost`` /
            ``127.0.0.1`` on any port only.
        identity_secret: Verifies ``data-user-hash`` = hex HMAC-SHA256 of
            ``data-user-id``; without it every visitor is anonymous.
        business_hours: When people answer; always open when unset.
        offline_message: Shown outside business hours.
        max_frame_bytes: Larger frames get an error frame; frames over eight
            times this close the socket.
        visitor_rate: Messages per visitor (token bucket).
        ip_rate: Messages per client IP (token bucket).
        trust_forwarded_for: Take the client IP from ``X-Forwarded-For``
            (only behind a proxy that sets it).
        history_limit: At most this many messages are replayed on connect.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    allowed_origins: tuple[str, ...] = ()
    identity_secret: SecretStr | None = None
    business_hours: BusinessHours | None = None
    offline_message: str = (
        "We're offline right now. Leave a message and we'll get back to you when we're open."
    )
    max_frame_bytes: int = Field(default=16 * 1024, ge=256)
    visitor_rate: Bucket = Bucket(per_second=1.0, burst=10)
    ip_rate: Bucket = Bucket(per_second=10.0, burst=100)
    trust_forwarded_for: bool = False
    history_limit: int = Field(default=200, ge=1)

    def is_open(self, now: datetime) -> bool:
        """Whether people answer at ``now`` (always, without business hours)."""
        return self.business_hours is None or self.business_hours.is_open(now)


__all__ = ["Bucket", "BusinessHours", "WidgetConfig", "parse_window"]
