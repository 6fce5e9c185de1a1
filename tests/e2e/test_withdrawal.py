"""The right of withdrawal in a real browser ("Withdraw from contract here", DESIGN section 2).

1. A buyer withdraws from a delivered shop order through the footer link: two steps (pick the
   lines, then confirm), a receipt by email, the whole payment refunded at once in localstripe,
   and staff put the returned goods back in stock from the order page.
2. A backer withdraws from an active pledge before the deadline: cancelled, never charged, the
   campaign's numbers go down and the receipt is emailed.

Every page is watched (flows.watch_context): no console errors, and unsafe requests carry a CSRF
token. Screenshots of the withdrawal pages at desktop and phone widths go to the shop tests'
directory, test-artifacts/screenshots/ (or $E2E_SCREENSHOTS), as withdraw-*.png.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TRACKING = "PN0077123456SE"
RETURNS_STREET = "Lagervägen 4"  # settings.returns_address


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shop_screenshots() -> Path:
    """The shop tests' screenshot directory (tests/e2e/test_shop.py)."""
    path = Path(os.environ.get("E2E_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- helpers ---------------------------------------------------------------------------------


def _shot(page: Page, directory: Path, name: str, device: str, problems: list[str]) -> None:
    """A full-page screenshot, withdraw-<name>-<device>.png; notes a page wider than the screen."""
    page.wait_for_function("() => [...document.images].every((img) => img.complete || img.loading === 'lazy')")
    page.screenshot(path=str(directory / f"withdraw-{name}-{device}.png"), full_page=True)
    overflow = flows.horizontal_overflow(page)
    if overflow:
        problems.append(f"{name} ({device}): {overflow}")


def _footer_withdraw(page: Page) -> None:
    """The footer link on any page, to the start of the withdrawal."""
    page.get_by_role("navigation", name="Footer").get_by_role("link", name="Withdraw from contract here").click()
    page.wait_for_url(re.compile(r"/withdraw$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Withdraw from contract here")


def _stripe_refund(live_server, refund_id: str) -> dict:
    """The refund as localstripe holds it (its Stripe-like HTTP API, with the e2e secret key)."""
    request = urllib.request.Request(  # noqa: S310 (local URL)
        f"{live_server.stripe_url}/v1/refunds/{refund_id}",
        headers={"Authorization": f"Bearer {live_server.env['STRIPE_SECRET_KEY']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _one(live_server, sql: str) -> dict:
    rows = live_server.fetch(sql)
    assert len(rows) == 1, (sql, rows)
    return rows[0]


def _wait_for_email(live_server, to: str, kind: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while not (rows := live_server.fetch(
            f"SELECT subject, text_body FROM email_message WHERE kind = '{kind}' AND recipient = '{to}'")):
        assert time.monotonic() < deadline, f"no {kind} email to {to} in the outbox"
        time.sleep(0.2)
    assert len(rows) == 1, rows
    return rows[0]


def _expect_form_refusal(watched, path: str, status: int) -> None:
    """A form answered with an error status (re-rendered with its message) makes Chromium log
    "Failed to load resource" once: expected there, so it is taken off the watch lists."""
    needle = f"status of {status} "
    found = 0
    for watch in watched.watches:
        kept = [e for e in watch.console_errors if not (needle in e and e.endswith(f"{path})"))]
        found += len(watch.console_errors) - len(kept)
        watch.console_errors[:] = kept
    assert found == 1, f"expected one {status} answer for {path}, saw {found}"


def _tab_to(page: Page, name: str, *, limit: int = 60) -> None:
    """Press Tab from the top of the page until the button called `name` has the keyboard focus."""
    page.locator("body").focus()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(name) => { const el = document.activeElement;"
                         " return !!el && el.tagName === 'BUTTON' && el.innerText.trim() === name; }", name):
            return
    raise AssertionError(f"the {name!r} button cannot be reached with the Tab key ({limit} presses)")


# ---- 1. a delivered shop order ----------------------------------------------------------------


def test_buyer_withdraws_from_a_delivered_order(watched, live_server, accounts, shop_screenshots):
    name = "Waxed canvas saddle bag"
    staff = watched.context(storage_state=accounts.staff_state, viewport=DESKTOP).new_page()
    product_id, slug = flows.create_product(staff, name=name, price="249", variants=(("Olive", 5),),
                                            summary="A waterproof saddle bag for everyday rides.")
    flows.put_product_in_shop(staff, product_id)

    # A member buys two with the good test card.
    desktop_ctx = watched.context(viewport=DESKTOP)
    page, person = flows.sign_up_verified(desktop_ctx, "Wanda Withdraw")
    page.goto(f"/shop/{slug}")
    flows.add_to_cart(page, quantity=2)
    page.locator("#cart-badge").click()
    page.wait_for_url("**/cart")
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout")
    flows.fill_new_address(page)
    flows.fill_card(page, flows.CARD_OK)
    number = flows.pay_and_wait_for_confirmation(page)
    order = _one(live_server, f"SELECT id, total, status, payment_intent_id FROM shop_order WHERE number = '{number}'")
    assert order["status"] == "paid" and order["payment_intent_id"].startswith("pi_"), order
    variant_sql = f"SELECT stock FROM product_variant WHERE product = {product_id} AND name = 'Olive'"
    assert _one(live_server, variant_sql)["stock"] == 3

    # Staff ship it (carrier and tracking), then mark it delivered: the same status form.
    staff.goto(f"/staff/orders/{number}")
    staff.get_by_label("Carrier").select_option(label="PostNord")
    staff.get_by_label("Tracking number").fill(TRACKING)
    staff.get_by_role("button", name="Mark shipped and email the customer").click()
    expect(staff.locator(".flash-success")).to_contain_text("Order marked shipped")
    expect(staff.locator(".order-head .badge")).to_have_text("Shipped")
    staff.get_by_role("button", name="Mark delivered").click()
    expect(staff.locator(".order-head .badge")).to_have_text("Delivered")
    assert staff.url.endswith(f"/staff/orders/{number}")

    # The order page offers the withdrawal while the 14 days run.
    page.goto(f"/orders/{number}")
    expect(page.locator(".order-head .badge")).to_have_text("Delivered")
    expect(page.get_by_role("link", name="Withdraw from this order")).to_have_attribute(
        "href", f"/withdraw/orders/{number}")

    # The receipt with VAT per rate, print-ready (the site's header and footer are not printed).
    layout: list[str] = []
    page.get_by_role("link", name="Receipt with VAT").click()
    page.wait_for_url(f"**/orders/{number}/receipt")
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    expect(page.locator(".receipt-seller")).to_contain_text("SE559999000001")
    expect(page.locator(".receipt-vat")).to_contain_text("25 %")
    _shot(page, shop_screenshots, "receipt", "desktop", layout)
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator(".receipt-vat")).to_be_visible()
    page.emulate_media(media="screen")

    # First on a phone (same account): the start page, step 1 and step 2, without confirming.
    phone = watched.context(storage_state=desktop_ctx.storage_state(), viewport=PHONE, is_mobile=True,
                            has_touch=True).new_page()
    phone.goto(f"/orders/{number}/receipt")
    _shot(phone, shop_screenshots, "receipt", "phone", layout)
    phone.goto(f"/orders/{number}")
    _footer_withdraw(phone)
    _shot(phone, shop_screenshots, "start", "phone", layout)
    phone.get_by_role("link", name=f"Withdraw from {number}").click()
    phone.wait_for_url(f"**/withdraw/orders/{number}")
    _shot(phone, shop_screenshots, "lines", "phone", layout)
    phone.get_by_role("button", name="Continue").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Confirm your withdrawal")
    _shot(phone, shop_screenshots, "confirm", "phone", layout)

    # Then on the desktop: the footer link, the order, the line, Continue, Confirm withdrawal.
    page.goto("/")
    _footer_withdraw(page)
    mine = page.get_by_role("region", name="Your orders")
    expect(mine).to_contain_text(name)
    _shot(page, shop_screenshots, "start", "desktop", layout)
    mine.get_by_role("link", name=f"Withdraw from {number}").click()
    page.wait_for_url(f"**/withdraw/orders/{number}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Withdraw from order {number}")
    expect(page.locator(".hint").first).to_contain_text("Your withdrawal period ends on")
    line = page.get_by_role("checkbox", name=re.compile(re.escape(name)))
    expect(line).to_be_checked()  # open lines come ticked
    _shot(page, shop_screenshots, "lines", "desktop", layout)

    # Nothing ticked: the step says so and stays; ticked again, it goes on.
    line.uncheck()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".field-error")).to_have_text("Tick at least one item to withdraw from.")
    line = page.get_by_role("checkbox", name=re.compile(re.escape(name)))
    expect(line).not_to_be_checked()
    _expect_form_refusal(watched, f"/withdraw/orders/{number}/review", 400)
    line.check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your withdrawal")
    panel = page.locator(".panel")
    expect(panel).to_contain_text(f"2 × {name}")
    total_text = re.compile(rf"{order['total'] // 100}[.,]00")
    expect(panel.locator("strong")).to_contain_text(total_text)  # the whole order, delivery included
    expect(panel).to_contain_text(RETURNS_STREET)  # shipped: where to send it back
    _shot(page, shop_screenshots, "confirm", "desktop", layout)

    # By keyboard: Tab to "Confirm withdrawal" (visibly focused) and press Enter.
    _tab_to(page, "Confirm withdrawal")
    confirm = page.get_by_role("button", name="Confirm withdrawal")
    expect(confirm).to_be_focused()
    assert confirm.evaluate("(el) => getComputedStyle(el).outlineStyle") != "none", "no visible focus on the button"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Withdrawal received")
    status = page.get_by_role("status")
    reference = re.search(r"W-[0-9A-F]{8}", status.inner_text())
    assert reference, status.inner_text()
    reference = reference.group(0)
    expect(status).to_contain_text(re.compile(r"refunded to your card\."))
    expect(status).to_contain_text(total_text)
    expect(status).to_contain_text(f"A receipt is on its way to {person.email}")
    _shot(page, shop_screenshots, "done", "desktop", layout)
    # The done page exists once (it answers the confirming POST): the phone shot is the same page
    # at the phone's width.
    page.set_viewport_size(PHONE)
    _shot(page, shop_screenshots, "done", "phone", layout)
    page.set_viewport_size(DESKTOP)

    # The receipt: in the outbox and in the dev mailbox, with the reference and the order number.
    receipt = _wait_for_email(live_server, person.email, "withdrawal_receipt")
    assert receipt["subject"] == f"Receipt: your withdrawal {reference}", receipt["subject"]
    text = flows.open_email(page, person.email, f"Receipt: your withdrawal {reference}")
    assert reference in text and number in text, text
    assert RETURNS_STREET in text, text

    # The database: one succeeded refund of the whole total, the order refunded.
    refunds = live_server.fetch(
        f"SELECT amount, status, stripe_refund_id FROM order_refund WHERE \"order\" = {order['id']}")
    assert len(refunds) == 1, refunds
    refund = refunds[0]
    assert (refund["amount"], refund["status"]) == (order["total"], "succeeded"), refund
    assert refund["stripe_refund_id"].startswith("re_"), refund
    assert _one(live_server, f"SELECT status FROM shop_order WHERE id = {order['id']}")["status"] == "refunded"
    withdrawal = _one(live_server, f"SELECT reference, amount, email FROM order_withdrawal WHERE \"order\" = {order['id']}")
    assert withdrawal == {"reference": reference, "amount": order["total"], "email": person.email}, withdrawal

    # localstripe holds the same refund, on the order's PaymentIntent.
    in_stripe = _stripe_refund(live_server, refund["stripe_refund_id"])
    assert (in_stripe["amount"], in_stripe["status"]) == (order["total"], "succeeded"), in_stripe
    assert in_stripe["payment_intent"] == order["payment_intent_id"], in_stripe

    # Shipped goods come back to stock only when staff have the parcel.
    assert _one(live_server, variant_sql)["stock"] == 3

    # The buyer's order page: the Withdrawals panel, and no second withdrawal offered.
    page.goto(f"/orders/{number}")
    withdrawals = page.get_by_role("region", name="Withdrawals")
    expect(withdrawals).to_contain_text(reference)
    expect(withdrawals).to_contain_text("refunded")
    expect(page.get_by_role("link", name="Withdraw from this order")).to_have_count(0)
    expect(withdrawals.get_by_role("button")).to_have_count(0)  # the staff button is for staff only

    # Staff: the Withdrawals panel, "Goods returned: put back in stock".
    staff.goto(f"/staff/orders/{number}")
    withdrawals = staff.get_by_role("region", name="Withdrawals")
    expect(withdrawals).to_contain_text(reference)
    expect(withdrawals).to_contain_text("goods not back yet")
    withdrawals.get_by_role("button", name="Goods returned: put back in stock").click()
    staff.wait_for_url(f"**/staff/orders/{number}")
    expect(staff.locator(".flash-success")).to_contain_text("Noted: the goods are back")
    withdrawals = staff.get_by_role("region", name="Withdrawals")
    expect(withdrawals).to_contain_text("goods returned")
    expect(withdrawals.get_by_role("button", name="Goods returned: put back in stock")).to_have_count(0)
    assert _one(live_server, variant_sql)["stock"] == 5  # 3 + the 2 units back

    watched.assert_clean()
    assert not layout, "layout problems:\n" + "\n".join(layout)


# ---- 2. an active pledge ----------------------------------------------------------------------


def test_backer_withdraws_from_an_active_pledge(watched, live_server, campaign, shop_screenshots):
    idea_id, campaign_id = campaign("Folding bike lock holster", price="39", goal_units=20, variants=("Black",))
    backer, person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Pelle Pledger")
    pledge_id = flows.start_pledge(backer, idea_id, variant="Black", quantity=2)
    flows.save_card_and_pledge(backer, flows.CARD_OK)
    campaign_sql = f"SELECT backers, pledged_units FROM campaign WHERE id = {campaign_id}"
    assert _one(live_server, campaign_sql) == {"backers": 1, "pledged_units": 2}
    assert _one(live_server, f"SELECT status FROM pledge WHERE id = {pledge_id}")["status"] == "active"

    _footer_withdraw(backer)
    pledges = backer.get_by_role("region", name="Your pledges")
    expect(pledges).to_contain_text("Folding bike lock holster")
    expect(backer.get_by_role("region", name="Your orders")).to_contain_text("None of your orders can be withdrawn from right now.")
    pledges.get_by_role("link", name="Withdraw from this pledge").click()
    backer.wait_for_url(f"**/withdraw/pledges/{pledge_id}")
    expect(backer.get_by_role("heading", level=1)).to_have_text("Confirm your withdrawal")
    expect(backer.locator(".panel")).to_contain_text("2 × Black")
    expect(backer.locator(".panel")).to_contain_text("your card is never charged")
    layout: list[str] = []
    _shot(backer, shop_screenshots, "pledge", "desktop", layout)

    backer.get_by_role("button", name="Confirm withdrawal").click()
    expect(backer.get_by_role("heading", level=1)).to_have_text("Withdrawal received")
    status = backer.get_by_role("status")
    expect(status).to_contain_text("Nothing was charged, so nothing is owed back.")
    expect(status).to_contain_text(f"A receipt is on its way to {person.email}")
    reference = re.search(r"W-[0-9A-F]{8}", status.inner_text())
    assert reference, status.inner_text()
    reference = reference.group(0)
    _shot(backer, shop_screenshots, "pledge-done", "desktop", layout)

    # Cancelled, the campaign's numbers down, never charged.
    assert _one(live_server, f"SELECT status FROM pledge WHERE id = {pledge_id}")["status"] == "cancelled"
    assert _one(live_server, campaign_sql) == {"backers": 0, "pledged_units": 0}
    assert live_server.fetch(f"SELECT id FROM charge_attempt WHERE pledge = {pledge_id}") == []
    withdrawal = _one(live_server, f"SELECT reference, amount, status FROM order_withdrawal WHERE pledge_id = {pledge_id}")
    assert withdrawal == {"reference": reference, "amount": 0, "status": "cancelled"}, withdrawal

    # The receipt (and no "pledge cancelled" email besides it).
    receipt = _wait_for_email(live_server, person.email, "withdrawal_receipt")
    assert "Receipt: your withdrawal" in receipt["subject"] and reference in receipt["subject"], receipt
    text = flows.open_email(backer, person.email, "Receipt: your withdrawal")
    assert reference in text and "Folding bike lock holster" in text, text
    assert "will not be charged" in text, text

    # The pledge is gone from the withdrawal page; My pledges and the idea page agree.
    _footer_withdraw(backer)
    expect(backer.get_by_role("region", name="Your pledges")).to_contain_text("You have no open pledges.")
    backer.goto("/me/pledges")
    expect(backer.locator(f"#pledge-{pledge_id} .badge")).to_have_text("Cancelled")
    backer.goto(f"/ideas/{idea_id}")
    expect(backer.get_by_test_id("campaign-progress").get_by_test_id("backers")).to_have_text("0")

    watched.assert_clean()
    assert not layout, "layout problems:\n" + "\n".join(layout)
