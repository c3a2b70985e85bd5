"""The console inbox end to end: handoff by a real turn, live socket, claim, reply, resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import metrics
from bot.bus import conversation_topic
from bot.manager import CSAT_THANKS
from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from connectors.widget.config import DAYS
from tests.connectors.console.api_support import (
    AgentClient,
    Collect,
    add_agent,
    customer_says,
    db_of,
    eventually,
    login,
    runtime_of,
    write_config,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
Frames = list[dict[str, Any]]


def collector(client: TestClient[Any, Any]) -> Collect:
    channel = runtime_of(client).dispatcher._channels["collect"]
    assert isinstance(channel, Collect)
    return channel


async def make_client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path, **console: Any
) -> TestClient[Any, Any]:
    config = write_config(tmp_path, db_url, console)
    runtime = Runtime(config, nlu=NoNLU())
    app = create_app(config, runtime)
    runtime.dispatcher.register(Collect())
    client = await aiohttp_client(app)
    await add_agent(client, "ana@example.com", "Ana")
    await add_agent(client, "ben@example.com", "Ben")
    await add_agent(client, "boss@example.com", "Bea", role="admin")
    return client


@pytest.fixture
async def client(
    request: pytest.FixtureRequest, aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    """The app; ``parametrize("client", [{console section}], indirect=True)`` configures it."""
    return await make_client(aiohttp_client, db_url, tmp_path, **getattr(request, "param", {}))


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if request handling blocks the event loop."""


async def handed_off(client: TestClient[Any, Any], agent: AgentClient, conversation: str) -> int:
    """Hand ``conversation`` off by a real turn; return its store id once queued."""
    await customer_says(client, conversation, "/human_handoff", f"{conversation}-h")

    async def queued() -> int | None:
        rows = (await agent.get("/conversations?view=needs_human"))["conversations"]
        ids = [r["id"] for r in rows if r["external_id"] == conversation]
        return ids[0] if ids else None

    cid: int = await eventually(queued)
    return cid


async def read_until(ws: Any, frames: Frames, wanted: Callable[[dict[str, Any]], bool]) -> Any:
    async with asyncio.timeout(20):  # a hang guard
        while True:
            frame = await ws.receive_json()
            frames.append(frame)
            if wanted(frame):
                return frame


async def test_handoff_is_queued_with_its_reason_and_live(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    origin = f"http://{client.server.host}:{client.server.port}"
    refused = await client.get("/console/api/ws", headers={**ana.headers(), "Origin": "http://x"})
    assert refused.status == 403
    ws = await client.ws_connect("/console/api/ws", headers={**ana.headers(), "Origin": origin})
    frames: Frames = []
    await customer_says(client, "c1", "/human_handoff", "c1-1")
    handoff = await read_until(ws, frames, lambda f: f["type"] == "handoff")
    summary = handoff["conversation"]
    assert summary["handoff_reason"] == "user_request"
    assert (summary["status"], summary["mode"], summary["assignee"]) == ("open", "human", None)
    rows = (await ana.get("/conversations?view=needs_human"))["conversations"]
    assert [r["id"] for r in rows] == [summary["id"]]
    assert rows[0]["wait_s"] >= 0
    await customer_says(client, "c1", "are you there?", "c1-2")
    message = await read_until(
        ws, frames, lambda f: f["type"] == "message" and f["message"]["text"] == "are you there?"
    )
    assert message["conversation_id"] == summary["id"]
    assert message["message"]["author"] == "customer"
    bus = runtime_of(client).bus
    bus.publish(conversation_topic("collect", "c1"), {"type": "typing", "who": "customer"})
    typing = await read_until(ws, frames, lambda f: f["type"] == "typing")
    assert typing == {"type": "typing", "conversation_id": summary["id"], "who": "customer"}
    assert (await ana.get("/conversations?q=ARE%20YOU"))["conversations"][0]["id"] == summary["id"]
    assert (await ana.get("/conversations?q=nothing-like-it"))["conversations"] == []
    await ws.close()


async def test_two_concurrent_claims_have_one_winner(client: TestClient[Any, Any]) -> None:
    ana, ben = await login(client, "ana@example.com"), await login(client, "ben@example.com")
    cid = await handed_off(client, ana, "c2")
    results = await asyncio.gather(
        ana.call("POST", f"/conversations/{cid}/claim"),
        ben.call("POST", f"/conversations/{cid}/claim"),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    winner = next(body for status, body in results if status == 200)["conversation"]["assignee"]
    loser = next(body for status, body in results if status == 409)
    assert loser == {
        "error": "already_claimed",
        "reason": f"{winner['name']} claimed it",
        "assignee": winner,
    }
    mine = await (ana if winner["name"] == "Ana" else ben).get("/conversations?view=mine")
    assert [r["id"] for r in mine["conversations"]] == [cid]


async def test_reply_reaches_the_customer_and_a_note_does_not(
    client: TestClient[Any, Any],
) -> None:
    ana = await login(client, "ana@example.com")
    cid = await handed_off(client, ana, "c3")
    topic = runtime_of(client).bus.subscribe(conversation_topic("collect", "c3"))
    first_replies = metrics.CONSOLE_FIRST_REPLY._sum.get()  # type: ignore[attr-defined]
    note = (await ana.post(f"/conversations/{cid}/notes", {"text": "VIP, be nice"}))["note"]
    assert note["agent"]["name"] == "Ana"
    assert note["text"] == "VIP, be nice"
    answer = await ana.post(f"/conversations/{cid}/reply", {"text": "Hi, Ana here."})
    assert answer["message"]["author"] == "agent"
    assert answer["message"]["agent_name"] == "Ana"
    sent = await eventually(
        lambda: [m for m in collector(client).sent if m.text == "Hi, Ana here."]
    )
    assert sent[0].metadata["agent"] == {"id": ana.agent["id"], "name": "Ana"}
    events = [await topic.get()]
    while events[-1].get("text") != "Hi, Ana here.":
        events.append(await topic.get())
    topic.close()
    assert all("VIP" not in str(e) for e in events)
    assert any(e.get("text") == "Hi, Ana here." for e in events)
    assert "VIP, be nice" not in collector(client).texts("c3")
    detail = await ana.get(f"/conversations/{cid}")
    assert detail["conversation"]["assignee"]["name"] == "Ana"  # claimed by replying
    assert detail["conversation"]["wait_s"] is None
    assert metrics.CONSOLE_FIRST_REPLY._sum.get() >= first_replies  # type: ignore[attr-defined]
    ben = await login(client, "ben@example.com")
    status, body = await ben.call("POST", f"/conversations/{cid}/reply", {"text": "me too"})
    assert status == 409
    assert body["error"] == "already_claimed"


async def test_canned_responses_fill_slots(client: TestClient[Any, Any]) -> None:
    boss = await login(client, "boss@example.com")
    await customer_says(client, "c4", "/check_order", "c4-1")
    await customer_says(client, "c4", "HL-12345", "c4-2")
    await eventually(lambda: "Shall I go ahead with HL-12345?" in collector(client).texts("c4"))
    cid = await db_of(client).conversation_id("collect", "c4")  # mid-flow, not handed off
    made = await boss.post(
        "/canned",
        {"shortcut": "ord", "title": "Order", "text": "Hi {customer_name}, {order_id} {nope}"},
    )
    assert [c["shortcut"] for c in (await boss.get("/canned"))["canned"]] == ["ord"]
    rendered = await boss.get(f"/canned/{made['id']}/render?conversation={cid}")
    assert rendered == {"text": "Hi cust-c4, HL-12345 {nope}"}
    status, _ = await boss.call("DELETE", f"/canned/{made['id']}")
    assert status == 204


async def test_resolve_with_csat_records_the_answer(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    cid = await handed_off(client, ana, "c5")
    await ana.post(f"/conversations/{cid}/claim")
    resolved = await ana.post(f"/conversations/{cid}/resolve", {"csat": True})
    assert (resolved["status"], resolved["mode"]) == ("resolved", "bot")
    question = await eventually(lambda: [m for m in collector(client).sent if m.buttons])
    payloads = [b.payload for b in question[-1].buttons]
    assert payloads[3] == '/csat{"score": 4}'
    assert len(payloads) == 5
    await customer_says(client, "c5", payloads[3], "c5-csat")
    await eventually(lambda: CSAT_THANKS in collector(client).texts("c5"))
    rows = (await ana.get("/conversations?view=resolved"))["conversations"]
    assert rows[0]["id"] == cid
    assert rows[0]["csat"] == 4
    status, _ = await ana.call("POST", f"/conversations/{cid}/resolve", {})
    assert status == 409


async def test_handback_lets_the_bot_answer_again(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    cid = await handed_off(client, ana, "c6")
    await customer_says(client, "c6", "/check_order", "c6-2")  # human mode: no bot answer
    back = await ana.post(f"/conversations/{cid}/handback")
    assert (back["mode"], back["status"]) == ("bot", "resolved")
    await customer_says(client, "c6", "/check_order", "c6-3")
    await eventually(lambda: "What is your order number?" in collector(client).texts("c6"))
    assert collector(client).texts("c6").count("What is your order number?") == 1


async def test_presence_typing_and_audit(client: TestClient[Any, Any]) -> None:
    ana, boss = await login(client, "ana@example.com"), await login(client, "boss@example.com")
    cid = await handed_off(client, ana, "c7")
    console = runtime_of(client).bus.subscribe("console")
    status, me = await ana.call("PUT", "/me/presence", {"presence": "online"})
    assert status == 200
    assert me["presence"] == "online"
    frame = await console.get()
    while frame["type"] != "presence":  # relayed conversation frames may come first
        frame = await console.get()
    assert frame["agent"] == {"id": ana.agent["id"], "name": "Ana", "presence": "online"}
    console.close()
    customer = runtime_of(client).bus.subscribe(conversation_topic("collect", "c7"))
    status, _ = await ana.call("POST", f"/conversations/{cid}/typing")
    assert status == 204
    assert await customer.get() == {
        "type": "typing",
        "who": "agent",
        "name": "Ana",
        "topic": "conv:collect:c7",
    }
    customer.close()
    await ana.post(f"/conversations/{cid}/claim")
    actions = [(e["action"], e["name"]) for e in (await boss.get("/audit"))["entries"]]
    assert ("claim", "Ana") in actions
    assert ("presence", "Ana") in actions
    assert ("login", "Bea") in actions


async def test_stats_on_a_known_dataset(client: TestClient[Any, Any]) -> None:
    boss = await login(client, "boss@example.com")
    await customer_says(client, "s1", "/greet", "s1-1")
    await customer_says(client, "s2", "/greet", "s2-1")
    await eventually(lambda: len(collector(client).sent) >= 2)
    cid = await handed_off(client, boss, "s3")
    await boss.post(f"/conversations/{cid}/reply", {"text": "hello"})
    await boss.post(f"/conversations/{cid}/resolve", {"csat": True})
    await customer_says(client, "s3", '/csat{"score": 5}', "s3-csat")
    await eventually(lambda: CSAT_THANKS in collector(client).texts("s3"))
    stats = await boss.get("/stats")
    assert stats["containment_rate"] == pytest.approx(2 / 3)
    # The handoff turn and the CSAT answer are human turns.
    assert stats["routes"] == {"flow": 2, "extractive": 0, "local": 0, "cloud": 0, "human": 2}
    assert stats["handoffs_by_reason"] == {"user_request": 1}
    assert stats["csat"] == {"count": 1, "average": 5.0}
    assert stats["time_to_first_human_reply_s"]["count"] == 1
    assert stats["resolution_time_s"]["count"] == 1
    assert stats["escalation_rate"] is None
    assert stats["cloud_cost_per_day"] == []


@pytest.mark.parametrize(
    "client",
    [{"unclaimed_notice_after_min": 0.001, "unclaimed_notice": "Busy, hang on."}],
    indirect=True,
)
async def test_unclaimed_customers_are_told_once(client: TestClient[Any, Any]) -> None:
    ana = await login(client, "ana@example.com")
    # Ana is online at the handoff, so the bot promised a person; nobody claims it.
    assert (await ana.call("PUT", "/me/presence", {"presence": "online"}))[0] == 200
    await handed_off(client, ana, "n1")
    await eventually(lambda: "Busy, hang on." in collector(client).texts("n1"))
    sent = [m for m in collector(client).sent if m.text == "Busy, hang on."]
    assert sent[0].metadata["notice"] == "away"
    await asyncio.sleep(0.2)  # several more checks: still told once
    assert collector(client).texts("n1").count("Busy, hang on.") == 1


NOT_AVAILABLE = "I'm sorry, no one from our team is available right now. Please try again later."
CLOSED_DAY = DAYS[(datetime.now(UTC).weekday() + 3) % 7]


@pytest.mark.parametrize(
    "client",
    [
        {
            "business_hours": {"timezone": "UTC", "open": [f"{CLOSED_DAY} 09:00-17:00"]},
            "unclaimed_notice_after_min": 600,
            "offline_notice": "We are closed.",
        }
    ],
    indirect=True,
)
async def test_outside_business_hours_the_handoff_says_so_once(
    client: TestClient[Any, Any],
) -> None:
    ana = await login(client, "ana@example.com")
    assert (await ana.call("PUT", "/me/presence", {"presence": "online"}))[0] == 200
    # Handed off while closed: the handoff itself says nobody is there, and the
    # offline notice (for those handed off while open) does not come on top.
    await handed_off(client, ana, "h0")
    await eventually(lambda: collector(client).texts("h0") == [NOT_AVAILABLE])
    await asyncio.sleep(0.2)  # several notice checks
    assert collector(client).texts("h0") == [NOT_AVAILABLE]
