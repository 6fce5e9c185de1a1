"""The shop in a real browser: staff put a product in the shop through the editor, a visitor
finds it, fills the cart (htmx badge), logs in at checkout (the cart is kept), pays with the
fake Stripe.js card against localstripe, and follows the order until staff ship it; declined
cards, 3-D Secure, and the same checkout on a phone.

Every page of these tests is watched (flows.watch_context): no JavaScript console errors or
uncaught page errors, and every unsafe htmx/fetch request to the app carries X-CSRFToken.
Screenshots of the shop pages at desktop and phone widths go to test-artifacts/screenshots/
(or $E2E_SCREENSHOTS).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS, ROOT

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CARD_DECLINED_AT_CHARGE = "4000000000000341"  # saves fine, declined when charged
TRACKING = "PN0042913377SE"

# Elements that stick out past the right edge of the viewport (a phone page that scrolls sideways).
WIDE_ELEMENTS_JS = """(screen) => {
  const limit = screen + 1;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit && getComputedStyle(el).position !== 'fixed') {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push(`${name} right=${Math.round(r.right)}`);
    }
  }
  return out.slice(0, 6);
}"""


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staff_state(browser, live_server) -> dict:
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        flows.log_in(context.new_page(), live_server.staff_email, live_server.staff_password)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture(scope="session")
def shop_screenshots() -> Path:
    path = Path(os.environ.get("E2E_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- helpers ---------------------------------------------------------------------------------


def _shot(page: Page, directory: Path, name: str, device: str, problems: list[str] | None = None) -> None:
    """A full-page screenshot; with `problems`, note a page wider than the screen (on a phone
    Chromium then zooms out and the layout viewport grows, so compare with the screen width)."""
    page.wait_for_function("() => [...document.images].every((img) => img.complete || img.loading === 'lazy')")
    page.screenshot(path=str(directory / f"shop-{name}-{device}.png"), full_page=True)
    if problems is not None:
        screen = (page.viewport_size or {})["width"]
        width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, window.innerWidth)")
        if width > screen + 1:
            problems.append(f"{name} ({page.url}) is {width} px wide on a {screen} px screen: "
                            f"{page.evaluate(WIDE_ELEMENTS_JS, screen)}")


# Address inputs narrower than this are squeezed beside the floated legend (one letter per line).
SQUEEZED_JS = """() => [...document.querySelectorAll(
    '.checkout-address input:not([type=hidden]):not([type=checkbox]):not([type=radio]), .checkout-address select')]
  .filter((el) => el.offsetParent !== null && el.getBoundingClientRect().width < 120)
  .map((el) => `${el.name}: ${Math.round(el.getBoundingClientRect().width)} px wide`)"""


def _check_checkout_layout(page: Page, device: str, problems: list[str]) -> None:
    squeezed = page.evaluate(SQUEEZED_JS)
    if squeezed:
        problems.append(f"checkout ({device}): address fields squeezed: {', '.join(squeezed)}")


def _member(live_server, email: str) -> dict:
    rows = live_server.fetch(f"SELECT id FROM member WHERE email = '{email}'")
    assert len(rows) == 1, rows
    return rows[0]


def _orders(live_server, member_id: int) -> list[dict]:
    return live_server.fetch(
        f"SELECT id, number, status, total FROM shop_order WHERE member = {member_id} AND kind = 'shop' ORDER BY id"
    )


def _variant(live_server, product_id: int, name: str) -> dict:
    rows = live_server.fetch(
        f"SELECT id, stock, sold FROM product_variant WHERE product = {product_id} AND name = '{name}'"
    )
    assert len(rows) == 1, rows
    return rows[0]


def _paid_events(live_server, order_id: int) -> list[dict]:
    return live_server.fetch(
        f"SELECT id FROM order_event WHERE \"order\" = {order_id} AND from_status = 'placed' AND to_status = 'paid'"
    )


def _succeeded_webhooks(live_server) -> list[dict]:
    return live_server.fetch(
        "SELECT outcome FROM stripe_event WHERE type = 'payment_intent.succeeded' ORDER BY id"
    )


def _wait_for_webhooks(live_server, count: int, timeout: float = 15) -> list[dict]:
    """Wait until `count` payment_intent.succeeded events were received (localstripe sends them ~1 s late)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _succeeded_webhooks(live_server)
        if len(rows) >= count:
            return rows
        assert time.monotonic() < deadline, f"only {len(rows)} of {count} payment_intent.succeeded webhooks arrived"
        time.sleep(0.2)


def _card_error(page: Page):
    """The error message inside the card field (next to the fake Stripe.js inputs)."""
    card_field = page.locator(".field").filter(has=page.locator("[data-card-element]"))
    return card_field.locator("[data-error-for=card]")


def _go_to_checkout(page: Page) -> None:
    page.locator("#cart-badge").click()
    page.wait_for_url("**/cart")
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout")
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")


def _buy(page: Page, slug: str, *, quantity: int, variant: str | None = None) -> None:
    """A logged-in member: product page, add to cart, open the checkout, fill a new address."""
    page.goto(f"/shop/{slug}")
    flows.add_to_cart(page, variant=variant, quantity=quantity)
    expect(page.locator("#cart-badge [data-testid=cart-count]")).to_have_text(str(quantity))
    _go_to_checkout(page)
    flows.fill_new_address(page)


# ---- 1. the acceptance journey (desktop) -----------------------------------------------------


def test_shop_journey_visitor_to_shipped_order(watched, live_server, staff_state, png_file, shop_screenshots):
    name = "Trail merino beanie"
    staff_ctx = watched.context(storage_state=staff_state, viewport=DESKTOP)
    staff = staff_ctx.new_page()

    # Staff create the product in the editor (draft), top up the stock in place, then list it.
    product_id, slug = flows.create_product(
        staff, name=name, price="249", variants=(("Forest green", 4), ("Slate grey", 3)), image=png_file,
        summary="A warm, breathable beanie for cold morning rides.",
        description="Knitted from soft merino that keeps you warm and dry.\n\nFits under a helmet.",
        details="100% merino wool\nHand wash cold",
    )
    expect(staff.locator(".page-head .badge")).to_have_text("Draft")
    stock_url = flows.arm_no_reload_marker(staff)
    slate = staff.locator("form.stock-row").filter(has_text="Slate grey")
    slate.get_by_label(re.compile(r"^Slate grey")).fill("+3")
    slate.get_by_role("button", name="Save").click()
    expect(staff.locator("#stock")).to_contain_text("Slate grey: 6 in stock.")
    flows.assert_not_reloaded(staff, stock_url)
    flows.put_product_in_shop(staff, product_id)
    assert _variant(live_server, product_id, "Slate grey")["stock"] == 6

    # The buyer has an account already, but shops as a visitor first.
    _, person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Bo Buyer")
    page = watched.context(viewport=DESKTOP).new_page()
    layout: list[str] = []  # asserted at the end, after the whole journey
    page.goto("/")
    _shot(page, shop_screenshots, "home", "desktop", layout)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Shop").click()
    page.wait_for_url("**/shop")
    expect(page.locator("#results")).to_contain_text(name)
    _shot(page, shop_screenshots, "list", "desktop", layout)
    page.get_by_label("Search the shop").fill("merino beanie")
    page.get_by_label("Search the shop").press("Enter")
    page.wait_for_url(re.compile(r"/shop\?q=merino"))
    card = page.locator("#results .product-card").filter(has_text=name)
    expect(card).to_have_count(1)
    card.get_by_role("link", name=name).click()
    page.wait_for_url(f"**/shop/{slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator(".product-price")).to_contain_text(re.compile(r"249[.,]00"))
    _shot(page, shop_screenshots, "product", "desktop", layout)

    # Add to cart: the header badge updates in place (htmx), no reload.
    assert flows.cart_badge_count(page) == ""
    url = flows.arm_no_reload_marker(page)
    flows.add_to_cart(page, variant="Slate grey", quantity=2)
    expect(page.locator("#cart-badge [data-testid=cart-count]")).to_have_text("2")
    expect(page.locator("#cart-badge")).to_have_attribute("aria-label", "Cart, 2 items")
    flows.assert_not_reloaded(page, url)

    page.locator("#cart-badge").click()
    page.wait_for_url("**/cart")
    line = page.locator("#cart .cart-line").filter(has_text=name)
    expect(line).to_contain_text("Slate grey")
    expect(page.get_by_test_id("cart-subtotal")).to_contain_text(re.compile(r"498[.,]00"))
    _shot(page, shop_screenshots, "cart", "desktop", layout)

    # Checkout sends the visitor to log in; the cart is kept.
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_role("textbox", name="Email", exact=True).fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/checkout")
    expect(page.locator(".flash-success")).to_contain_text("Welcome back")
    expect(page.locator("#cart-badge [data-testid=cart-count]")).to_have_text("2")
    summary = page.locator(".summary-lines .summary-line")
    expect(summary).to_have_count(1)
    expect(summary).to_contain_text(name)
    expect(summary).to_contain_text("Slate grey · 2 ×")
    page.goto("/cart")
    expect(page.locator("#cart .cart-line").filter(has_text=name)).to_contain_text("Slate grey")
    expect(page.locator("#cart .cart-line").filter(has_text=name).get_by_label("Quantity")).to_have_value("2")
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout")

    # A new address, express delivery and the good test card. (That the totals follow the
    # delivery choice in place is test_delivery_choice_updates_the_totals, below.)
    flows.fill_new_address(page)
    expect(page.locator("#pay-total")).to_contain_text(re.compile(r"547[.,]00"))  # 498 + standard 49
    page.get_by_role("radio", name=re.compile("Express delivery")).check()
    flows.fill_card(page, flows.CARD_OK)
    _shot(page, shop_screenshots, "checkout", "desktop", layout)
    _check_checkout_layout(page, "desktop", layout)
    number = flows.pay_and_wait_for_confirmation(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thank you")
    expect(page.locator(".lead")).to_contain_text("confirmed and paid")
    totals = page.locator(".done-grid .totals")
    expect(totals).to_contain_text(re.compile(r"Delivery\s*99[.,]00"))
    expect(totals.locator(".totals-grand")).to_contain_text(re.compile(r"597[.,]00"))  # 498 + express 99
    expect(page.locator("#cart-badge [data-testid=cart-count]")).to_have_count(0)  # the cart is empty now

    page.get_by_role("link", name="Track your order").click()
    page.wait_for_url(f"**/orders/{number}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {number}")
    expect(page.locator(".order-head .badge")).to_have_text("Paid")
    expect(page.locator(".ship-to")).to_contain_text("Drottninggatan 12")
    _shot(page, shop_screenshots, "order", "desktop", layout)

    # Staff (their own browser) ship it with PostNord and a tracking number.
    staff.goto(f"/staff/orders/{number}")
    expect(staff.locator(".order-head .badge")).to_have_text("Paid")
    staff.get_by_label("Carrier").select_option(label="PostNord")
    staff.get_by_label("Tracking number").fill(TRACKING)
    staff.get_by_role("button", name="Mark shipped and email the customer").click()
    expect(staff.get_by_role("heading", name="This form has expired")).to_have_count(0)  # CSRF token refused
    expect(staff.locator(".flash-success")).to_contain_text("Order marked shipped")
    assert staff.url.endswith(f"/staff/orders/{number}")
    expect(staff.locator(".order-head .badge")).to_have_text("Shipped")

    # The member's order page shows it, with a tracking link.
    page.reload()
    expect(page.locator(".order-head .badge")).to_have_text("Shipped")
    expect(page.locator(".tracking-number")).to_have_text(TRACKING)
    track = page.get_by_role("link", name=re.compile("Track with PostNord"))
    expect(track).to_have_attribute("href", re.compile(re.escape(TRACKING)))
    assert (track.get_attribute("href") or "").startswith("https://tracking.postnord.com/")

    # The shipped email, with the tracking number: in the outbox and in the dev mailbox.
    deadline = time.monotonic() + 10
    while not (emails := live_server.fetch(
            f"SELECT subject, text_body FROM email_message WHERE kind = 'order_shipped' AND recipient = '{person.email}'")):
        assert time.monotonic() < deadline, "no shipped email in the outbox"
        time.sleep(0.2)
    assert len(emails) == 1, emails
    assert number in emails[0]["subject"] and TRACKING in emails[0]["text_body"], emails[0]
    page.goto(f"/dev/mailbox?to={person.email}")
    page.locator("tbody tr", has_text="is on its way").get_by_role("link").click()
    expect(page.get_by_test_id("email-text")).to_contain_text(TRACKING)
    expect(page.get_by_test_id("email-text")).to_contain_text("PostNord")

    # Exactly one paid order; stock taken once.
    member_id = _member(live_server, person.email)["id"]
    assert [o["status"] for o in _orders(live_server, member_id)] == ["shipped"]
    variant = _variant(live_server, product_id, "Slate grey")
    assert (variant["stock"], variant["sold"]) == (4, 2), variant  # 6 - 2, taken once

    # htmx posts seen (add to cart, staff stock) carried the header; no console errors anywhere.
    assert "POST /cart/lines" in watched.htmx_posts()
    assert any(p.startswith(f"POST /staff/products/{product_id}/variants/") for p in watched.htmx_posts())
    watched.assert_clean()
    assert not layout, "layout problems at 1280 px:\n" + "\n".join(layout)


def test_delivery_choice_updates_the_totals(watched, staff_state):
    """The delivery options refresh the order summary and the pay button's amount in place (htmx)."""
    staff = watched.context(storage_state=staff_state, viewport=DESKTOP).new_page()
    _, slug = flows.create_product(staff, name="Chain cleaning brush", price="100", status="In the shop")
    staff.goto(f"/shop/{slug}")
    flows.add_to_cart(staff, quantity=1)
    staff.goto("/checkout")
    expect(staff.locator("#pay-total")).to_contain_text(re.compile(r"149[.,]00"))  # 100 + standard 49
    staff.get_by_role("radio", name=re.compile("Express delivery")).check()
    try:
        expect(staff.get_by_test_id("checkout-total")).to_contain_text(re.compile(r"199[.,]00"), timeout=3000)
        expect(staff.locator("#pay-total")).to_contain_text(re.compile(r"199[.,]00"), timeout=1000)
    finally:
        staff.goto("/cart")  # leave the staff account's cart empty for the other tests
        staff.locator("#cart .cart-line").get_by_role("button", name=re.compile("Remove")).click()
        expect(staff.locator("#cart")).to_contain_text("Your cart is empty")


# ---- 4. the same checkout on a phone ---------------------------------------------------------


def test_shop_checkout_on_a_phone(watched, live_server, staff_state, png_file, shop_screenshots):
    name = "Pocket bike multitool"
    staff = watched.context(storage_state=staff_state, viewport=DESKTOP).new_page()
    product_id, slug = flows.create_product(
        staff, name=name, price="189", variants=(("One size", 5),), image=png_file, status="In the shop",
        summary="Fourteen tools in a pocket-sized steel body.",
    )
    context = watched.context(viewport=PHONE, is_mobile=True, has_touch=True)
    page, _ = flows.sign_up_verified(context, "Pia Phone")
    overflow: list[str] = []

    page.goto("/")
    _shot(page, shop_screenshots, "home", "phone", overflow)
    page.goto("/shop")
    expect(page.locator("#results")).to_contain_text(name)
    _shot(page, shop_screenshots, "list", "phone", overflow)
    page.locator("#results .product-card").filter(has_text=name).get_by_role("link", name=name).click()
    page.wait_for_url(f"**/shop/{slug}")
    _shot(page, shop_screenshots, "product", "phone", overflow)

    url = flows.arm_no_reload_marker(page)
    flows.add_to_cart(page, quantity=1)
    expect(page.locator("#cart-badge [data-testid=cart-count]")).to_have_text("1")
    flows.assert_not_reloaded(page, url)
    page.locator("#cart-badge").click()
    page.wait_for_url("**/cart")
    expect(page.locator("#cart .cart-line").filter(has_text=name)).to_be_visible()
    _shot(page, shop_screenshots, "cart", "phone", overflow)
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout")
    flows.fill_new_address(page)
    flows.fill_card(page, flows.CARD_OK)
    _shot(page, shop_screenshots, "checkout", "phone", overflow)
    _check_checkout_layout(page, "phone", overflow)
    number = flows.pay_and_wait_for_confirmation(page)
    page.get_by_role("link", name="Track your order").click()
    page.wait_for_url(f"**/orders/{number}")
    expect(page.locator(".order-head .badge")).to_have_text("Paid")
    _shot(page, shop_screenshots, "order", "phone", overflow)

    assert _variant(live_server, product_id, "One size")["stock"] == 4
    assert "POST /cart/lines" in watched.htmx_posts()
    watched.assert_clean()
    assert not overflow, "layout problems on a 390 px phone:\n" + "\n".join(overflow)


# ---- 2. declined cards, then a good one --------------------------------------------------------


def test_declined_cards_then_a_good_one(watched, live_server, staff_state):
    name = "Reflective rain cape"
    staff = watched.context(storage_state=staff_state, viewport=DESKTOP).new_page()
    product_id, slug = flows.create_product(staff, name=name, price="399", variants=(("M", 5),),
                                            status="In the shop")
    page, person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Dan Declined")
    member_id = _member(live_server, person.email)["id"]
    _buy(page, slug, quantity=2)

    # 4000 0000 0000 0002 is declined when the card is saved (confirmCardSetup).
    flows.fill_card(page, flows.CARD_DECLINED)
    page.locator("#pay-button").click()
    error = _card_error(page)
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("declined", re.I))
    expect(page.locator("#pay-button")).to_be_enabled()
    assert page.url.endswith("/checkout")
    orders = _orders(live_server, member_id)
    assert [o["status"] for o in orders] == ["placed"], orders
    number = orders[0]["number"]
    expect(page.locator("#checkout-hold")).to_contain_text(number)  # placed, items held
    assert _variant(live_server, product_id, "M")["stock"] == 3

    # 4000 0000 0000 0341 saves, then is declined when charged.
    flows.fill_card(page, CARD_DECLINED_AT_CHARGE)
    with page.expect_response(re.compile(rf"/checkout/{number}/pay$")) as answer:
        page.locator("#pay-button").click()
    assert answer.value.json()["status"] == "declined"
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("declined", re.I))
    expect(page.locator("#pay-button")).to_be_enabled()
    assert page.url.endswith("/checkout")
    assert [o["status"] for o in _orders(live_server, member_id)] == ["placed"]
    payments = live_server.fetch(f"SELECT status FROM order_payment WHERE \"order\" = {orders[0]['id']} ORDER BY attempt")
    assert [p["status"] for p in payments] == ["declined"], payments

    # The good card pays the same order.
    webhooks_before = len(_succeeded_webhooks(live_server))
    flows.fill_card(page, flows.CARD_OK)
    assert flows.pay_and_wait_for_confirmation(page) == number
    expect(page.locator(".lead")).to_contain_text("confirmed and paid")

    _wait_for_webhooks(live_server, webhooks_before + 1)
    orders = _orders(live_server, member_id)
    assert [(o["number"], o["status"]) for o in orders] == [(number, "paid")], orders
    assert len(_paid_events(live_server, orders[0]["id"])) == 1
    payments = live_server.fetch(f"SELECT status FROM order_payment WHERE \"order\" = {orders[0]['id']} ORDER BY attempt")
    assert [p["status"] for p in payments] == ["declined", "paid"], payments
    variant = _variant(live_server, product_id, "M")
    assert (variant["stock"], variant["sold"]) == (3, 2), variant  # 5 - 2, taken once
    watched.assert_clean()


# ---- 3. authentication required (3-D Secure) --------------------------------------------------


def test_3d_secure_checkout_is_paid_once(watched, live_server, staff_state):
    name = "Insulated trail bottle"
    staff = watched.context(storage_state=staff_state, viewport=DESKTOP).new_page()
    product_id, slug = flows.create_product(staff, name=name, price="159", variants=(("Black", 3),),
                                            status="In the shop")
    page, person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Tess Threeds")
    member_id = _member(live_server, person.email)["id"]
    _buy(page, slug, quantity=1)
    flows.fill_card(page, flows.CARD_3DS)
    webhooks_before = len(_succeeded_webhooks(live_server))

    # The bank asks twice: when the card is saved, and when the server charges it.
    page.locator("#pay-button").click()
    complete = page.get_by_role("button", name="Complete authentication")
    expect(complete).to_be_visible()
    expect(page.get_by_role("button", name="Fail authentication")).to_be_visible()
    with page.expect_response(re.compile(r"/checkout/[^/]+/pay$")) as answer:
        complete.click()
    assert answer.value.json()["status"] == "requires_action"
    expect(complete).to_be_visible()
    assert "/checkout" in page.url and not page.url.endswith("/done")
    complete.click()
    page.wait_for_url(re.compile(r"/checkout/[^/]+/done$"))
    number = page.get_by_test_id("order-number").inner_text().strip()
    expect(page.locator(".lead")).to_contain_text("confirmed and paid")

    # Paid once, also after localstripe's webhook for the same PaymentIntent arrives.
    rows = _wait_for_webhooks(live_server, webhooks_before + 1)
    orders = _orders(live_server, member_id)
    assert [(o["number"], o["status"]) for o in orders] == [(number, "paid")], orders
    assert len(_paid_events(live_server, orders[0]["id"])) == 1
    payments = live_server.fetch(f"SELECT status FROM order_payment WHERE \"order\" = {orders[0]['id']}")
    assert [p["status"] for p in payments] == ["paid"], payments
    assert rows[-1]["outcome"] in ("duplicate", "paid"), rows[-1]
    variant = _variant(live_server, product_id, "Black")
    assert (variant["stock"], variant["sold"]) == (2, 1), variant
    page.goto(f"/orders/{number}")
    expect(page.locator(".order-head .badge")).to_have_text("Paid")
    watched.assert_clean()
