"""The widget in a real browser (Debian Chromium driven by Playwright), on SQLite.

One app and one browser serve the whole module; every test gets a fresh
browser context, so a fresh visitor. A shop page on another origin
(``http://localhost:PORT``) embeds the widget with one script tag pointing at
the bot (``http://127.0.0.1:PORT``) through a TCP proxy that a test can cut.
Screenshots go to ``var/test-artifacts/widget/``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect

from bot.bus import conversation_topic
from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from connectors.widget.config import DAYS
from connectors.widget.identity import sign
from tests.connectors.widget.support import SECRET, chromium, write_config

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed"),
]
ARTIFACTS = Path(__file__).parents[3] / "var" / "test-artifacts" / "widget"
ASK = "What is your order number?"
CONFIRM = "Shall I go ahead with HL-12345?"
DONE = "Order HL-12345 is shipped."
ELSE = "Is there anything else I can help you with?"
OFFLINE = "We are closed; a person answers tomorrow."
expect.set_options(timeout=20_000)  # a hang guard for a busy machine, not a timing check


class Proxy:
    """A TCP proxy in front of the bot that can drop every connection and hold new ones."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._open = asyncio.Event()
        self._open.set()
        self._links: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop(self) -> None:
        """Cut every open connection; new ones wait until :meth:`restore`."""
        self._open.clear()
        links = list(self._links)
        for link in links:
            link.cancel()
        await asyncio.gather(*links, return_exceptions=True)

    def restore(self) -> None:
        self._open.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = asyncio.current_task()
        assert link is not None
        self._links.add(link)  # type: ignore[arg-type]
        try:
            await self._open.wait()
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self._links.discard(link)  # type: ignore[arg-type]
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


class Shop:
    """The shop page (its own origin) and the bot behind the proxy."""

    def __init__(self, runtime: Runtime, proxy: Proxy, page_url: str) -> None:
        self.runtime = runtime
        self.proxy = proxy
        self.page_url = page_url

    async def conversation_id(self, page: Page) -> int:
        visitor = await page.evaluate("window.HelplineWidget.visitor")
        conversation = await self.runtime.store.conversation("widget", visitor, visitor)
        return conversation.id

    async def push(self, page: Page, text: str, agent: str | None = None) -> None:
        metadata = {"agent": {"name": agent}} if agent else {}
        await self.runtime.dispatcher.push(
            await self.conversation_id(page), {"text": text, "metadata": metadata}
        )


def _shop_page(widget_base: str, user: str | None = None) -> str:
    signed_in = f"data-user-id='{user}' data-user-hash='{sign(SECRET, user)}' " if user else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Shop</title><style>button { background: red !important; }</style></head>"
        "<body><h1>Northwind shop</h1><p>Browse our goods.</p>"
        f"<script src='{widget_base}/widget.js' data-title='Shop support' "
        f"data-color='#0f766e' data-position='left' {signed_in}"
        "data-greeting='Hi! Ask me about **orders**.'></script></body></html>"
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    folder = tmp_path_factory.mktemp("widget-browser")
    base: dict[str, str] = {}

    async def index(request: web.Request) -> web.Response:
        html = _shop_page(base["widget"], request.query.get("user"))
        return web.Response(text=html, content_type="text/html")

    page_app = web.Application()
    page_app.router.add_get("/", index)
    page_runner, page_port = await _serve(page_app)
    closed_day = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
    config = write_config(
        folder,
        f"sqlite+aiosqlite:///{folder / 'helpline.db'}",
        {
            "allowed_origins": [f"http://localhost:{page_port}"],
            "identity_secret": SECRET,
            "business_hours": {"timezone": "UTC", "open": [f"{closed_day} 09:00-10:00"]},
            "offline_message": OFFLINE,
        },
    )
    runtime = Runtime(config, nlu=NoNLU())
    bot_runner, bot_port = await _serve(create_app(config, runtime))
    proxy = Proxy(bot_port)
    await proxy.start()
    base["widget"] = f"http://127.0.0.1:{proxy.port}"
    try:
        yield Shop(runtime, proxy, f"http://localhost:{page_port}/")
    finally:
        await proxy.stop()
        await bot_runner.cleanup()
        await page_runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium(ARTIFACTS) as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1024, "height": 768})
    yield ctx
    await ctx.close()


async def open_widget(context: BrowserContext, shop: Shop, user: str | None = None) -> Page:
    page = await context.new_page()
    await page.goto(shop.page_url + (f"?user={user}" if user else ""))
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    await page.locator(".hl-launcher").click()
    await expect(page.locator(".hl-panel")).to_be_visible()
    return page


async def say(page: Page, text: str) -> None:
    box = page.locator(".hl-input")
    await box.fill(text)
    await box.press("Enter")


def bot_says(page: Page) -> Any:
    return expect(page.locator(".hl-bot[data-id] .hl-text").last)


async def texts(page: Page) -> list[str]:
    return await page.locator(".hl-msg[data-id] .hl-text").all_text_contents()


async def active(page: Page) -> str:
    return await page.evaluate(
        "(() => { const a = document.activeElement.shadowRoot?.activeElement;"
        " return a ? a.className : document.activeElement.tagName })()"
    )


async def test_whole_flow_by_typing_and_clicking(shop: Shop, context: BrowserContext) -> None:
    page = await context.new_page()
    await page.goto(shop.page_url)
    launcher = page.locator(".hl-launcher")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await expect(launcher).to_have_accessible_name("Open chat: Shop support")
    await launcher.focus()
    await page.keyboard.press("Enter")  # keyboard only
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    assert await active(page) == "hl-input"
    await expect(page.get_by_role("dialog", name="Shop support")).to_be_visible()
    await expect(page.locator(".hl-offline")).to_have_text(OFFLINE)
    await expect(page.locator(".hl-bot .hl-text strong").first).to_have_text("orders")
    assert await page.locator(".hl-log").get_attribute("aria-live") == "polite"

    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    await say(page, "HL-12345")
    await bot_says(page).to_have_text(CONFIRM)
    await page.get_by_role("button", name="Yes").click()
    await bot_says(page).to_have_text(ELSE)
    assert await texts(page) == ["/check_order", ASK, "HL-12345", CONFIRM, "Yes", DONE, ELSE]
    await expect(page.locator(".hl-user[data-state='sent']")).to_have_count(3)
    await expect(page.locator(".hl-msg[data-id] time")).to_have_count(7)
    assert await page.get_by_role("button", name="No").is_disabled()
    colour = await launcher.evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(15, 118, 110)"  # data-color, untouched by the page's CSS
    assert (await launcher.bounding_box() or {})["x"] < 100  # data-position='left'
    await page.screenshot(path=ARTIFACTS / "flow-desktop.png")

    await page.keyboard.press("Escape")
    await expect(page.locator(".hl-panel")).to_be_hidden()
    assert await active(page) == "hl-launcher hl-left"
    await page.set_viewport_size({"width": 375, "height": 667})
    await launcher.click()
    box = await page.locator(".hl-panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
    await page.screenshot(path=ARTIFACTS / "flow-phone.png")


async def test_history_survives_reload_and_shows_in_a_second_tab(
    shop: Shop, context: BrowserContext
) -> None:
    page = await open_widget(context, shop)
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    await say(page, "HL-12345")
    await page.get_by_role("button", name="Yes").click()
    await bot_says(page).to_have_text(ELSE)
    history = ["/check_order", ASK, "HL-12345", CONFIRM, "Yes", DONE, ELSE]

    await page.reload()
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    await page.locator(".hl-launcher").click()
    await expect(page.locator(".hl-msg[data-id]")).to_have_count(7)
    assert await texts(page) == history

    tab = await open_widget(context, shop)
    await expect(tab.locator(".hl-msg[data-id]")).to_have_count(7)
    assert await texts(tab) == history
    await say(tab, "/check_order")
    await bot_says(page).to_have_text(ASK)  # the first tab sees the second's turn live
    await expect(page.locator(".hl-user .hl-text").last).to_have_text("/check_order")
    await tab.screenshot(path=ARTIFACTS / "second-tab.png")


async def test_dropped_socket_loses_and_duplicates_nothing(
    shop: Shop, context: BrowserContext
) -> None:
    page = await open_widget(context, shop)
    frames: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))),
    )
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)

    await shop.proxy.drop()
    await expect(page.locator(".hl-connection")).to_have_text("Reconnecting…")
    await say(page, "HL-12345")  # queued while the socket is down
    queued = page.locator(".hl-user").last
    await expect(queued).to_have_attribute("data-state", "pending")
    await shop.push(page, "Ana here, I can help too.", agent="Ana")  # delivered while away
    await page.screenshot(path=ARTIFACTS / "offline-queued.png")
    shop.proxy.restore()

    await expect(queued).to_have_attribute("data-state", "sent")
    await bot_says(page).to_have_text(CONFIRM)
    await expect(page.locator(".hl-connection")).to_be_hidden()
    await expect(page.locator(".hl-system")).to_have_text(["Ana joined"])
    await expect(page.locator(".hl-author")).to_have_text(["Ana"])
    joined = page.locator(".hl-system + .hl-msg .hl-author")  # the note sits above her message
    await expect(joined).to_have_text("Ana")
    assert await texts(page) == [
        "/check_order",
        ASK,
        "Ana here, I can help too.",
        "HL-12345",
        CONFIRM,
    ]
    await expect(page.locator(".hl-bot:not([data-id])")).to_have_count(1)  # the greeting
    ids = await page.locator(".hl-msg[data-id]").evaluate_all("ns => ns.map(n => n.dataset.id)")
    assert len(ids) == len(set(ids)) == 5
    client_id = await queued.get_attribute("data-client-id")
    acks = [f for f in frames if f["type"] == "ack" and f["client_id"] == client_id]
    assert len(acks) == 1
    assert acks[0]["duplicate"] is False
    await page.screenshot(path=ARTIFACTS / "after-reconnect.png")


async def test_streamed_answer_grows_then_is_replaced(shop: Shop, context: BrowserContext) -> None:
    page = await open_widget(context, shop)
    visitor = await page.evaluate("window.HelplineWidget.visitor")
    topic = conversation_topic("widget", visitor)
    bus = shop.runtime.bus
    bus.publish(topic, {"type": "typing", "who": "bot"})
    await expect(page.locator(".hl-typing")).to_be_visible()
    draft = page.locator(".hl-draft .hl-text")
    shown = ""
    for token in ("Our ", "store ", "opens ", "at 9."):
        bus.publish(topic, {"type": "token", "text": token})
        shown += token
        await expect(draft).to_have_text(shown)
        await expect(page.locator(".hl-typing")).to_be_hidden()
    await page.screenshot(path=ARTIFACTS / "streaming.png")
    await shop.push(page, "Our store opens at **9 am**.")
    await expect(page.locator(".hl-draft")).to_have_count(0)
    await bot_says(page).to_have_text("Our store opens at 9 am.")
    await expect(page.locator(".hl-bot[data-id] strong")).to_have_text("9 am")


XSS = ["<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">']


async def test_markup_is_shown_as_text_and_never_runs(shop: Shop, context: BrowserContext) -> None:
    page = await open_widget(context, shop)
    for payload in XSS:
        await say(page, payload)
        await expect(page.locator(".hl-user[data-state='sent'] .hl-text").last).to_have_text(
            payload
        )
    await shop.push(
        page,
        XSS[1] + "\n[click](javascript:window.__xss=1) **bold** *fine* print_this_name "
        "[docs](https://example.com/x)",
        agent="<b>Eve</b>",
    )
    last = page.locator(".hl-bot[data-id]").last
    await expect(last.locator(".hl-text")).to_have_text(
        XSS[1] + "click bold fine print_this_name docs"
    )
    await expect(last.locator("em")).to_have_text(["fine"])
    await expect(last.locator(".hl-author")).to_have_text("<b>Eve</b>")
    await expect(last.locator("a")).to_have_count(1)
    assert await last.locator("a").get_attribute("href") == "https://example.com/x"
    assert await last.locator("a").get_attribute("rel") == "noopener noreferrer nofollow"
    assert await last.locator("br").count() == 1
    markup = await page.evaluate(
        "document.querySelector('#helpline-widget').shadowRoot"
        ".querySelectorAll('.hl-log img, .hl-log script, .hl-log b').length"
    )
    assert markup == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"
    await page.screenshot(path=ARTIFACTS / "xss-as-text.png")


async def stored_texts(shop: Shop, key: str) -> list[str]:
    conversation = await shop.runtime.store.conversation("widget", key, key)
    return [m.text for m in await shop.runtime.store.transcript(conversation.id)]


async def test_switching_users_never_shows_another_users_history(
    shop: Shop, context: BrowserContext
) -> None:
    page = await open_widget(context, shop, user="42")
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    await page.close()

    page = await open_widget(context, shop, user="43")  # same browser, another user
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    await expect(page.locator(".hl-msg[data-id]")).to_have_count(2)
    assert await texts(page) == ["/check_order", ASK]
    assert await stored_texts(shop, "user:42") == ["/check_order", ASK]
    assert await stored_texts(shop, "user:43") == ["/check_order", ASK]
    await page.screenshot(path=ARTIFACTS / "user-43.png")
    await page.close()

    page = await open_widget(context, shop, user="42")  # 42 again: their history only
    await expect(page.locator(".hl-msg[data-id]")).to_have_count(2)
    assert await texts(page) == ["/check_order", ASK]
    await page.close()
    page = await open_widget(context, shop)  # signed out: a fresh anonymous visitor
    await expect(page.locator(".hl-msg[data-id]")).to_have_count(0)


async def test_reset_at_sign_out_starts_a_fresh_anonymous_conversation(
    shop: Shop, context: BrowserContext
) -> None:
    page = await open_widget(context, shop)
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    before = await page.evaluate("window.HelplineWidget.visitor")
    await page.evaluate("window.HelplineWidget.reset()")
    await expect(page.locator(".hl-msg[data-id]")).to_have_count(0)
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    after = await page.evaluate("window.HelplineWidget.visitor")
    assert after != before
    stored = await page.evaluate("JSON.stringify(Object.keys(localStorage).sort())")
    assert "secret" in stored  # the new visitor's, issued at its first connect
    await page.reload()
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    await page.locator(".hl-launcher").click()
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    assert await texts(page) == ["/check_order", ASK]  # nothing of the first conversation
    assert await page.evaluate("window.HelplineWidget.visitor") == after


async def test_a_message_refused_for_good_is_never_sent_again(
    shop: Shop, context: BrowserContext
) -> None:
    page = await context.new_page()
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    await page.goto(shop.page_url)
    await page.locator(".hl-launcher").click()
    # A lone surrogate, as a broken paste leaves it; JSON.stringify escapes it.
    await page.locator(".hl-input").evaluate("(box) => { box.value = 'order \\ud800 please'; }")
    await page.locator(".hl-input").press("Enter")
    refused = page.locator(".hl-user").last
    await expect(refused).to_have_attribute("data-state", "failed")
    await expect(refused.locator(".hl-error")).to_contain_text("Not sent:")
    client_id = await refused.get_attribute("data-client-id")
    assert client_id
    refused = page.locator(f".hl-user[data-client-id='{client_id}']")

    await shop.proxy.drop()  # a reconnect flushes whatever is still pending
    await expect(page.locator("#helpline-widget")).not_to_have_attribute("data-connection", "open")
    shop.proxy.restore()
    await expect(page.locator("#helpline-widget")).to_have_attribute("data-connection", "open")
    await say(page, "/check_order")
    await bot_says(page).to_have_text(ASK)
    assert sum(client_id in str(frame) for frame in sent) == 1
    await expect(refused).to_have_attribute("data-state", "failed")
