"""Malformed Slack requests get a 4xx with a reason, never a 500.

Before the signature: a body that is not UTF-8, a timestamp that is not a
Unix time. After it (a signed request can still carry anything): a
``block_actions`` whose ``user`` is a string or whose ``actions`` is a
number, a lone surrogate in a text. Socket Mode acknowledges such an
envelope (redelivery would not help) and answers nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.wirejson import InvalidPayload
from connectors.slack.ignore import BotIdentity, ignore_reason
from connectors.slack.translate import (
    action_to_inbound,
    chosen_update,
    event_to_inbound,
    not_yours_notice,
)
from tests.connectors.slack.fake_slack import SIGNING_SECRET, FakeSlack
from tests.connectors.slack.helpers import dm, recorded, signed

Client = TestClient[Any, Any]
PATHS = ("/webhooks/slack/events", "/webhooks/slack/interactions")
FORM = "application/x-www-form-urlencoded"


def raw_signed(body: bytes, ts: str | None = None) -> dict[str, str]:
    """Slack's headers for any bytes (slack-sdk's helper only signs UTF-8)."""
    ts = str(int(time.time())) if ts is None else ts
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


async def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    answer = await resp.json()
    assert answer["error"]
    assert answer["reason"]
    return dict(answer)


async def test_a_body_that_is_not_utf8_gets_4xx(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    body = b'{"type": "event_callback", "x": "\xff\xfe"}'
    form = b"payload=%7B%7D&x=\xff"
    for path in PATHS:
        for sent, kind in ((body, "application/json"), (form, FORM)):
            unsigned = {"Content-Type": kind, **raw_signed(b"something else")}
            await _error(await client.post(path, data=sent, headers=unsigned), 401)
            headers = {"Content-Type": kind, **raw_signed(sent)}
            answer = await _error(await client.post(path, data=sent, headers=headers), 400)
            assert "UTF-8" in answer["reason"]


async def test_a_timestamp_that_is_not_a_unix_time_gets_401(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    body = json.dumps(dm("/greet", "1700000000.000100", "Ev0TS")).encode()
    for ts in ("²", "9" * 5000, "-1", "1700000000x", "1e9", "\uff11\uff17\uff10\uff10"):
        headers = {"Content-Type": "application/json", **raw_signed(body, ts=ts)}
        for path in PATHS:
            resp = await client.post(path, data=body, headers=headers)
            answer = await _error(resp, 401)
            assert answer["error"] == "bad_timestamp"


def _actions(**changes: Any) -> dict[str, Any]:
    payload = recorded("block_actions")
    payload.update(changes)
    return payload


BAD_CLICKS = [
    _actions(user="U0CUSTOMER"),
    _actions(actions=5),
    _actions(actions=["a"]),
    _actions(container=[]),
    _actions(message="hi"),
    _actions(team=7),
    _actions(user={"id": 42}),
]


async def test_signed_block_actions_of_the_wrong_shape_get_400(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    for payload in BAD_CLICKS:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": FORM, **signed(body)}
        resp = await client.post("/webhooks/slack/interactions", data=body, headers=headers)
        answer = await _error(resp, 400)
        assert answer["error"] == "invalid_payload"
        assert "payload." in answer["reason"]
        assert resp.headers["X-Slack-No-Retry"] == "1"
    assert not fake.successful("chat.update")


async def test_a_lone_surrogate_gets_400(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    event = dm("hi \ud800 there", "1700000000.000100", "Ev0SUR")
    click = recorded("block_actions")
    click["actions"][0]["value"] = "/affirm\ud800"
    sent = [
        ("/webhooks/slack/events", json.dumps(event).encode(), "application/json"),
        ("/webhooks/slack/interactions", urlencode({"payload": json.dumps(click)}).encode(), FORM),
    ]
    for path, body, kind in sent:
        headers = {"Content-Type": kind, **signed(body)}
        answer = await _error(await client.post(path, data=body, headers=headers), 400)
        assert "surrogate" in answer["reason"]
    # Stored nothing: a good message afterwards is the first answered.
    resp = await client.post(
        PATHS[0],
        data=(good := json.dumps(dm("/greet", "1700000001.000100", "Ev0OK")).encode()),
        headers={"Content-Type": "application/json", **signed(good)},
    )
    assert resp.status == 200
    (posted,) = await fake.wait_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1700000001.000100"


@pytest.mark.parametrize("slack_settings", [{"mode": "socket", "signing_secret": ""}])
async def test_socket_mode_drops_a_malformed_envelope(client: Client, fake: FakeSlack) -> None:
    await fake.wait_until(lambda: bool(fake.live_sockets))
    bad = await fake.send_envelope("events_api", dm("\ud800", "1700000000.000100", "Ev0S1"))
    await fake.wait_until(lambda: bad in fake.acks)  # acknowledged: redelivery cannot help
    click = await fake.send_envelope("interactive", _actions(actions=5))
    await fake.wait_until(lambda: click in fake.acks)
    good = await fake.send_envelope("events_api", dm("/greet", "1700000001.000100", "Ev0S2"))
    await fake.wait_until(lambda: good in fake.acks)
    (posted,) = await fake.wait_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1700000001.000100"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["user", "actions", "container", "message", "channel", "team", "event", "trigger_id"]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["block_actions", "message_im", "app_mention_thread"]),
    changes=st.dictionaries(KEYS, JSON, max_size=4),
    event_changes=st.dictionaries(
        st.sampled_from(["user", "channel", "ts", "thread_ts", "text", "type", "subtype"]),
        JSON,
        max_size=4,
    ),
)
def test_translation_of_any_shape_answers_or_refuses(
    base: str, changes: dict[str, Any], event_changes: dict[str, Any]
) -> None:
    payload = recorded(base)
    if isinstance(payload.get("event"), dict):
        payload["event"].update(event_changes)
    payload.update(changes)
    ignore_reason(payload, BotIdentity("U0HELPBOT", "B0HELPBOT"))
    calls = (
        lambda: event_to_inbound(payload, "per_user", "U0HELPBOT"),
        lambda: event_to_inbound(payload, "per_thread", None),
        lambda: action_to_inbound(payload, "per_user"),
        lambda: chosen_update(payload),
        lambda: not_yours_notice(payload, "U0OWNER"),
    )
    reasons = []
    for call in calls:
        try:
            call()
        except InvalidPayload as exc:  # anything else is a bug (a 500)
            reasons.append(str(exc))
    assert all(reasons)
