"""Building signed Slack requests from the recorded payloads."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier

from bot.bench_slack import slack_section
from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import RUNTIME, create_app
from tests.connectors.slack.fake_slack import SIGNING_SECRET

RESPONSES = Path(__file__).parent / "responses"
PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
CUSTOMER = "U0CUSTOMER"
DM = "D0HELPDM1"
SUPPORT = "C0SUPPORT1"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
# Read once at import: tests run with the blocking guard armed.
_RECORDED = {path.stem: path.read_text() for path in RESPONSES.glob("*.json")}


def recorded(name: str) -> dict[str, Any]:
    return json.loads(_RECORDED[name])


def dm(text: str, ts: str, event_id: str, thread_ts: str | None = None) -> dict[str, Any]:
    """A ``message.im`` event from the recorded payload, with new text and ids."""
    payload = recorded("message_im")
    event = payload["event"]
    event.update(text=text, ts=ts, event_ts=ts)
    event["blocks"][0]["elements"][0]["elements"][0]["text"] = text
    if thread_ts is not None:
        event.update(thread_ts=thread_ts, parent_user_id=CUSTOMER)
    payload["event_id"] = event_id
    return payload


def mention(
    text: str, ts: str, event_id: str, thread_ts: str | None, channel: str = SUPPORT
) -> dict[str, Any]:
    """An ``app_mention`` event from the recorded payload (``thread_ts=None``: top level)."""
    payload = recorded("app_mention_thread")
    event = payload["event"]
    event.update(text=f"<@U0HELPBOT> {text}", ts=ts, event_ts=ts, channel=channel)
    if thread_ts is None:
        event.pop("thread_ts")
        event.pop("parent_user_id")
    else:
        event["thread_ts"] = thread_ts
    payload["event_id"] = event_id
    return payload


def click(
    posted: dict[str, Any], title: str, action_ts: str, user: str = CUSTOMER
) -> dict[str, Any]:
    """A ``block_actions`` payload for ``user`` clicking ``title`` on a message the bot posted."""
    payload = recorded("block_actions")
    payload["user"].update(id=user, username=user.lower(), name=user.lower())
    message = posted["message"]
    block_id, button = next(
        (block["block_id"], e)
        for block in message["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
        if e["text"]["text"] == title
    )
    payload["container"].update(
        message_ts=posted["ts"], channel_id=posted["channel"], thread_ts=message["thread_ts"]
    )
    payload["channel"]["id"] = posted["channel"]
    payload["message"] = {**copy.deepcopy(payload["message"]), **message}
    payload["actions"] = [
        {**button, "block_id": block_id, "type": "button", "action_ts": action_ts}
    ]
    return payload


def signed(body: bytes, ts: str | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(int(time.time())) if ts is None else ts
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


async def post_event(
    client: TestClient[Any, Any], payload: dict[str, Any], **headers: str
) -> ClientResponse:
    body = json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", **signed(body), **headers}
    return await client.post("/webhooks/slack/events", data=body, headers=all_headers)


async def post_action(client: TestClient[Any, Any], payload: dict[str, Any]) -> ClientResponse:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
    return await client.post("/webhooks/slack/interactions", data=body, headers=headers)


def slack_yaml(db_url: str, api_url: str, **slack: Any) -> str:
    """A helpline.yml enabling Slack against the fake at ``api_url``."""
    section = {**slack_section(api_url), **slack}
    lines = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in section.items())
    return (
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
        f"llm:\n  enabled: false\nconnectors:\n  slack:\n{lines}"
    )


def build_app(path: Path, db_url: str, api_url: str, **slack: Any) -> web.Application:
    path.write_text(slack_yaml(db_url, api_url, **slack))
    config = load_config(path)
    return create_app(config, Runtime(config, nlu=NoNLU()))


async def transcript(client: TestClient[Any, Any], external_id: str) -> list[Any]:
    """The stored messages of the customer's conversation ``external_id``."""
    store = client.app[RUNTIME].store
    conversation = await store.conversation("slack", external_id, CUSTOMER)
    return await store.transcript(conversation.id)


async def settled(client: TestClient[Any, Any], external_id: str) -> list[Any]:
    """Wait (bounded) until no reply of the conversation is pending; return its messages."""
    async with asyncio.timeout(15):
        while True:
            messages = await transcript(client, external_id)
            if all(m.status == "delivered" for m in messages if m.direction == "out"):
                return messages
            await asyncio.sleep(0.02)
