"""The agent console in a real browser (Debian Chromium driven by Playwright), on SQLite.

Each journey has two sides: a customer (the widget in a browser context, the
fake Slack, or a mailbox) and an agent (the console in another browser
context). The customer asks for a person, the conversation appears live in
the agent's queue, the agent claims it and replies, the customer sees the
reply under the agent's name, an internal note never reaches the customer,
and after the hand-back the bot answers again. Screenshots go to
``var/test-artifacts/console/``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bot.server import CHANNELS
from connectors.restart import RECONNECT_AFTER_MS
from tests.connectors.console.conftest import (
    AGENT_EMAIL,
    AGENT_NAME,
    AGENT_PASSWORD,
    ARTIFACTS,
    Desk,
    MailDesk,
)
from tests.connectors.email.test_email_app import eventually, mail, text_of
from tests.connectors.slack.helpers import CUSTOMER as SLACK_CUSTOMER
from tests.connectors.slack.helpers import dm

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed"),
]
ASK = "What is your order number?"
HANDOFF = "I'm connecting you with a person. Someone will be with you shortly."
ASK_EMAIL = (
    "No one from our team is available right now, but your request is in their queue. "
    "If you'd like the answer by email, type your email address; otherwise just say no."
)
EMAIL_SAVED = (
    "Thanks! We'll reply to {}. Your request stays in the queue in case someone comes online first."
)
EMAIL_LATER = "No one from our team is available right now."
ANYTHING_ELSE = "Is there anything else I can help you with?"
XSS = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">']
expect.set_options(timeout=20_000)  # a hang guard for a busy machine, not a timing check

CREATE_CANNED = """
(async () => {
  const me = await (await fetch("/console/api/me")).json();
  const response = await fetch("/console/api/canned", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf},
    body: JSON.stringify({shortcut: "hello", title: "Greeting", text: "Hi {customer_name}, how can I help?"}),
  });
  return response.status;
})()
"""
# Records the notifications the console raises, then lets the real one through.
NOTIFICATION_SPY = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notified = [];
  function Spy(title, options) {
    window.__notified.push({title, body: options && options.body});
    return new Real(title, options);
  }
  Object.defineProperty(Spy, "permission", {get: () => Real.permission});
  Spy.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Spy;
})();
"""


# Records when each WebSocket the page opens was created and closed (page clock, ms).
SOCKET_CLOCK = """
(() => {
  const Real = window.WebSocket;
  window.__sockets = [];
  function Recorded(url, protocols) {
    const ws = protocols === undefined ? new Real(url) : new Real(url, protocols);
    const entry = {opened: performance.now(), closed: null, code: null};
    window.__sockets.push(entry);
    ws.addEventListener("close", (e) => { entry.closed = performance.now(); entry.code = e.code; });
    return ws;
  }
  Recorded.prototype = Real.prototype;
  Object.assign(Recorded, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Recorded;
})();
"""


# Keeps every Content-Security-Policy violation of the console's origin (across pages).
CSP_SPY = """
document.addEventListener("securitypolicyviolation", (e) => {
  const seen = JSON.parse(localStorage.getItem("csp-violations") || "[]");
  seen.push(e.violatedDirective + " " + e.blockedURI);
  localStorage.setItem("csp-violations", JSON.stringify(seen));
});
"""


# ------------------------------------------------------------------ the agent
async def agent_console(
    browser: Browser,
    desk: Desk | MailDesk,
    init_scripts: tuple[str, ...] = (),
    presence: str = "online",
) -> Page:
    """Sign in to the console as the agent in a fresh context (laptop-sized).

    The agent then sets ``presence``: online, the bot promises customers a person.
    """
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    await context.grant_permissions(["notifications"], origin=desk.base)
    for script in (NOTIFICATION_SPY, CSP_SPY, *init_scripts):
        await context.add_init_script(script)
    page = await context.new_page()
    await page.goto(f"{desk.base}/console")
    await expect(page).to_have_url(re.compile(r"/console/login$"))
    await page.get_by_label("Email").fill(AGENT_EMAIL)
    await page.get_by_label("Password").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.locator("body")).to_have_attribute("data-connection", "open")
    await expect(page.locator("#me-name")).to_have_text(AGENT_NAME)
    toggle = page.locator("#presence")
    if await toggle.get_attribute("data-presence") != presence:
        await toggle.click()
    await expect(toggle).to_have_attribute("data-presence", presence)
    return page


def queue_item(page: Page, text: str) -> Any:
    return page.locator("#list .item", has_text=text)


async def open_from_queue(page: Page, text: str) -> None:
    await queue_item(page, text).click()
    await expect(page.locator("#thread")).to_be_visible()


async def claim_and_reply(page: Page, text: str) -> None:
    await page.locator("#act-claim").click()
    await expect(page.locator("#thread-meta .assignee")).to_have_text(f"Assigned to {AGENT_NAME}")
    await page.keyboard.press("r")
    await page.locator("#composer-text").type(text[:3])
    await page.locator("#composer-text").fill(text)
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-agent .msg-text").last).to_have_text(text)
    await expect(page.locator("#composer-text")).to_have_value("")


async def add_note(page: Page, text: str) -> None:
    await page.locator("#composer-text").press("Escape")
    await page.keyboard.press("n")
    await expect(page.locator("#composer")).to_have_attribute("data-mode", "note")
    await page.locator("#composer-text").fill(text)
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-note .msg-text").last).to_have_text(text)
    await page.locator("#mode-reply").click()


async def hand_back(page: Page) -> None:
    await page.locator("#act-handback").click()
    await expect(page.locator("#thread-meta .mode-tag")).to_have_text("with the bot")


async def notified(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.__notified || []")
    return result


# --------------------------------------------------------------- the customer
async def customer_widget(browser: Browser, desk: Desk) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1024, "height": 768})
    page = await context.new_page()
    await page.goto(desk.shop_url)
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    await page.locator(".hl-launcher").click()
    await expect(page.locator(".hl-panel")).to_be_visible()
    return context, page


async def say(page: Page, text: str) -> None:
    box = page.locator(".hl-input")
    await box.fill(text)
    await box.press("Enter")


def widget_last(page: Page) -> Any:
    return expect(page.locator(".hl-bot[data-id] .hl-text").last)


# ------------------------------------------------------------------ journeys
async def test_widget_round_trip(browser: Browser, desk: Desk) -> None:
    agent = await agent_console(browser, desk)
    _context, customer = await customer_widget(browser, desk)
    await say(customer, "/check_order")
    await widget_last(customer).to_have_text(ASK)
    await say(customer, "/human_handoff")
    await widget_last(customer).to_have_text(HANDOFF)

    # (2) live in the queue, with its reason, and a browser notification
    item = agent.locator("#list .item[data-channel='widget']").first
    await expect(item).to_be_visible()
    await expect(item.locator(".reason")).to_have_count(1)
    await expect(item.locator("[data-wait]")).to_have_text(re.compile(r"\d+s|\d+m"))
    assert any("New handoff" in n["title"] for n in await notified(agent))
    await agent.screenshot(path=ARTIFACTS / "widget-queue.png")

    # (3) claim and reply, keyboard only: j/k, Enter, r, Ctrl+Enter
    await agent.locator("#list").focus()
    await agent.keyboard.press("j")
    await agent.keyboard.press("k")
    await agent.keyboard.press("Enter")
    await expect(agent.locator("#transcript .msg-customer").first).to_have_text(
        re.compile("/check_order")
    )
    await expect(agent.locator("#transcript .badge-flow").first).to_be_visible()
    await expect(agent.locator("#transcript .badge-handoff")).to_have_count(1)
    await claim_and_reply(agent, "Hi, I am Ana. Let me look at your order.")

    # (4) the customer sees it live, under the agent's name, and the agent's typing
    await widget_last(customer).to_have_text("Hi, I am Ana. Let me look at your order.")
    await expect(customer.locator(".hl-author").last).to_have_text(AGENT_NAME)
    await agent.locator("#composer-text").type("One mo")
    await expect(customer.locator(".hl-typing")).to_be_visible()
    # typing frames go at most every 3 s: type slowly enough to send one
    await customer.locator(".hl-input").type("Thanks", delay=700)  # and the other way round
    await expect(agent.locator("#customer-typing")).to_be_visible()
    await customer.locator(".hl-input").fill("")

    # (5) a note, then a reply; the customer gets the reply and never the note
    await add_note(agent, "Customer seems upset; offer a voucher.")
    await agent.locator("#composer-text").fill("Found it: it ships today.")
    await agent.locator("#send").click()
    await widget_last(customer).to_have_text("Found it: it ships today.")
    assert "Customer seems upset" not in " ".join(
        await customer.locator(".hl-msg .hl-text").all_text_contents()
    )
    await say(customer, "Thanks!")
    await expect(agent.locator(".msg-customer .msg-text").last).to_have_text("Thanks!")
    await agent.screenshot(path=ARTIFACTS / "widget-conversation.png")
    await customer.screenshot(path=ARTIFACTS / "widget-customer.png")

    # (6) hand back: the next message is answered by a flow again
    await hand_back(agent)
    await say(customer, "/check_order")
    await widget_last(customer).to_have_text(ASK)
    await expect(agent.locator(".msg-bot .msg-text").last).to_have_text(ASK)
    await expect(agent.locator(".msg-bot .badge").last).to_have_text("flow")
    await agent.screenshot(path=ARTIFACTS / "widget-handed-back.png")
    await agent.context.close()
    await _context.close()


async def test_slack_round_trip(browser: Browser, desk: Desk) -> None:
    agent = await agent_console(browser, desk)
    await desk.slack_event(dm("/human_handoff", "1700000100.000100", "Ev0CONSOLE01"))
    await desk.slack.wait_for("chat.postMessage", text=HANDOFF)

    await open_from_queue(agent, SLACK_CUSTOMER)
    await expect(agent.locator("#details")).to_contain_text("slack")
    await claim_and_reply(agent, "Hello from the console.")
    posted = await desk.slack.wait_for("chat.postMessage", text="Hello from the console.")
    assert posted[0].params.get("username") == AGENT_NAME

    await add_note(agent, "Slack note, internal.")
    await agent.locator("#composer-text").fill("Anything else?")
    await agent.locator("#send").click()
    await desk.slack.wait_for("chat.postMessage", text="Anything else?")
    assert not [c for c in desk.slack.calls if "Slack note" in str(c.params.get("text"))]

    await desk.slack_event(dm("no thanks", "1700000101.000100", "Ev0CONSOLE02"))
    await expect(agent.locator(".msg-customer .msg-text").last).to_have_text("no thanks")
    await hand_back(agent)
    await desk.slack_event(dm("/check_order", "1700000102.000100", "Ev0CONSOLE03"))
    await desk.slack.wait_for("chat.postMessage", text=ASK)
    await expect(agent.locator(".msg-bot .msg-text").last).to_have_text(ASK)
    await expect(agent.locator("[data-count='mine']")).to_have_text("")
    await agent.screenshot(path=ARTIFACTS / "slack-conversation.png")
    await agent.context.close()


async def test_customer_markup_is_text_in_the_console(browser: Browser, desk: Desk) -> None:
    agent = await agent_console(browser, desk)
    context, customer = await customer_widget(browser, desk)
    for payload in XSS:
        await say(customer, payload)
    await say(customer, "/human_handoff")
    await widget_last(customer).to_have_text(HANDOFF)
    await agent.locator("#search").fill("onerror")
    await expect(agent.locator("#list .item")).to_have_count(1)  # found by message text
    await agent.locator("#list .item").click()
    await expect(agent.locator(".msg-customer .msg-text")).to_have_text([*XSS, "/human_handoff"])
    markup = await agent.evaluate(
        "document.querySelectorAll('#list img, #list script, #transcript img,"
        " #transcript script').length"
    )
    assert markup == 0
    assert await agent.evaluate("typeof window.__xss") == "undefined"
    await agent.screenshot(path=ARTIFACTS / "xss-as-text.png")

    # a canned response, picked by typing "/" + its shortcut, filled by the render endpoint
    created = await agent.evaluate(CREATE_CANNED)
    assert created == 201
    await agent.locator("#list").focus()
    await agent.keyboard.press("r")
    await agent.keyboard.type("/hel")
    await expect(agent.locator("#canned .canned-item")).to_have_count(1)
    await agent.screenshot(path=ARTIFACTS / "canned-picker.png")
    await agent.keyboard.press("Enter")
    await expect(agent.locator("#composer-text")).to_have_value(
        re.compile(r"^Hi .+, how can I help\?$")
    )
    await agent.context.close()
    await context.close()


async def test_a_restarting_server_is_reconnected_no_sooner_than_its_hint(
    browser: Browser, desk: Desk
) -> None:
    agent = await agent_console(browser, desk, init_scripts=(SOCKET_CLOCK,))
    (console,) = [c for c in desk.app[CHANNELS] if c.name == "console"]
    await console.close_sockets()  # what a draining server does: hint, then 1012
    await expect(agent.locator("#connection")).to_have_text("Reconnecting…")
    await expect(agent.locator("body")).to_have_attribute("data-connection", "open")
    sockets = await agent.evaluate("window.__sockets")
    assert len(sockets) == 2
    closed, reopened = sockets
    assert closed["code"] == 1012
    # The hint (1000 ms), not the first backoff (250-500 ms): a lower bound only.
    assert reopened["opened"] - closed["closed"] >= RECONNECT_AFTER_MS
    await agent.context.close()


async def test_admin_stats(browser: Browser, desk: Desk) -> None:
    agent = await agent_console(browser, desk)
    await agent.locator("#nav-admin").click()
    await expect(agent.locator("#stats .card")).not_to_have_count(0)
    await expect(agent.locator("#stats")).to_contain_text("Containment")
    # admins manage the team from here
    await agent.locator("#agent-name").fill("Bo <b>Agent</b>")
    await agent.locator("#agent-email").fill("bo@example.com")
    await agent.locator("#agent-password").fill("a long enough password")
    await agent.locator("#agent-form button[type=submit]").click()
    row = agent.locator("#agents tr", has_text="bo@example.com")
    await expect(row.locator("td").first).to_have_text("Bo <b>Agent</b>")  # as text
    await row.locator(".agent-toggle").click()
    await expect(row).to_contain_text("disabled")
    await agent.screenshot(path=ARTIFACTS / "admin-stats.png")
    await agent.keyboard.press("Escape")
    await expect(agent.locator("#inbox")).to_be_visible()
    # The login page, the console and the stats bars all work under the CSP.
    assert await agent.evaluate("localStorage.getItem('csp-violations')") is None
    await agent.context.close()


async def test_email_round_trip(browser: Browser, mail_desk: MailDesk) -> None:
    desk, customer = mail_desk, "carol@example.com"
    agent = await agent_console(browser, desk)
    name = "<img src=x onerror=window.__xss=1>"  # no inner quotes: a quoted display name
    first = mail("/human_handoff", sender=f'"{name}" <{customer}>', subject=XSS[0])
    await asyncio.to_thread(desk.dovecot.append, desk.mailbox, first)
    await eventually(lambda: [m for m in desk.sink.to(customer) if HANDOFF in text_of(m)])

    item = agent.locator("#list .item[data-channel='email']")
    await expect(item.locator(".item-name")).to_have_text(name)  # the From name, as text
    await expect(item.locator(".item-subject")).to_have_text(XSS[0])  # the subject, as text
    await item.click()
    await expect(agent.locator("#thread-meta .subject")).to_have_text(XSS[0])
    await expect(agent.locator("#details")).to_contain_text(customer)
    await claim_and_reply(agent, "Hello Carol, Ana here.")
    answer = await eventually(
        lambda: [m for m in desk.sink.to(customer) if "Hello Carol" in text_of(m)]
    )
    assert AGENT_NAME in str(answer[0]["From"])
    await add_note(agent, "Email note, internal.")
    await agent.locator("#composer-text").fill("Is it solved?")
    await agent.locator("#send").click()
    await eventually(lambda: [m for m in desk.sink.to(customer) if "Is it solved" in text_of(m)])
    assert not [m for m in desk.sink.handler.received if "Email note" in text_of(m)]

    await asyncio.to_thread(
        desk.dovecot.append, desk.mailbox, mail("Yes, thanks", sender=customer, reply_to=answer[0])
    )
    await expect(agent.locator(".msg-customer .msg-text").last).to_contain_text("Yes, thanks")
    await hand_back(agent)
    again = mail("/check_order", sender=customer, reply_to=answer[0])
    await asyncio.to_thread(desk.dovecot.append, desk.mailbox, again)
    await eventually(lambda: [m for m in desk.sink.to(customer) if ASK in text_of(m)])
    await expect(agent.locator(".msg-bot .msg-text").last).to_have_text(ASK)
    assert await agent.evaluate("document.querySelectorAll('#list img, #thread img').length") == 0
    assert await agent.evaluate("typeof window.__xss") == "undefined"
    await agent.screenshot(path=ARTIFACTS / "email-conversation.png")
    await agent.context.close()


async def test_nobody_online_the_customer_leaves_an_email(
    browser: Browser, mail_desk: MailDesk
) -> None:
    desk, address = mail_desk, "dana@example.com"
    agent = await agent_console(browser, desk, presence="away")
    url = f"{desk.base}/webhooks/rest/webhook"
    async with aiohttp.ClientSession() as http:

        async def rest(text: str) -> list[str]:
            async with http.post(url, json={"sender": "dana", "message": text}) as response:
                return [m["text"] for m in await response.json()]

        assert await rest("/human_handoff") == [ASK_EMAIL]
        assert await rest(address) == [EMAIL_SAVED.format(address), ANYTHING_ELSE]

    item = agent.locator("#list .item[data-channel='rest']")
    await expect(item.locator(".followup-tag")).to_have_text("waiting for email follow-up")
    await item.click()
    await expect(agent.locator("#thread-meta .followup-tag")).to_be_visible()
    await expect(agent.locator("#facts")).to_contain_text(address)
    await agent.screenshot(path=ARTIFACTS / "email-followup.png")
    # The agent's reply goes out by email to the address the customer left.
    await claim_and_reply(agent, "Hello Dana, Ana here.")
    answer = await eventually(
        lambda: [m for m in desk.sink.to(address) if "Hello Dana" in text_of(m)]
    )
    assert AGENT_NAME in str(answer[0]["From"])
    assert answer[0]["Subject"] == "Your question to our support team"

    # On the email channel the sender's address is the follow-up: no question.
    erin = "erin@example.com"
    await asyncio.to_thread(desk.dovecot.append, desk.mailbox, mail("/human_handoff", sender=erin))
    await eventually(lambda: [m for m in desk.sink.to(erin) if EMAIL_LATER in text_of(m)])
    tag = agent.locator("#list .item[data-channel='email'] .followup-tag")
    await expect(tag).to_have_attribute("data-followup", erin)
    await agent.context.close()
