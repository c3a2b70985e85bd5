"""Retry timing and the circuit breaker of one cloud provider."""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_LOGGER = logging.getLogger(__name__)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks to wait, or ``None``.

    Both forms are understood: delta-seconds (``"120"``; fractions are
    accepted too) and an HTTP date. A date in the past means zero.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def full_jitter(
    attempt: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Return a backoff delay with full jitter: uniform in ``[0, min(max, base * 2**attempt)]``.

    ``attempt`` counts from 0 for the first retry.
    """
    return rand() * min(max_s, base_s * 2.0**attempt)


class CircuitState(enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def level(self) -> int:
        """The state as the circuit gauge shows it: 0 closed, 1 half-open, 2 open."""
        return _LEVELS[self]


_LEVELS = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class CircuitBreaker:
    """Stops calling a provider that keeps failing, and probes it again later.

    Closed: calls go through; ``failures`` consecutive failed calls open it.
    Open: calls are refused until ``reset_s`` has passed, then it is half-open.
    Half-open: one trial call goes through; success closes the circuit and
    failure opens it again for another ``reset_s``.

    Args:
        name: The provider's name, for logs.
        failures: Consecutive failures that open the circuit.
        reset_s: Seconds the circuit stays open before a trial call.
        clock: A monotonic clock in seconds.
    """

    def __init__(
        self,
        name: str,
        failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit past its reset time reads half-open."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._reset_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def level(self) -> int:
        """Return the state as the circuit gauge shows it (see :attr:`CircuitState.level`)."""
        return self.state.level

    def acquire(self) -> bool:
        """Return whether a call may go through now; a half-open trial is taken."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial:
            self._trial = True
            _LOGGER.info("Circuit of %s is half-open; trying one call.", self.name)
            return True
        return False

    def success(self) -> None:
        """Record a successful call: the circuit closes."""
        if self._opened_at is not None:
            _LOGGER.info("Circuit of %s is closed again.", self.name)
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        """Record a failed call: enough of them, or a failed trial, open the circuit."""
        self._failures += 1
        if self._trial or self._failures >= self._threshold:
            if self._opened_at is None or self._trial:
                _LOGGER.warning(
                    "Circuit of %s is open after %d failures; retrying in %g s.",
                    self.name,
                    self._failures,
                    self._reset_s,
                )
            self._opened_at = self._clock()
        self._trial = False

    def release(self) -> None:
        """Give back a call that ended without a verdict (cancelled, closed early)."""
        self._trial = False
