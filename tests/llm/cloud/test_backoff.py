"""Retry-After parsing, jittered backoff and the circuit breaker, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm.cloud import CircuitBreaker, CircuitState, full_jitter, parse_retry_after

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0.5 ", 0.5),
        ("Fri, 14 Mar 2025 12:00:30 GMT", 30.0),
        ("Fri, 14 Mar 2025 11:00:00 GMT", 0.0),
        ("-5", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(("attempt", "cap"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (9, 3.0)])
def test_full_jitter_spans_zero_to_the_capped_exponential(attempt: int, cap: float) -> None:
    assert full_jitter(attempt, 0.5, 3.0, rand=lambda: 0.0) == 0.0
    assert full_jitter(attempt, 0.5, 3.0, rand=lambda: 0.5) == pytest.approx(cap / 2)
    assert full_jitter(attempt, 0.5, 3.0, rand=lambda: 0.999) == pytest.approx(cap * 0.999)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failures=3, reset_s=10.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.acquire()
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.acquire()


def test_breaker_half_open_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failures=1, reset_s=10.0, clock=clock)
    breaker.failure()
    clock.now += 9.9
    assert not breaker.acquire()
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire()
    assert not breaker.acquire()  # a second caller waits for the trial
    breaker.failure()
    assert breaker.state is CircuitState.OPEN  # reopened for another reset_s
    clock.now += 10.0
    assert breaker.acquire()
    breaker.success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.acquire()
    assert breaker.acquire()


def test_breaker_release_frees_an_abandoned_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", failures=1, reset_s=1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0
    assert breaker.acquire()
    breaker.release()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire()
