"""Whose conversation a Slack message joins, and who may answer its buttons.

A DM and a channel are different conversations, even with per-user
sessions; one message delivered as both ``message.im`` and ``app_mention``
is answered once; only the user a reply answered may click its buttons
(unless ``button_clicks: anyone``).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import metrics
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
    settled,
)

Client = TestClient[Any, Any]
IN_DM = f"{TEAM_ID}:{CUSTOMER}"
IN_SUPPORT = f"{TEAM_ID}:{CUSTOMER}@{SUPPORT}"
INTRUDER = "U0INTRUDER"
ASK = "What is your order number?"
CONFIRM = "Shall I go ahead with HL-12345?"


def duplicates() -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "helpline_duplicate_messages_total", {"channel": "slack"}
    )
    return sample or 0.0


async def test_a_dm_conversation_does_not_continue_in_a_channel(
    client: Client, fake: FakeSlack
) -> None:
    await post_event(client, dm("/check_order", "1700000000.000100", "Ev0DM1"))
    await fake.wait_for("chat.postMessage", channel=DM, text=ASK)
    # The same user answers in a public channel: that is not the DM's conversation.
    await post_event(client, mention("HL-12345", "1700000100.000100", "Ev0CH1", None))
    (in_channel,) = await fake.wait_for("chat.postMessage", channel=SUPPORT)
    assert in_channel.params["text"] != CONFIRM
    channel_side = await settled(client, IN_SUPPORT)
    assert [m.text for m in channel_side if m.direction == "in"] == ["HL-12345"]
    posted_there = fake.successful("chat.postMessage", channel=SUPPORT)
    assert not [c for c in posted_there if "order" in c.params["text"].lower()]

    # The DM still waits for its order number.
    await post_event(client, dm("HL-12345", "1700000200.000100", "Ev0DM2", "1700000000.000100"))
    (confirm,) = await fake.wait_for("chat.postMessage", channel=DM, text=CONFIRM)
    assert confirm.params["thread_ts"] == "1700000000.000100"
    dm_side = await settled(client, IN_DM)
    assert [m.text for m in dm_side if m.direction == "in"] == ["/check_order", "HL-12345"]
    assert {m.metadata["channel"] for m in dm_side if m.direction == "in"} == {DM}


async def test_one_message_as_dm_and_mention_is_answered_once(
    client: Client, fake: FakeSlack
) -> None:
    before = duplicates()
    ts = "1700000000.000100"
    assert (await post_event(client, dm("/check_order", ts, "Ev0IM"))).status == 200
    # Slack delivers the same message (same channel and ts) again as an app_mention.
    resp = await post_event(client, mention("/check_order", ts, "Ev0MENTION", None, channel=DM))
    assert resp.status == 200
    assert duplicates() - before == 1
    # A later message runs after any turn the second delivery could have started.
    await post_event(client, dm("/greet", "1700000090.000300", "Ev0LATER"))
    await fake.wait_for("chat.postMessage", thread_ts="1700000090.000300")
    assert len(fake.successful("chat.postMessage", text=ASK)) == 1
    messages = await settled(client, IN_DM)
    inbound = [m for m in messages if m.direction == "in"]
    assert [m.text for m in inbound] == ["/check_order", "/greet"]
    assert inbound[0].external_id == f"{DM}:{ts}"


async def _buttons_in_channel(client: Client, fake: FakeSlack) -> dict[str, Any]:
    """The customer asks in a channel thread until the bot posts Yes/No buttons."""
    thread = "1700000300.000100"
    await post_event(client, mention("/check_order", thread, "Ev0B1", None))
    await fake.wait_for("chat.postMessage", channel=SUPPORT, text=ASK)
    await post_event(client, mention("HL-12345", "1700000310.000100", "Ev0B2", thread))
    (question,) = await fake.wait_for("chat.postMessage", channel=SUPPORT, text=CONFIRM)
    return question.response


async def test_only_the_owner_may_answer_the_buttons(client: Client, fake: FakeSlack) -> None:
    question = await _buttons_in_channel(client, fake)
    resp = await post_action(client, click(question, "Yes", "1700000320.000001", user=INTRUDER))
    assert resp.status == 200
    (notice,) = await fake.wait_for("chat.postEphemeral")
    assert notice.params["user"] == INTRUDER
    assert notice.params["channel"] == SUPPORT
    assert notice.params["thread_ts"] == "1700000300.000100"
    assert f"<@{CUSTOMER}>" in notice.params["text"]
    assert not fake.successful("chat.update")  # the buttons stay for their owner
    # The buttons name their owner, in the block id Slack echoes (signed) in a click.
    assert question["message"]["blocks"][-1]["block_id"] == f"helpline_buttons:{CUSTOMER}"

    await post_action(client, click(question, "Yes", "1700000330.000001"))
    (update,) = await fake.wait_for("chat.update")
    assert update.params["blocks"][-1]["elements"][0]["text"] == f"<@{CUSTOMER}> chose *Yes*"
    await fake.wait_for("chat.postMessage", channel=SUPPORT, text="Order HL-12345 is shipped.")
    messages = await settled(client, IN_SUPPORT)
    inbound = [m for m in messages if m.direction == "in"]
    assert [m.text for m in inbound] == ["/check_order", "HL-12345", "/affirm"]
    assert {m.metadata["user"] for m in inbound} == {CUSTOMER}
    assert len(fake.successful("chat.update")) == 1


@pytest.mark.parametrize("slack_settings", [{"button_clicks": "anyone"}])
async def test_anyone_may_answer_when_configured(sqlite_client: Client, fake: FakeSlack) -> None:
    client = sqlite_client
    question = await _buttons_in_channel(client, fake)
    await post_action(client, click(question, "Yes", "1700000320.000001", user=INTRUDER))
    (update,) = await fake.wait_for("chat.update")
    assert update.params["blocks"][-1]["elements"][0]["text"] == f"<@{INTRUDER}> chose *Yes*"
    # The click answers the owner's conversation, where the buttons were.
    await fake.wait_for("chat.postMessage", channel=SUPPORT, text="Order HL-12345 is shipped.")
    messages = await settled(client, IN_SUPPORT)
    assert [m.text for m in messages if m.direction == "in"][-1] == "/affirm"
    assert not fake.successful("chat.postEphemeral")
