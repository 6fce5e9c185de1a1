"""What a person does in the browser, step by step (shared by the e2e tests)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, expect

PASSWORD = "a-long-e2e-password-2026"
LONG_DESCRIPTION = (
    "A roomy, waterproof backpack for cycling commuters, with a padded laptop sleeve, "
    "reflective strips and a roll-top that keeps the rain out."
)


@dataclass
class Person:
    name: str
    email: str
    password: str = PASSWORD


def new_person(name: str) -> Person:
    slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    return Person(name=name, email=f"{slug}-{uuid.uuid4().hex[:8]}@example.test")


def sign_up(page: Page, person: Person) -> None:
    page.goto("/signup")
    page.get_by_label("Your name").fill(person.name)
    page.get_by_role("textbox", name="Email", exact=True).fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Create my account").click()
    # The same answer for a new and a taken address (no enumeration): the emailed link logs in.
    page.wait_for_url("**/signup/sent")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email to continue")


def open_verification_link(page: Page, person: Person, *, wait_delivered: bool = False) -> str:
    """Find the email in /dev/mailbox, open it and follow its link; returns the link."""
    page.goto(f"/dev/mailbox?to={person.email}")
    row = page.locator("tbody tr", has_text="confirm your email")
    expect(row).to_have_count(1)
    if wait_delivered:
        # The in-process job worker delivers the email (status queued -> sent).
        deadline = time.monotonic() + 15
        while "sent" not in row.locator("td").nth(3).inner_text():
            assert time.monotonic() < deadline, "the verification email was never delivered by the worker"
            time.sleep(0.3)
            page.reload()
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("confirm your email")
    text = page.get_by_test_id("email-text").inner_text()
    match = re.search(r"(https?://\S+/verify\?token=\S+)", text)
    assert match, f"no verification link in the email:\n{text}"
    link = match.group(1)
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    return link


def confirm_email(page: Page) -> None:
    page.get_by_role("button", name="Confirm my email").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator(".flash-success")).to_contain_text("your email is confirmed")
    expect(page.locator(".banner")).to_have_count(0)


def sign_up_verified(context: BrowserContext, name: str) -> tuple[Page, Person]:
    person = new_person(name)
    page = context.new_page()
    sign_up(page, person)
    open_verification_link(page, person)
    confirm_email(page)
    return page, person


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".flash-success")).to_contain_text("Welcome back")


def log_out(page: Page) -> None:
    page.locator("details.account-menu > summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.locator(".flash-info")).to_contain_text("You are logged out")
    expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()


def submit_idea(
    page: Page,
    *,
    title: str,
    image: Path | None = None,
    summary: str = "Dry laptops for every cyclist.",
    description: str = LONG_DESCRIPTION,
    category: str | None = None,
) -> int:
    """Fill the "Submit an idea" form and submit it for review; returns the idea id."""
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Submit an idea").click()
    page.wait_for_url("**/ideas/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("One-line summary").fill(summary)
    page.get_by_label("Description").fill(description)
    select = page.get_by_label("Category")
    if category:
        select.select_option(label=category)
    else:
        select.select_option(index=1)  # the first real category
    if image is not None:
        page.get_by_label("Images").set_input_files(image)
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(re.compile(r"/ideas/\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("Your idea is submitted")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def expect_idea_in_review(page: Page, title: str) -> None:
    """The author's view of a just-submitted idea with an image: its title, the review notice and
    the image actually loaded."""
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(".notice")).to_contain_text("Your idea is in review")
    image = page.locator(".gallery img").first
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())


def approve_idea(page: Page, title: str, idea_id: int) -> None:
    """Staff: open the review queue and approve the idea (the row with its link)."""
    page.goto("/staff/review")
    row = page.locator("tbody tr").filter(has=page.locator(f'a[href="/ideas/{idea_id}"]'))
    expect(row.get_by_role("link", name=title, exact=True)).to_be_visible()
    row.get_by_role("button", name="Approve").click()
    page.wait_for_url("**/staff/review")
    expect(page.locator(".flash-success")).to_contain_text(f"Idea #{idea_id} was approved and open for votes")


def vote_count(page: Page) -> str:
    return page.get_by_test_id("vote-count").inner_text().strip()


# ---- campaigns and pledges -------------------------------------------------------------------

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_3DS = "4000002500003155"


def greenlight(
    page: Page,
    idea_id: int,
    *,
    price: str = "49",
    goal_units: int = 20,
    duration_days: int = 30,
    variants: tuple[str, ...] = ("S", "M", "L"),
) -> int:
    """Staff: from the idea page, greenlight a pre-order campaign; returns the campaign id."""
    page.goto(f"/ideas/{idea_id}")
    page.get_by_role("link", name="Greenlight a pre-order campaign").click()
    page.wait_for_url(f"**/staff/ideas/{idea_id}/greenlight")
    page.get_by_label("Price per unit").fill(price)
    page.get_by_label("Goal in units").fill(str(goal_units))
    page.get_by_label("Duration in days").fill(str(duration_days))
    expect(page.get_by_label("Estimated delivery")).not_to_have_value("")  # prefilled: in 120 days
    for index in range(8):
        page.get_by_label(f"Variant {index + 1}", exact=True).fill(variants[index] if index < len(variants) else "")
    page.get_by_role("button", name="Greenlight and open pre-orders").click()
    page.wait_for_url(re.compile(rf"/ideas/{idea_id}$"))
    expect(page.locator(".flash-success")).to_contain_text("Greenlit!")
    panel = page.locator("#pledge")
    expect(panel.locator(".badge-campaign")).to_have_text("Live")  # EARLY_ACCESS_HOURS=0: open at once
    href = panel.get_by_role("link", name="Staff: campaign dashboard").get_attribute("href") or ""
    match = re.fullmatch(r"/staff/campaigns/(\d+)", href)
    assert match, f"no campaign dashboard link on the idea page: {href!r}"
    return int(match.group(1))


def start_pledge(page: Page, idea_id: int, *, variant: str, quantity: int) -> int:
    """A member on the idea page: variant, quantity, consent, continue; returns the pledge id."""
    page.goto(f"/ideas/{idea_id}")
    form = page.locator("form.pledge-form")
    form.get_by_role("radio", name=variant, exact=True).check()
    form.get_by_label("Quantity").select_option(str(quantity))
    form.get_by_role("checkbox", name=re.compile("I agree that my card is saved")).check()
    form.get_by_role("button", name="Pre-order: continue to card").click()
    page.wait_for_url(re.compile(r"/pledges/\d+/card$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your card")
    return int(page.url.rsplit("/", 2)[1])


def fill_card(page: Page, number: str, *, exp_month: str = "12", exp_year: str = "34", cvc: str = "123",
              postal_code: str = "10115") -> None:
    """The (fake) Stripe.js card element: plain inputs named by their placeholders."""
    element = page.locator("[data-card-element]")
    element.locator('input[placeholder="number"]').fill(number)
    element.locator('input[placeholder="exp_month"]').fill(exp_month)
    element.locator('input[placeholder="exp_year"]').fill(exp_year)  # two digits
    element.locator('input[placeholder="cvc"]').fill(cvc)
    element.locator('input[placeholder="postal_code"]').fill(postal_code)


def wait_for_live_stream(page: Page) -> None:
    """The campaign panel's EventSource (htmx SSE extension) is open."""
    page.wait_for_function(
        """() => {
            const el = document.querySelector('[sse-connect]');
            const data = el && el['htmx-internal-data'];
            return !!(data && data.sseEventSource && data.sseEventSource.readyState === EventSource.OPEN);
        }"""
    )


# ---- page checks shared by the tests --------------------------------------------------------


def arm_no_reload_marker(page: Page) -> str:
    """Leave a mark on the window: it survives an htmx swap or an SSE swap, not a navigation.
    Returns the page's URL, for `assert_not_reloaded`."""
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { window.__marker = 1; }")
    return page.url


def assert_not_reloaded(page: Page, url: str) -> None:
    assert page.evaluate("() => window.__marker") == 1, "the page navigated instead of updating in place"
    assert page.url == url


# Console noise of localstripe's fake Stripe.js (not of our pages): a declined card setup or
# charge answers 402 and Chromium logs "Failed to load resource" for the failed fetch to
# localstripe's origin. Its `console.log` chatter ("localstripe: Stripe().confirmCardSetup()")
# is level "log" and never collected.
FAKE_STRIPE_NOISE = re.compile(r"^Failed to load resource: the server responded with a status of 40[0-9]")


class PageWatch:
    """JavaScript console errors, uncaught page errors and unsafe requests to the app, collected
    for every page of a browser context (see `watch_context`)."""

    def __init__(self, origin: str, stripe_origin: str = "") -> None:
        self.origin = origin
        self.stripe_origin = stripe_origin
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.ignored: list[str] = []  # known fake Stripe.js noise
        self.unsafe_requests: list[dict] = []
        self.refused: list[str] = []

    def _on_console(self, message) -> None:  # noqa: ANN001 (playwright ConsoleMessage)
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        text = f"{message.text} (at {where or 'unknown'})"
        if self.stripe_origin and where.startswith(self.stripe_origin) and FAKE_STRIPE_NOISE.search(message.text):
            self.ignored.append(text)
        else:
            self.console_errors.append(text)

    def _on_request(self, request) -> None:  # noqa: ANN001 (playwright Request)
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.url.startswith(self.origin + "/"):
            return
        headers = request.headers  # lower-case names
        try:
            body = request.post_data_buffer
        except Exception:  # noqa: BLE001 (a body Playwright cannot give back)
            body = None
        self.unsafe_requests.append({
            "method": request.method, "url": request.url[len(self.origin):], "type": request.resource_type,
            "htmx": headers.get("hx-request") == "true", "header_token": headers.get("x-csrftoken", ""),
            # None: Playwright does not give back multipart bodies with files (the 403 check covers them)
            "body_token": (b"_csrf_token" in body) if body else None,
        })

    def _on_response(self, response) -> None:  # noqa: ANN001 (playwright Response)
        request = response.request
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.startswith(self.origin + "/") \
                and response.status == 403:
            self.refused.append(f"{request.method} {request.url[len(self.origin):]} -> 403")

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def csrf_problems(self) -> list[str]:
        """htmx and script (fetch/XHR) requests must carry the X-CSRFToken header; plain form
        posts (navigations) carry the `_csrf_token` field instead."""
        problems = []
        for r in self.unsafe_requests:
            scripted = r["htmx"] or r["type"] in ("fetch", "xhr")
            if scripted and not r["header_token"]:
                problems.append(f"{r['method']} {r['url']} ({'htmx' if r['htmx'] else r['type']}) without X-CSRFToken")
            elif not scripted and r["body_token"] is False and not r["header_token"]:
                problems.append(f"{r['method']} {r['url']} ({r['type']}) without a CSRF token")
        return problems

    def assert_clean(self) -> None:
        problems = [f"console error: {e}" for e in self.console_errors]
        problems += [f"page error: {e}" for e in self.page_errors]
        problems += self.csrf_problems() + self.refused
        assert not problems, "\n".join(problems)

    def htmx_posts(self) -> list[str]:
        return [f"{r['method']} {r['url']}" for r in self.unsafe_requests if r["htmx"]]


def watch_context(context: BrowserContext, origin: str, *, stripe_origin: str = "") -> PageWatch:
    """Collect console errors, page errors and unsafe requests of every page the context opens
    from now on (open pages too)."""
    watch = PageWatch(origin=origin.rstrip("/"), stripe_origin=stripe_origin.rstrip("/"))
    for page in context.pages:
        watch.attach(page)
    context.on("page", watch.attach)
    return watch


# ---- the shop -------------------------------------------------------------------------------


def create_product(
    page: Page,
    *,
    name: str,
    price: str,
    variants: tuple[tuple[str, int], ...] = (("One size", 10),),
    summary: str = "Made by the community, ready to ship.",
    description: str = "",
    details: str = "",
    image: Path | None = None,
    status: str = "Draft",
) -> tuple[int, str]:
    """Staff: /staff/products -> New product, fill the editor and create it; returns (id, slug)."""
    page.goto("/staff/products")
    page.get_by_role("link", name="New product").click()
    page.wait_for_url("**/staff/products/new")
    page.get_by_label(re.compile(r"^Name")).fill(name)
    page.get_by_label("One-line summary").fill(summary)
    if description:
        page.get_by_label("Description").fill(description)
    if details:
        page.get_by_label("Details").fill(details)
    page.get_by_label("Category").select_option(index=1)  # the first real category
    page.get_by_label("Status").select_option(label=status)
    page.get_by_label(re.compile(r"^Price \(")).fill(price)
    page.get_by_label("Ships within (days)").fill("2")
    fill_product_safety(page)
    for index, (variant, stock) in enumerate(variants):
        page.get_by_label(f"Variant {index + 1} name", exact=True).fill(variant)
        page.get_by_label(f"Variant {index + 1} stock", exact=True).fill(str(stock))
    if image is not None:
        page.get_by_label("Images").set_input_files(image)
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r"/staff/products/\d+/edit$"))
    expect(page.locator(".flash-success")).to_contain_text(name)
    product_id = int(page.url.rsplit("/", 2)[1])
    href = page.get_by_role("link", name="View in the shop").get_attribute("href") or ""
    assert href.startswith("/shop/"), f"no shop link on the product editor: {href!r}"
    return product_id, href.removeprefix("/shop/")


def fill_product_safety(page: Page) -> None:
    """Staff, in the product editor: the product safety fields a product in the shop needs (GPSR)."""
    page.get_by_label("Manufacturer", exact=True).fill("Nordvik Textil AB, Industrigatan 8, 503 38 Borås, Sweden, "
                                                     "info@nordvik.test")
    page.get_by_label("Responsible person in the EU").fill("Nordvik Textil AB, Industrigatan 8, 503 38 Borås, Sweden")
    page.get_by_label("Safety warnings and instructions").fill("Wash at 30 °C. Keep away from open flames.")


def put_product_in_shop(page: Page, product_id: int) -> None:
    """Staff: the editor's Status panel, "Put in the shop"."""
    if not page.url.endswith(f"/staff/products/{product_id}/edit"):
        page.goto(f"/staff/products/{product_id}/edit")
    page.get_by_role("button", name="Put in the shop").click()
    page.wait_for_url(f"**/staff/products/{product_id}/edit")
    expect(page.locator(".flash-success")).to_contain_text("is now")
    expect(page.locator(".page-head .badge")).to_have_text("In the shop")


def cart_badge_count(page: Page) -> str:
    """The header cart badge's number ("" when the cart is empty)."""
    count = page.locator("#cart-badge [data-testid=cart-count]")
    return count.inner_text().strip() if count.count() else ""


def add_to_cart(page: Page, *, variant: str | None = None, quantity: int = 1) -> None:
    """On a product page: pick the variant and quantity, "Add to cart" (htmx: the page stays)."""
    form = page.locator("form.add-to-cart")
    if variant is not None:
        form.get_by_role("radio", name=re.compile(rf"^{re.escape(variant)}\b")).check()
    form.get_by_label("Quantity").fill(str(quantity))
    form.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-message")).to_contain_text("Added to your cart.")


@dataclass
class Address:
    name: str = "Ada Lovelace"
    line1: str = "Drottninggatan 12"
    postal_code: str = "111 51"
    city: str = "Stockholm"
    country: str = "Sweden"
    phone: str = "+46 70 123 45 67"


def fill_new_address(page: Page, address: Address | None = None) -> None:
    """Checkout step 1: a new shipping address (the "A new address" choice when there are saved ones)."""
    address = address or Address()
    new_choice = page.get_by_role("radio", name="A new address")
    if new_choice.count():
        new_choice.check()
    _fill_address_fields(page, address)


def _fill_address_fields(scope: Page | Locator, address: Address) -> None:
    """The address fields, on a page or inside one form of it."""
    scope.get_by_label("Full name").fill(address.name)
    scope.get_by_label("Street address").fill(address.line1)
    scope.get_by_label("Postal code").fill(address.postal_code)
    scope.get_by_label("City").fill(address.city)
    scope.get_by_label("Country").select_option(label=address.country)
    scope.get_by_label("Phone").fill(address.phone)


def pay_and_wait_for_confirmation(page: Page) -> str:
    """Checkout: press the pay button and land on /checkout/<number>/done; returns the number."""
    page.locator("#pay-button").click()
    page.wait_for_url(re.compile(r"/checkout/[^/]+/done$"))
    number = page.get_by_test_id("order-number").inner_text().strip()
    assert page.url.endswith(f"/checkout/{number}/done")
    return number


# ---- the whole life of an idea (tests/e2e/test_idea_life.py) ----------------------------------


def reload_until(page: Page, locator, text: str | re.Pattern, *, timeout: float = 30) -> None:  # noqa: ANN001
    """Reload the page until `locator` (a function of the page, re-evaluated after each reload)
    contains `text`: for what a background job changes (settlement, charges), where nothing
    pushes the change to the open page."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            expect(locator()).to_contain_text(text, timeout=700)  # waits up to 0.7 s before the next reload
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


def vote_for(page: Page, idea_id: int, *, expected_count: int) -> None:
    """A member on the idea page: "I want this" (htmx, in place)."""
    page.goto(f"/ideas/{idea_id}")
    page.get_by_role("button", name="I want this").click()
    expect(page.get_by_test_id("vote-count")).to_have_text(str(expected_count))
    expect(page.get_by_role("button", name=re.compile("You want this"))).to_be_visible()


def save_card_and_pledge(page: Page, number: str, *, authenticate: bool = False) -> None:
    """The card page: fill the fake Stripe.js card element and save; with `authenticate`, the
    bank's 3-D Secure box appears and the member completes it."""
    fill_card(page, number)
    page.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
    if authenticate:
        page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url("**/me/pledges")
    expect(page.locator(".flash-success")).to_contain_text("is active")


def close_campaign_now(page: Page, campaign_id: int, *, outcome: str = "Funded") -> None:
    """Staff: the campaign dashboard's "Close now" button (settles as at the deadline)."""
    page.goto(f"/staff/campaigns/{campaign_id}")
    page.get_by_role("button", name=re.compile(r"^Close now")).click()
    page.wait_for_url(f"**/staff/campaigns/{campaign_id}")
    expect(page.locator(".flash-success")).to_contain_text(f"Campaign closed: {outcome}.")


def open_email(page: Page, to: str, subject_part: str) -> str:
    """The dev mailbox: open the one email to `to` whose row mentions `subject_part`; returns its text."""
    page.goto(f"/dev/mailbox?to={to}")
    row = page.locator("tbody tr", has_text=subject_part)
    expect(row).to_have_count(1)
    row.get_by_role("link").first.click()
    text = page.get_by_test_id("email-text")
    expect(text).to_be_visible()
    return text.inner_text()


def open_my_order(page: Page, title: str) -> str:
    """Account menu -> My orders -> the order card of `title`; returns the order number."""
    page.locator("details.account-menu > summary").click()
    page.get_by_role("link", name="My orders").click()
    page.wait_for_url("**/orders")
    page.locator(".order-card", has_text=title).get_by_role("link").click()
    page.wait_for_url(re.compile(r"/orders/CM-[0-9A-F]+$"))
    return page.url.rsplit("/", 1)[1]


def give_delivery_address(page: Page, address: Address | None = None) -> None:
    """A backer on a paid pre-order's page: the "Shipping to" form (pre-orders are paid without an address)."""
    address = address or Address()
    form = page.locator("form.address-form")
    _fill_address_fields(form, address)
    form.get_by_role("button", name="Save delivery address").click()
    expect(page.locator(".flash-success")).to_contain_text("We'll ship your pre-order to this address")
    expect(page.locator(".ship-to")).to_contain_text(address.line1)


def bulk_move_preorders(page: Page, campaign_id: int, *, to: str, carrier: str = "",
                        tracking: dict[str, str] | None = None) -> None:
    """Staff: /staff/orders, the "Bulk update a campaign's pre-orders" panel: every paid pre-order
    of the campaign to in production (to="in_production"), or every one in production to shipped
    with a carrier and one tracking number per order (to="shipped")."""
    page.goto(f"/staff/orders?campaign={campaign_id}")
    panel = page.locator("details.bulk-panel")
    panel.locator("summary").click()
    form = panel.locator("form.bulk-form")
    form.get_by_label("Campaign").select_option(str(campaign_id))
    if to == "in_production":
        form.get_by_role("radio", name=re.compile("pre-orders to in production")).check()
    else:
        form.get_by_role("radio", name=re.compile("pre-orders to shipped")).check()
        form.get_by_label("Carrier").select_option(label=carrier)
        form.get_by_label("Tracking numbers").fill("\n".join(f"{n} {t}" for n, t in (tracking or {}).items()))
    form.get_by_role("button", name="Update the orders").click()
    page.wait_for_url(re.compile(rf"/staff/orders\?campaign={campaign_id}$"))


def ship_wave(page: Page, campaign_id: int, *, carrier: str, tracking: dict[str, str]) -> None:
    """Staff: the bulk panel's "shipping wave": only the listed in-production pre-orders ship,
    each with its tracking number, and the wave is posted on the campaign's delivery timeline."""
    page.goto(f"/staff/orders?campaign={campaign_id}")
    panel = page.locator("details.bulk-panel")
    panel.locator("summary").click()
    form = panel.locator("form.bulk-form")
    form.get_by_label("Campaign").select_option(str(campaign_id))
    form.get_by_role("radio", name=re.compile("shipping wave")).check()
    form.get_by_label("Carrier").select_option(label=carrier)
    form.get_by_label("Tracking numbers").fill("\n".join(f"{n} {t}" for n, t in tracking.items()))
    form.get_by_role("button", name="Update the orders").click()
    page.wait_for_url(re.compile(rf"/staff/orders\?campaign={campaign_id}$"))


def publish_campaign_product(page: Page, title: str, *, stock: int = 20) -> tuple[int, str]:
    """Staff: /staff/products, "Funded campaigns ready for the shop" -> Publish to the shop; the
    editor comes prefilled from the campaign, staff enter the stock of each variant. Returns (id, slug)."""
    page.goto("/staff/products")
    page.locator("li", has_text=title).get_by_role("link", name="Publish to the shop").click()
    page.wait_for_url(re.compile(r"/staff/products/new\?campaign=\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Publish “{title}” to the shop")
    expect(page.get_by_label(re.compile(r"^Name"))).to_have_value(title)
    index = 1
    while page.get_by_label(f"Variant {index} name", exact=True).input_value():
        page.get_by_label(f"Variant {index} stock", exact=True).fill(str(stock))
        index += 1
    # The brand is prefilled as manufacturer and responsible person (GPSR); the warnings are staff's.
    expect(page.get_by_label("Manufacturer", exact=True)).to_have_value(re.compile(r"Crowdmade AB"))
    page.get_by_label("Safety warnings and instructions").fill("Wash at 30 °C. Keep away from open flames.")
    page.get_by_role("button", name="Publish to the shop").click()
    page.wait_for_url(re.compile(r"/staff/products/\d+/edit$"))
    expect(page.locator(".flash-success")).to_contain_text("is in the shop")
    expect(page.locator(".page-head .badge")).to_have_text("In the shop")
    href = page.get_by_role("link", name="View in the shop").get_attribute("href") or ""
    assert href.startswith("/shop/"), f"no shop link on the product editor: {href!r}"
    return int(page.url.rsplit("/", 2)[1]), href.removeprefix("/shop/")


def write_review(page: Page, *, stars: int, title: str, body: str) -> None:
    """A verified buyer on a product page: the review form (htmx, in place)."""
    box = page.locator("#write-review")
    expect(box.get_by_role("heading", name="Write a review")).to_be_visible()
    box.get_by_role("radio", name=f"{stars} stars" if stars != 1 else "1 star", exact=True).check()
    box.get_by_label("Title").fill(title)
    box.get_by_label("Your review").fill(body)
    box.get_by_role("button", name="Publish review").click()
    expect(page.locator("#review-panel")).to_contain_text("Thank you! Your review is published.")


# Elements that stick out past the right edge of the screen (the cause of sideways scrolling).
WIDE_ELEMENTS_JS = """(screen) => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > screen + 1 && getComputedStyle(el).position !== 'fixed') {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push(`${name} right=${Math.round(r.right)}`);
    }
  }
  return out.slice(0, 8);
}"""


def horizontal_overflow(page: Page) -> str:
    """"" when the page fits the screen's width; else what sticks out. (On a phone Chromium zooms
    out a page that is too wide, so the page is compared with the screen, not the layout viewport.)"""
    screen = (page.viewport_size or {})["width"]
    width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, window.innerWidth)")
    if width <= screen + 1:
        return ""
    return f"{page.url} is {width} px wide on a {screen} px screen: {page.evaluate(WIDE_ELEMENTS_JS, screen)}"


class Watched:
    """Browser contexts whose pages are all watched; `assert_clean()` at the end of a test."""

    def __init__(self, new_context, live_server) -> None:  # noqa: ANN001
        self._new_context = new_context
        self._live_server = live_server
        self.watches: list[PageWatch] = []

    def context(self, **options) -> BrowserContext:
        context = self._new_context(**options)
        self.watches.append(
            watch_context(context, self._live_server.url, stripe_origin=self._live_server.stripe_url)
        )
        return context

    def htmx_posts(self) -> list[str]:
        return [post for watch in self.watches for post in watch.htmx_posts()]

    def assert_clean(self) -> None:
        problems = []
        for watch in self.watches:
            try:
                watch.assert_clean()
            except AssertionError as error:
                problems.append(str(error))
        assert not problems, "\n".join(problems)
