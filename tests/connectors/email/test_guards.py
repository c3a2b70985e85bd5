"""The middleware: loop guard and per-sender rate limit."""

from __future__ import annotations

import pytest

from connectors.email.guards import LoopGuard
from connectors.email.ratelimit import SenderRateLimit, TokenBucket
from connectors.email.translate import ParsedEmail, parse_email
from tests.connectors.email.conftest import RESPONSES

GUARD = LoopGuard(["Support@Helpline.test"])


def mail(sender: str = "alice@example.com", message_id: str = "<m1@example.com>",
         **headers: str) -> ParsedEmail:  # fmt: skip
    return ParsedEmail(message_id, sender, "", sender, "Hi", headers=headers)


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("auto_reply.eml", "auto_submitted"), ("bounce.eml", "auto_submitted"),
     ("mailing_list.eml", "precedence")],
)  # fmt: skip
def test_recorded_machine_mail_is_not_answered(fixture: str, reason: str) -> None:
    assert GUARD.check(parse_email((RESPONSES / fixture).read_bytes(), 1000)) == reason


@pytest.mark.parametrize(
    ("parsed", "reason"),
    [
        (mail(**{"auto-submitted": "auto-generated"}), "auto_submitted"),
        (mail(**{"auto-submitted": "auto-replied; owner-email=x@y"}), "auto_submitted"),
        (mail(**{"precedence": "Bulk"}), "precedence"),
        (mail(**{"precedence": "junk"}), "precedence"),
        (mail(**{"list-id": "<a.b>"}), "mailing_list"),
        (mail(**{"list-unsubscribe": "<mailto:x@y>"}), "mailing_list"),
        (mail(**{"x-autoreply": "yes"}), "autoreply"),
        (mail(**{"return-path": "<>"}), "bounce"),
        (mail("mailer-daemon@example.com"), "system_sender"),
        (mail("postmaster@example.com"), "system_sender"),
        (mail("no-reply@example.com"), "system_sender"),
        (mail("noreply+orders@example.com"), "system_sender"),
        (mail("do-not-reply@example.com"), "system_sender"),
        (mail("support@helpline.test"), "own_address"),
        (mail(message_id="<hl.3.9.0123456789ab@helpline.test>"), "own_message"),
    ],
)
def test_loop_guard_reasons(parsed: ParsedEmail, reason: str) -> None:
    assert GUARD.check(parsed) == reason


@pytest.mark.parametrize(
    "parsed",
    [mail(), mail(**{"auto-submitted": "no"}), mail(**{"precedence": "first-class"}),
     mail("noreen@example.com"), mail("postmaster.fan@example.com")],
)  # fmt: skip
def test_people_are_answered(parsed: ParsedEmail) -> None:
    assert GUARD.check(parsed) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_a_token_bucket_per_sender() -> None:
    clock = Clock()
    limit = SenderRateLimit(burst=2, per_hour=60, clock=clock)  # one token a minute
    alice, bob = mail("alice@example.com"), mail("bob@example.com")
    assert [limit.check(alice) for _ in range(3)] == [None, None, "rate_limited"]
    assert limit.check(bob) is None  # each sender has a bucket
    clock.now += 30
    assert limit.check(alice) == "rate_limited"
    clock.now += 30
    assert limit.check(alice) is None
    clock.now += 3600
    assert [limit.check(alice) for _ in range(3)] == [None, None, "rate_limited"]


def test_token_bucket_never_exceeds_its_capacity() -> None:
    bucket = TokenBucket(capacity=3, rate=1.0, now=0.0)
    assert bucket.take(now=1e6)
    assert bucket.tokens == 2
