"""Slack over the Events API, end to end: signed HTTP in, flow turn, Web API out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import metrics
from bot.server import RUNTIME
from tests.connectors.slack.fake_slack import TEAM_ID, FakeSlack
from tests.connectors.slack.helpers import (
    CUSTOMER,
    DM,
    SUPPORT,
    click,
    dm,
    mention,
    post_action,
    post_event,
    recorded,
    settled,
    signed,
    transcript,
)

Client = TestClient[Any, Any]

PER_USER = f"{TEAM_ID}:{CUSTOMER}"
IN_SUPPORT = f"{TEAM_ID}:{CUSTOMER}@{SUPPORT}"


def duplicates() -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "helpline_duplicate_messages_total", {"channel": "slack"}
    )
    return sample or 0.0


async def test_dm_conversation_with_buttons(client: Client, fake: FakeSlack) -> None:
    assert fake.successful("auth.test")

    resp = await post_event(client, dm("/check_order", "1700000000.000100", "Ev01"))
    assert resp.status == 200
    assert await resp.text() == ""
    (first,) = await fake.wait_for("chat.postMessage")
    assert first.params["channel"] == DM
    assert first.params["thread_ts"] == "1700000000.000100"
    assert first.params["text"] == "What is your order number?"
    assert "blocks" not in first.params

    reply = dm("HL-12345", "1700000050.000200", "Ev02", thread_ts="1700000000.000100")
    assert (await post_event(client, reply)).status == 200
    question = (await fake.wait_for("chat.postMessage", 2))[1]
    assert question.params["thread_ts"] == "1700000000.000100"
    assert question.params["text"] == "Shall I go ahead with HL-12345?"
    section, actions = question.params["blocks"]
    assert section == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Shall I go ahead with HL-12345?"},
    }
    assert actions["type"] == "actions"
    assert [(b["type"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
        ("button", "Yes", "/affirm"),
        ("button", "No", "/deny"),
    ]

    resp = await post_action(client, click(question.response, "Yes", "1700000160.482913"))
    assert resp.status == 200
    (update,) = await fake.wait_for("chat.update")
    assert update.params["ts"] == question.response["ts"]
    assert update.params["channel"] == DM
    assert [b["type"] for b in update.params["blocks"]] == ["section", "context"]
    assert update.params["blocks"][1]["elements"][0]["text"] == f"<@{CUSTOMER}> chose *Yes*"
    done, anything_else = (await fake.wait_for("chat.postMessage", 4))[2:]
    assert done.params["text"] == "Order HL-12345 is shipped."
    assert done.params["thread_ts"] == anything_else.params["thread_ts"] == "1700000000.000100"

    messages = await transcript(client, PER_USER)
    inbound = [m for m in messages if m.direction == "in"]
    assert [m.text for m in inbound] == ["/check_order", "HL-12345", "/affirm"]
    assert [m.external_id for m in inbound] == [
        f"{DM}:1700000000.000100",
        f"{DM}:1700000050.000200",
        f"action:{CUSTOMER}:1700000160.482913",
    ]
    assert inbound[0].metadata["team"] == TEAM_ID
    assert inbound[0].metadata["channel"] == DM
    assert inbound[0].metadata["user"] == CUSTOMER
    assert inbound[1].metadata["thread_ts"] == "1700000000.000100"


async def test_retried_event_is_answered_once(client: Client, fake: FakeSlack) -> None:
    before = duplicates()
    event = dm("/check_order", "1700000000.000100", "Ev0RETRY")
    assert (await post_event(client, event)).status == 200
    for attempt in ("1", "2"):
        retry = {"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"}
        assert (await post_event(client, event, **retry)).status == 200
    assert duplicates() - before == 2
    # A later message of the same conversation runs after any turn the retries could start.
    later = dm("/greet", "1700000090.000300", "Ev0LATER")
    assert (await post_event(client, later)).status == 200
    await fake.wait_for("chat.postMessage", thread_ts="1700000090.000300")
    asked = fake.successful("chat.postMessage", text="What is your order number?")
    assert len(asked) == 1


async def test_rate_limit_and_server_errors_are_retried_and_delivered_once(
    client: Client, fake: FakeSlack
) -> None:
    fake.fail_next(1, status=429, retry_after=1)
    fake.fail_next(1, status=500)
    await post_event(client, dm("/check_order", "1700000000.000100", "Ev0LIMIT"))
    (delivered,) = await fake.wait_for("chat.postMessage")
    attempts = [c for c in fake.calls if c.method == "chat.postMessage"]
    assert [c.status for c in attempts] == [429, 500, 200]
    assert all(c.params == delivered.params for c in attempts)
    assert delivered.params["text"] == "What is your order number?"
    stored = await settled(client, PER_USER)
    assert [m.text for m in stored if m.direction == "out"] == ["What is your order number?"]


async def test_agent_reply_appears_in_the_thread_under_the_agents_name(
    client: Client, fake: FakeSlack
) -> None:
    await post_event(client, dm("/greet", "1700000000.000100", "Ev0AGENT"))
    await fake.wait_for("chat.postMessage")
    runtime = client.app[RUNTIME]
    conversation = await runtime.store.conversation("slack", PER_USER, CUSTOMER)
    agent = {"name": "Ana", "id": 7}
    reply = {"text": "Hi, I'm Ana. Let me look.", "metadata": {"agent": agent}}
    await runtime.dispatcher.push(conversation.id, reply)
    (posted,) = await fake.wait_for("chat.postMessage", username="Ana")
    assert posted.params["text"] == "Hi, I'm Ana. Let me look."
    assert posted.params["thread_ts"] == "1700000000.000100"
    assert posted.params["channel"] == DM
    assert posted.params["icon_emoji"] == ":bust_in_silhouette:"


@pytest.mark.parametrize("slack_settings", [{"agent_name_style": "prefix"}])
async def test_agent_name_as_prefix(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    await post_event(client, dm("/greet", "1700000000.000100", "Ev0PREFIX"))
    await fake.wait_for("chat.postMessage")
    runtime = client.app[RUNTIME]
    conversation = await runtime.store.conversation("slack", PER_USER, CUSTOMER)
    agent = {"name": "Ana", "icon_url": "https://example.com/ana.png"}
    await runtime.dispatcher.push(conversation.id, {"text": "On it.", "metadata": {"agent": agent}})
    (posted,) = await fake.wait_for("chat.postMessage", text="Ana: On it.")
    assert "username" not in posted.params
    assert posted.params["thread_ts"] == "1700000000.000100"


@pytest.mark.parametrize(
    "slack_settings", [{"conversation": "per_thread"}, {"conversation": "per_user"}]
)
async def test_mentions_in_threads_by_granularity(
    sqlite_client: Client, fake: FakeSlack, slack_settings: dict[str, str]
) -> None:
    client, granularity = sqlite_client, slack_settings["conversation"]
    thread_a, thread_b = "1700000200.000200", "1700000500.000600"
    await post_event(client, mention("/check_order", "1700000300.000400", "Ev0A", thread_a))
    await fake.wait_for("chat.postMessage", thread_ts=thread_a)
    # A top-level mention starts its own thread: the reply goes under it.
    await post_event(client, mention("HL-12345", thread_b, "Ev0B", None))
    (reply_b,) = await fake.wait_for("chat.postMessage", thread_ts=thread_b)
    assert reply_b.params["channel"] == SUPPORT

    store = client.app[RUNTIME].store
    if granularity == "per_thread":
        for thread in (thread_a, thread_b):
            key = f"{TEAM_ID}:{SUPPORT}:{thread}"
            messages = await transcript(client, key)
            assert len([m for m in messages if m.direction == "in"]) == 1
        # A new conversation: the order number is not taken as the answer.
        assert reply_b.params["text"] != "Shall I go ahead with HL-12345?"
    else:  # one conversation per user in the channel, across its threads
        messages = await transcript(client, IN_SUPPORT)
        assert [m.text for m in messages if m.direction == "in"] == ["/check_order", "HL-12345"]
        assert reply_b.params["text"] == "Shall I go ahead with HL-12345?"
    conversation = await store.conversation("slack", IN_SUPPORT, CUSTOMER)
    assert conversation.sender == CUSTOMER


async def test_own_and_bot_messages_edits_and_channel_messages_are_ignored(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    channel_message = dm("/greet", "1700000600.000700", "Ev0CHAN")
    channel_message["event"].update(channel=SUPPORT, channel_type="channel")
    for payload in (
        recorded("own_message"),
        recorded("bot_message"),
        recorded("message_changed"),
        channel_message,
    ):
        assert (await post_event(client, payload)).status == 200
    await post_event(client, dm("/check_order", "1700000000.000100", "Ev0REAL"))
    (only,) = await fake.wait_for("chat.postMessage")
    assert only.params["thread_ts"] == "1700000000.000100"
    messages = await transcript(client, PER_USER)
    assert [m.text for m in messages if m.direction == "in"] == ["/check_order"]


async def test_url_verification_answers_the_challenge(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    payload = recorded("url_verification")
    resp = await post_event(client, payload)
    assert resp.status == 200
    assert await resp.json() == {"challenge": payload["challenge"]}


async def test_storage_outage_gives_503_and_the_retry_is_answered(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    store = client.app[RUNTIME].store
    event = dm("/check_order", "1700000000.000100", "Ev0OUTAGE")
    await store.stop()
    resp = await post_event(client, event)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "unavailable"
    await store.start()
    resp = await post_event(client, event, **{"X-Slack-Retry-Num": "1"})
    assert resp.status == 200
    (posted,) = await fake.wait_for("chat.postMessage")
    assert posted.params["text"] == "What is your order number?"


async def test_gone_channel_is_not_retried(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    await post_event(client, mention("/greet", "1700000700.000800", "Ev0GONE", None, "C0ARCHIVED"))
    await fake.wait_until(lambda: any(c.error == "is_archived" for c in fake.calls))
    # Given up on: marked so that no retry or sweep sends it again.
    messages = await settled(client, f"{TEAM_ID}:{CUSTOMER}@C0ARCHIVED")
    outbound = [m for m in messages if m.direction == "out"]
    attempts = [c for c in fake.calls if c.method == "chat.postMessage"]
    assert len(attempts) == len(outbound) >= 1
    assert all(c.error == "is_archived" for c in attempts)
    assert await client.app[RUNTIME].store.undelivered("slack") == []


async def test_unsigned_or_stale_requests_get_401(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    body = json.dumps(dm("/greet", "1700000000.000100", "Ev0SIG")).encode()
    good = signed(body)
    now, stale = int(time.time()), str(int(time.time()) - 301)
    cases = [
        ("missing_timestamp", {"X-Slack-Signature": good["X-Slack-Signature"]}, body),
        ("bad_timestamp", {**good, "X-Slack-Request-Timestamp": "yesterday"}, body),
        ("stale_timestamp", signed(body, ts=stale), body),
        ("missing_signature", {"X-Slack-Request-Timestamp": str(now)}, body),
        ("bad_signature", {**good, "X-Slack-Signature": "v0=" + "0" * 64}, body),
        ("bad_signature", signed(body, secret="not-the-signing-secret"), body),
        ("bad_signature", good, body.replace(b"/greet", b"/admin")),
    ]
    for error, headers, sent in cases:
        for path in ("/webhooks/slack/events", "/webhooks/slack/interactions"):
            all_headers = {"Content-Type": "application/json", **headers}
            resp = await client.post(path, data=sent, headers=all_headers)
            assert resp.status == 401, error
            answer = await resp.json()
            assert answer["error"] == error
            assert answer["reason"]
    assert not fake.successful("chat.postMessage")
    resp = await client.post(
        "/webhooks/slack/events", data=body, headers={"Content-Type": "application/json", **good}
    )
    assert resp.status == 200


async def test_malformed_bodies_get_400(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    for body, content_type in (
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"token=abc", "application/x-www-form-urlencoded"),
    ):
        headers = {"Content-Type": content_type, **signed(body)}
        resp = await client.post("/webhooks/slack/events", data=body, headers=headers)
        assert resp.status == 400
        assert resp.headers["X-Slack-No-Retry"] == "1"
