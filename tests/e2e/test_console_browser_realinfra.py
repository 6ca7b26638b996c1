"""The console in a real browser (Debian's chromium driven by Playwright) against the five
services and the console serving real HTTP on free ports, on the real servers: an agent
decides an escalated dispute, a buyer pays by card and confirms receipt, a bad card field
shows the API's field error. Each page's screenshot is written (see SCREENSHOTS)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from services.console.app import build as build_console
from services.console.settings import ConsoleSettings
from tests.e2e.test_disputes_realinfra import answer, open_dispute, shipped_trade
from tests.support.platform import Platform, eventually
from tests.support.trade import CARD_APPROVED, Trade

pytestmark = pytest.mark.realinfra

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
# Where the screenshots go: .run/ (ignored by git) unless CONSOLE_SCREENSHOTS=docs/screenshots
# refreshes the committed ones the README shows, so a test run leaves the work tree clean.
SCREENSHOTS = REPO / os.environ.get("CONSOLE_SCREENSHOTS", ".run/screenshots")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UI_TIMEOUT_MS = 30_000


def photo_png(width: int = 160, height: int = 100) -> str:
    """A real PNG (rust-brown stripes), base64, so the preview shows an image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes((150, 75, 0) if (x + y) // 10 % 2 else (200, 200, 190))
                                        for x in range(width)) for y in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(app, *, lifespan: str) -> tuple[uvicorn.Server, asyncio.Task, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan,
                                           log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())

    async def started() -> None:
        assert server.started
    await eventually(started, timeout=15)
    return server, task, port


@pytest.fixture(scope="session")
async def console_url(platform: Platform) -> AsyncIterator[str]:
    """Each service's HTTP API on a port of its own (the platform already started them, so
    uvicorn runs no lifespan), and the console pointing at them."""
    servers, urls = [], {}
    for name, runtime in platform.runtimes.items():
        server, task, port = await serve(runtime.http, lifespan="off")
        servers.append((server, task))
        urls[f"{name}_url"] = f"http://127.0.0.1:{port}"
    console = build_console(ConsoleSettings(escrow_env="development", **urls))
    server, task, port = await serve(console, lifespan="on")
    servers.append((server, task))
    yield f"http://127.0.0.1:{port}"
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*(task for _, task in servers))


@pytest.fixture(scope="session")
async def browser(tmp_path_factory) -> AsyncIterator:
    if not shutil.which(CHROMIUM):
        message = f"no chromium at {CHROMIUM}: `make browser` installs Debian's package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.async_api import async_playwright
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        yield context
        await context.close()


async def signed_in_page(browser, console_url: str, role: str, party_id: str):
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(console_url + "/#/sign-in")
    await page.get_by_label("Role").select_option(role)
    await page.get_by_label("Party id").fill(party_id)
    await page.get_by_role("button", name="Sign in as this party").click()
    await page.locator("#who").get_by_text(party_id).wait_for()
    page.problems = problems
    return page


async def shot(page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


async def escalated_trade(platform: Platform) -> Trade:
    trade = await shipped_trade(platform)
    await open_dispute(trade, "not_as_described", "full_refund", evidence=[
        {"kind": "attachment", "filename": "rust.png", "content_type": "image/png",
         "data_base64": photo_png()}])
    await answer(trade, "reject")
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/statements", body={
        "text": "Half the boxes are rusted; photos attached to the claim."}, expect=201)
    await trade.call("dispute", "POST", f"/orders/{trade.order_id}/dispute/escalate", body={})
    return trade


async def test_an_agent_decides_an_escalated_dispute_and_the_ledger_shows_it(
        platform: Platform, console_url: str, browser):
    trade = await escalated_trade(platform)
    platform.advance(timedelta(hours=2))
    later = await escalated_trade(platform)

    page = await signed_in_page(browser, console_url, "agent", "agent-mia")
    rows = page.locator("tbody tr")
    await rows.first.wait_for()
    listed = [await rows.nth(i).locator("td").first.inner_text() for i in range(await rows.count())]
    assert listed.index(trade.order_id) < listed.index(later.order_id)  # oldest first
    await shot(page, "agent-queue")
    await page.get_by_role("link", name=trade.order_id).click()
    await page.get_by_role("heading", name="Decision").wait_for()
    image = page.locator("img[alt='Evidence rust.png']")
    await image.wait_for()
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 160
    assert "Half the boxes are rusted" in await page.locator("main").inner_text()
    await shot(page, "agent-dispute")

    await page.get_by_label("Partial refund").check()
    await page.get_by_label("Refund amount (USD)").fill(f"{trade.total}")  # more than held
    await page.get_by_label("Written reason").fill("Photos show corrosion on a third of the boxes.")
    await page.get_by_role("button", name="Decide (final)").click()
    await page.get_by_text("must be above zero and below").wait_for()
    assert (await trade.balances())["held"] == trade.total  # nothing was sent

    refund = trade.total // 3
    await page.get_by_label("Refund amount (USD)").fill(f"{refund // 100}.{refund % 100:02d}")
    await page.get_by_role("button", name="Decide (final)").click()
    await page.locator("#executed").get_by_text("Executed").wait_for()
    assert page.problems == []
    await shot(page, "agent-decision-executed")
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total - refund,
                              refunded=refund)
    assert not await page.get_by_role("button", name="Decide (final)").count()  # never twice

    await page.get_by_role("link", name="Escalated disputes").click()
    await page.get_by_role("link", name=later.order_id).wait_for()
    assert not await page.get_by_role("link", name=trade.order_id).count()


async def test_a_buyer_pays_by_card_and_confirms_receipt_a_bad_field_shows_its_error(
        platform: Platform, console_url: str, browser):
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()

    page = await signed_in_page(browser, console_url, "buyer", trade.buyer)
    await page.goto(f"{console_url}/#/trade/{trade.order_id}")
    form = page.locator("form[data-action=pay]")
    await form.get_by_label("Card number").fill(CARD_APPROVED)
    await form.get_by_label("Expiry month").fill("13")  # the API's validation names the field
    await form.get_by_label("Expiry year").fill("2031")
    await form.get_by_label("Security code").fill("123")
    await form.get_by_label("Name on the card").fill("Jane Buyer")
    await form.get_by_role("button", name="Pay by card").click()
    month = form.get_by_label("Expiry month")
    await page.wait_for_function("el => el.getAttribute('aria-invalid') === 'true'",
                                 arg=await month.element_handle())
    error = form.locator("[data-field=expiry_month] .field-error")
    assert "12" in await error.inner_text()  # pydantic: "less than or equal to 12"
    await shot(page, "trade-field-error")

    await month.fill("12")
    await form.get_by_role("button", name="Pay by card").click()
    await trade.wait_status("paid")
    await trade.ship()
    await page.reload()
    await page.get_by_role("button", name="Confirm receipt").click()
    await trade.wait_balances(paid_in=trade.total, held=0, released=trade.total, refunded=0)
    # the order closes on the escrow's settlement, a hop after the payment service's figures:
    # the page is read once, so only once the order service has closed the order
    await trade.wait_status("closed", "settled")
    await page.reload()
    await page.locator("#order-status").get_by_text("closed").wait_for()
    assert page.problems == []
    await shot(page, "trade-released")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "trade-phone", full_page=False)


async def test_a_supplier_confirms_and_proves_dispatch_by_keyboard_a_bad_tracking_number_shows_its_error(
        platform: Platform, console_url: str, browser):
    trade = Trade(platform)
    await trade.place()

    page = await signed_in_page(browser, console_url, "supplier", trade.supplier)
    await page.goto(f"{console_url}/#/trade/{trade.order_id}")
    confirm = page.locator("form[data-action=confirm]")
    await confirm.get_by_label("Shipping method").select_option("sea-freight")
    await confirm.get_by_label("Carrier").select_option("dhl")
    await confirm.get_by_role("button", name="Confirm order").click()
    await page.locator("#order-status").get_by_text("awaiting_payment").wait_for()
    await trade.payment()  # the escrow opened from the confirmation
    await trade.pay_by_card()
    await trade.wait_status("paid")

    async def awaiting_dispatch() -> None:
        shipment = (await trade.call("shipping", "GET", f"/orders/{trade.order_id}/shipment",
                                     trade.supplier)).json()
        assert shipment["status"] == "awaiting_dispatch", shipment
    await eventually(awaiting_dispatch)
    await page.reload()
    dispatch = page.locator("form[data-action=dispatch]")
    tracking = dispatch.get_by_label("Tracking number")
    await tracking.fill("NOT-A-NUMBER")
    await tracking.press("Enter")  # the keyboard submits the form
    error = dispatch.locator("[data-field=tracking_number] .field-error")
    await error.filter(has_text="tracking").wait_for()
    assert await tracking.get_attribute("aria-invalid") == "true"
    await shot(page, "trade-dispatch-error")

    await tracking.fill("1234567890")
    # the platform's clock is a test clock, not the browser's: the day it says it is today
    await dispatch.get_by_label("Ship date").fill(platform.clock.now().date().isoformat())
    await tracking.press("Enter")
    await page.get_by_text("shipped 20", exact=False).wait_for()
    assert (await trade.call("shipping", "GET", f"/orders/{trade.order_id}/shipment",
                             trade.supplier)).json()["status"] == "dispatched"
    assert page.problems == []
