"""Recorded Slack payloads in, Helpline messages out, and Block Kit back."""

from __future__ import annotations

import pytest

from bot.messages import Button, OutboundMessage
from connectors.slack.ignore import BotIdentity, IgnoreBots, ignore_reason
from connectors.slack.pipeline import Ack, Payload, chain
from connectors.slack.translate import (
    action_to_inbound,
    button_owner,
    chosen_update,
    clean_text,
    conversation_key,
    event_to_inbound,
    render,
    thread_of_key,
)
from tests.connectors.slack.helpers import recorded

BOT = BotIdentity(user_id="U0HELPBOT", bot_id="B0HELPBOT")


def test_direct_message() -> None:
    inbound = event_to_inbound(recorded("message_im"), "per_user", BOT.user_id)
    assert inbound is not None
    assert inbound.channel == "slack"
    assert inbound.conversation_id == "T0001HELP:U0CUSTOMER"
    assert inbound.sender == "U0CUSTOMER"
    assert inbound.text == "where is my order?"
    assert inbound.message_id == "D0HELPDM1:1700000000.000100"
    assert inbound.metadata == {
        "team": "T0001HELP",
        "channel": "D0HELPDM1",
        "thread_ts": "1700000000.000100",
        "user": "U0CUSTOMER",
        "ts": "1700000000.000100",
        "event_id": "Ev0HELPIM001",
        "event_type": "message",
    }


def test_mention_in_a_thread() -> None:
    payload = recorded("app_mention_thread")
    inbound = event_to_inbound(payload, "per_thread", BOT.user_id)
    assert inbound is not None
    assert inbound.text == "what are your opening hours & holidays?"
    assert inbound.conversation_id == "T0001HELP:C0SUPPORT1:1700000200.000200"
    assert inbound.metadata["thread_ts"] == "1700000200.000200"
    assert inbound.metadata["ts"] == "1700000300.000400"
    assert thread_of_key(inbound.conversation_id) == ("C0SUPPORT1", "1700000200.000200")
    per_user = event_to_inbound(payload, "per_user", BOT.user_id)
    assert per_user is not None
    assert per_user.conversation_id == "T0001HELP:U0CUSTOMER@C0SUPPORT1"
    assert thread_of_key(per_user.conversation_id) is None


def test_channel_messages_are_not_for_the_bot() -> None:
    payload = recorded("message_im")
    payload["event"]["channel_type"] = "channel"
    assert event_to_inbound(payload, "per_user", BOT.user_id) is None
    payload["event"]["type"] = "reaction_added"
    assert event_to_inbound(payload, "per_user", BOT.user_id) is None


def test_clean_text() -> None:
    assert clean_text("<@U0HELPBOT|helpline>  hi <@U0OTHER>", "U0HELPBOT") == "hi <@U0OTHER>"
    assert clean_text("a &lt;b&gt; &amp;amp;", None) == "a <b> &amp;"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("message_changed", "subtype message_changed"),
        ("bot_message", "subtype bot_message"),
        ("own_message", "the bot's own message"),
        ("message_im", None),
        ("app_mention_thread", None),
        ("url_verification", None),
        ("block_actions", None),
    ],
)
def test_ignore_reasons(name: str, reason: str | None) -> None:
    assert ignore_reason(recorded(name), BOT) == reason


def test_ignore_other_bots_and_own_user_and_deletions() -> None:
    other = recorded("message_im")
    other["event"]["bot_id"] = "B0OTHER"
    assert ignore_reason(other, BOT) == "a bot's message"
    own = recorded("message_im")
    own["event"]["user"] = "U0HELPBOT"
    assert ignore_reason(own, BOT) == "the bot's own message"
    deleted = recorded("message_im")
    deleted["event"]["subtype"] = "message_deleted"
    assert ignore_reason(deleted, BOT) == "subtype message_deleted"
    broadcast = recorded("message_im")
    broadcast["event"]["subtype"] = "thread_broadcast"
    assert ignore_reason(broadcast, BOT) is None


async def test_the_middleware_stops_ignored_payloads() -> None:
    seen: list[Payload] = []

    async def handler(payload: Payload) -> Ack:
        seen.append(payload)
        return Ack(body={"handled": True})

    run = chain([IgnoreBots(BOT)], handler)
    ignored = await run(recorded("own_message"))
    assert ignored.ok
    assert ignored.body is None
    assert ignored.note == "ignored: the bot's own message"
    assert (await run(recorded("message_im"))).body == {"handled": True}
    assert len(seen) == 1


def test_button_click_is_the_users_choice() -> None:
    inbound = action_to_inbound(recorded("block_actions"), "per_thread")
    assert inbound is not None
    assert inbound.text == "/affirm"
    assert inbound.sender == "U0CUSTOMER"
    assert inbound.message_id == "action:U0CUSTOMER:1700000160.482913"
    assert inbound.conversation_id == "T0001HELP:D0HELPDM1:1700000000.000100"
    assert inbound.metadata["thread_ts"] == "1700000000.000100"
    assert inbound.metadata["message_ts"] == "1700000100.000300"
    assert inbound.metadata["button"] == "Yes"


def test_a_click_without_a_button_is_nothing() -> None:
    payload = recorded("block_actions")
    payload["actions"][0]["type"] = "static_select"
    assert action_to_inbound(payload, "per_user") is None
    assert chosen_update(payload) is None


def test_chosen_update_replaces_the_buttons() -> None:
    update = chosen_update(recorded("block_actions"))
    assert update is not None
    assert update["channel"] == "D0HELPDM1"
    assert update["ts"] == "1700000100.000300"
    assert update["text"] == "Shall I go ahead with HL-12345?"
    assert [b["type"] for b in update["blocks"]] == ["section", "context"]
    assert update["blocks"][1]["elements"][0]["text"] == "<@U0CUSTOMER> chose *Yes*"


def test_render_plain_and_with_buttons() -> None:
    plain = OutboundMessage("slack", "T:U", "Fish & <chips>")
    assert render(plain) == {"text": "Fish &amp; &lt;chips&gt;"}
    buttons = (Button("Yes", "/affirm"), Button("No" * 50, "/deny"))
    body = render(OutboundMessage("slack", "T:U", "Go ahead?", buttons))
    assert body["text"] == "Go ahead?"
    section, actions = body["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": "Go ahead?"}
    assert actions["block_id"] == "helpline_buttons"
    first, second = actions["elements"]
    assert first == {
        "type": "button",
        "action_id": "helpline_button_0",
        "text": {"type": "plain_text", "text": "Yes"},
        "value": "/affirm",
    }
    assert len(second["text"]["text"]) == 75


def test_buttons_without_text_still_have_a_fallback() -> None:
    body = render(OutboundMessage("slack", "T:U", "", (Button("Yes", "/affirm"),)))
    assert body["text"] == "Yes"
    assert [b["type"] for b in body["blocks"]] == ["actions"]


def test_per_user_keys_keep_a_dm_and_each_channel_apart() -> None:
    dm_key = conversation_key("per_user", "T1", "D0DM", "U1", "1.0")
    channel_key = conversation_key("per_user", "T1", "C0PUB", "U1", "1.0")
    other_thread = conversation_key("per_user", "T1", "C0PUB", "U1", "2.0")
    assert dm_key == "T1:U1"
    assert channel_key == other_thread == "T1:U1@C0PUB"
    assert thread_of_key(channel_key) is None


def test_buttons_name_the_user_they_answer() -> None:
    body = render(OutboundMessage("slack", "T:U", "Go?", (Button("Yes", "/affirm"),)), "U0OWNER")
    actions = body["blocks"][-1]
    assert actions["block_id"] == "helpline_buttons:U0OWNER"
    click = recorded("block_actions")
    click["actions"][0]["block_id"] = actions["block_id"]
    click["user"]["id"] = "U0OTHER"
    assert button_owner(click["actions"][0]) == "U0OWNER"
    inbound = action_to_inbound(click, "per_user")
    assert inbound is not None
    assert inbound.sender == "U0OTHER"
    assert inbound.conversation_id == "T0001HELP:U0OWNER"  # the owner's conversation
    assert button_owner(recorded("block_actions")["actions"][0]) is None  # posted before owners
