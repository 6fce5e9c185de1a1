"""Accessibility and browser hygiene on the main pages, in a real browser.

1. axe-core (vendored in tests/e2e/vendor/) finds no "serious" or "critical" violation on the
   main pages of a visitor, a member and staff.
2. The main actions work with the keyboard alone: the skip link, voting (Enter, then Space to
   withdraw), "Add to cart"; Tab reaches the main navigation and each page's primary button, and
   every element that takes keyboard focus shows a focus indicator.
3. Every state-changing request htmx sends carries the CSRF header the app checks (X-CSRFToken,
   app/web/middleware.py; set on <body hx-headers> in templates/base.html), with the page's token.
4. No JavaScript console error (a failed favicon or stylesheet included) and no uncaught page
   error on any page visited here.

The pages of all three tests are watched (flows.watch_context); the page data (two ideas, one
greenlit into a campaign, a product, a paid order, a reported comment, a draft experiment) is
made once per module through the browser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e import flows
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS

pytestmark = pytest.mark.e2e

AXE_VERSION = "4.14.1"
AXE_FILE = Path(__file__).parent / "vendor" / f"axe-core-{AXE_VERSION}.min.js"
# The pages' Content-Security-Policy allows scripts from 'self' only, so axe is not injected as an
# inline script (add_script_tag(path=...) would be refused and log a CSP error): the browser loads
# it from a same-origin URL that the test answers itself (context.route), and the CSP stays on.
AXE_PATH = f"/__e2e__/axe-core-{AXE_VERSION}.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
EXPERIMENT_KEY = "a11y_check_button"
MAIN_NAV = ("Ideas", "Pre-orders", "Shop", "Submit an idea")

AXE_RUN_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ')),
    summary: (v.nodes[0] && v.nodes[0].failureSummary || '').split('\\n').slice(0, 3).join(' '),
  }));
}"""

# Records every element that takes focus, and whether it (or what draws its focus for it: its
# label, its parent, the span beside a hidden radio) shows an outline or a box shadow.
FOCUS_LOG_JS = """() => {
  window.__focusLog = [];
  const shows = (el) => {
    const s = getComputedStyle(el);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  };
  document.addEventListener('focusin', (event) => {
    const el = event.target;
    const drawers = [el, el.closest('label'), el.parentElement, el.nextElementSibling].filter(Boolean);
    const name = (el.getAttribute('aria-label') || el.innerText || el.value || el.name || el.id || '')
      .trim().replace(/\\s+/g, ' ').slice(0, 40);
    window.__focusLog.push({
      tag: el.tagName.toLowerCase(), name, target: el.dataset.a11yTarget || '',
      visible: drawers.some(shows),
    });
  });
}"""


@dataclass
class Site:
    member_state: dict
    staff_state: dict
    member_handle: str
    vote_idea: int
    campaign_idea: int
    campaign_id: int
    product_slug: str
    order_number: str
    setup_problems: list[str] = field(default_factory=list)


# ---- helpers ---------------------------------------------------------------------------------


def _new_context(browser, live_server, **options) -> BrowserContext:  # noqa: ANN001
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, **options)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return context


def _serve_axe(context: BrowserContext, origin: str) -> None:
    context.route(origin + AXE_PATH, lambda route: route.fulfill(path=str(AXE_FILE), content_type="text/javascript"))


def _page_ready(page: Page) -> None:
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")


def _axe_problems(page: Page, origin: str) -> list[str]:
    """axe-core's serious and critical violations on the open page, one line per rule."""
    _page_ready(page)
    if not page.evaluate("() => window.axe !== undefined"):
        page.add_script_tag(url=origin + AXE_PATH)
    violations = page.evaluate(AXE_RUN_JS)
    path = page.url.removeprefix(origin)
    return [
        f"{path}: {v['id']} ({v['impact']}: {v['help']}) at {v['targets'][:6]} -- {v['summary']}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]


def _watch_problems(watch: flows.PageWatch) -> list[str]:
    try:
        watch.assert_clean()
    except AssertionError as error:
        return str(error).splitlines()
    return []


def _tab_to(page: Page, locator, *, limit: int = 120) -> None:  # noqa: ANN001 (playwright Locator)
    """Press Tab from where the focus is until `locator` has the focus (the keyboard, not .focus())."""
    expect(locator).to_be_visible()
    handle = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {locator} on {page.url}")


def _focus_shows(page: Page) -> bool:
    """The focused element (or its label / the element drawing its focus) has an outline or a shadow."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const shows = (e) => { const s = getComputedStyle(e);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; };
          return [el, el.closest('label'), el.parentElement, el.nextElementSibling].filter(Boolean).some(shows);
        }"""
    )


def _tab_through(page: Page, primary, *, limit: int = 150) -> list[dict]:  # noqa: ANN001 (Locator)
    """Mark the main nav links and the page's primary control, then Tab from the top of the page
    until the primary control is reached (or `limit` presses); returns the focus log."""
    _page_ready(page)
    nav = page.get_by_role("navigation", name="Main")
    for name in MAIN_NAV:
        nav.get_by_role("link", name=name, exact=True).evaluate("(el, n) => el.dataset.a11yTarget = 'nav:' + n", name)
    expect(primary).to_be_visible()
    primary.evaluate("(el) => el.dataset.a11yTarget = 'primary'")
    page.evaluate(FOCUS_LOG_JS)
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    log: list[dict] = []
    for _ in range(0, limit, 10):
        for _ in range(10):
            page.keyboard.press("Tab")
        log = page.evaluate("() => window.__focusLog")
        if any(entry["target"] == "primary" for entry in log):
            break
    return log


# ---- the site, made once through the browser ------------------------------------------------


@pytest.fixture(scope="module")
def site(browser, live_server, accounts, png_file) -> Site:
    contexts: list[BrowserContext] = []
    watches: list[flows.PageWatch] = []

    def context(**options) -> BrowserContext:
        ctx = _new_context(browser, live_server, **options)
        contexts.append(ctx)
        watches.append(flows.watch_context(ctx, live_server.url, stripe_origin=live_server.stripe_url))
        return ctx

    author = context(storage_state=accounts.author_state).new_page()
    staff = context(storage_state=accounts.staff_state).new_page()
    try:
        vote_idea = flows.submit_idea(author, title="Reflective rain poncho", image=png_file)
        flows.approve_idea(staff, "Reflective rain poncho", vote_idea)
        campaign_idea = flows.submit_idea(author, title="Foldable bike helmet")
        flows.approve_idea(staff, "Foldable bike helmet", campaign_idea)
        campaign_id = flows.greenlight(staff, campaign_idea, price="59", goal_units=25, variants=("S", "M"))
        _, slug = flows.create_product(staff, name="Wool cycling cap", price="199", variants=(("One size", 50),),
                                       image=png_file, status="In the shop",
                                       description="A warm merino cap.\n\nFits under a helmet.")

        # A draft experiment, for its results page (deleted again at the end of the module).
        staff.goto("/staff/experiments")
        staff.get_by_label("Key").fill(EXPERIMENT_KEY)
        staff.get_by_label("Title").fill("Accessibility check")
        staff.get_by_label("Hypothesis").fill("A clearer button label helps.")
        staff.get_by_label("Goal event").select_option(index=0)
        for index, name in enumerate(("Plain", "Bold")):
            staff.get_by_label(re.compile(rf"^Variant {index + 1} name")).fill(name)
            staff.get_by_label(f"Variant {index + 1} weight").fill("50")
        staff.get_by_role("button", name="Create experiment").click()
        staff.wait_for_url(f"**/staff/experiments/{EXPERIMENT_KEY}")

        # The member: buys the cap (a paid order), and reports the author's comment (moderation queue).
        member_ctx = context()
        member, _ = flows.sign_up_verified(member_ctx, "Mia Member")
        href = member.locator("details.account-menu a", has_text="My profile").get_attribute("href") or ""
        handle = href.removeprefix("/members/")
        member.goto(f"/shop/{slug}")
        flows.add_to_cart(member)
        member.goto("/checkout")
        flows.fill_new_address(member)
        flows.fill_card(member, flows.CARD_OK)
        number = flows.pay_and_wait_for_confirmation(member)

        author.goto(f"/ideas/{campaign_idea}")
        author.get_by_label("Your comment", exact=True).fill("Would it come in a child size too?")
        author.locator("form.comment-form").get_by_role("button", name="Post comment").click()
        expect(author.locator("#comments .comment-body")).to_have_count(1)
        member.goto(f"/ideas/{campaign_idea}")
        member.locator("#comments").get_by_role("link", name="Report this comment").click()
        member.get_by_label(re.compile("breaks the community rules")).check()
        member.get_by_label(re.compile("^Why\\?")).fill("Off topic: this asks about sizes, not the design.")
        member.get_by_label(re.compile("good faith")).check()
        member.get_by_role("button", name="Send the report").click()
        expect(member.locator("main h1")).to_contain_text("we received your report")

        site = Site(
            member_state=member_ctx.storage_state(), staff_state=accounts.staff_state, member_handle=handle,
            vote_idea=vote_idea, campaign_idea=campaign_idea, campaign_id=campaign_id, product_slug=slug,
            order_number=number,
            setup_problems=[p for w in watches for p in _watch_problems(w)],
        )
    finally:
        for ctx in contexts:
            ctx.close()
    yield site

    cleanup = _new_context(browser, live_server, storage_state=accounts.staff_state)
    try:
        page = cleanup.new_page()
        page.goto(f"/staff/experiments/{EXPERIMENT_KEY}")
        page.get_by_role("button", name=re.compile("^Delete experiment")).click()
        page.wait_for_url("**/staff/experiments")
    finally:
        cleanup.close()


@pytest.fixture
def watched(new_context, live_server):
    """Browser contexts whose pages are all watched: console errors, page errors, unsafe requests
    without a CSRF token, and any request answered with an error (a missing favicon, image, script)."""
    watches: list[flows.PageWatch] = []
    failed: list[str] = []

    def on_response(response) -> None:  # noqa: ANN001 (playwright Response)
        if response.status >= 400:
            failed.append(f"{response.request.method} {response.url} -> {response.status}")

    def make(**options) -> BrowserContext:
        ctx = new_context(**options)
        _serve_axe(ctx, live_server.url)
        watches.append(flows.watch_context(ctx, live_server.url, stripe_origin=live_server.stripe_url))
        ctx.on("response", on_response)
        return ctx

    make.problems = lambda: [p for w in watches for p in _watch_problems(w)] + failed  # type: ignore[attr-defined]
    return make


# ---- 1. axe-core, and no console errors, on the main pages -----------------------------------


def test_main_pages_pass_axe_without_console_errors(site, watched, live_server):
    origin = live_server.url
    problems: list[str] = []
    visited: list[str] = []

    def audit(page: Page, path: str | None = None) -> None:
        """Open `path` (or stay on the page, in the state an htmx swap left it) and run axe."""
        if path is not None:
            response = page.goto(path)
            assert response is not None and response.ok, f"{path} answered {response and response.status}"
        visited.append(path or f"{page.url.removeprefix(origin)} (after htmx)")
        problems.extend(_axe_problems(page, origin))

    # Reduced motion: no page is caught mid-animation (the "Added to your cart" toast fades in and
    # out; half-faded, its text fails the contrast check although it is never read like that).
    still = {"reduced_motion": "reduce"}
    visitor = watched(**still).new_page()
    visitor.goto("/")
    # axe does find what it should: a nameless button and light grey text, planted on the home page.
    visitor.evaluate("""() => document.querySelector('main').insertAdjacentHTML('afterbegin',
        '<button type=button data-canary></button><p data-canary style="color:#c8c8c8;background:#fff">Faint</p>')""")
    planted = " ".join(_axe_problems(visitor, origin))
    assert "button-name" in planted and "color-contrast" in planted, f"axe missed the planted violations: {planted}"
    for path in ("/", "/ideas", f"/ideas/{site.vote_idea}", f"/ideas/{site.campaign_idea}", "/campaigns",
                 "/login", "/signup", "/shop", f"/shop/{site.product_slug}", "/cart"):
        audit(visitor, path)

    member = watched(storage_state=site.member_state, **still).new_page()
    audit(member, "/")
    member.locator("details.account-menu:not(.staff-menu) > summary").click()  # the open account menu too
    expect(member.get_by_role("link", name="Points history")).to_be_visible()
    audit(member)
    for path in ("/ideas/new", f"/ideas/{site.campaign_idea}", f"/ideas/{site.vote_idea}"):
        audit(member, path)
    member.get_by_role("button", name="I want this").click()  # the voted state, swapped in by htmx
    expect(member.get_by_role("button", name=re.compile("You want this"))).to_be_visible()
    audit(member)
    member.get_by_role("button", name=re.compile("You want this")).click()
    expect(member.get_by_role("button", name="I want this")).to_be_visible()
    audit(member, f"/shop/{site.product_slug}")
    flows.add_to_cart(member)  # the "Added to your cart" message; then the cart and the checkout with a line
    audit(member)
    for path in ("/cart", "/checkout", "/orders", f"/orders/{site.order_number}", f"/members/{site.member_handle}",
                 "/points", "/notifications", "/notifications/settings"):
        audit(member, path)

    staff = watched(storage_state=site.staff_state, **still).new_page()
    audit(staff, "/staff/moderation")
    expect(staff.locator("main")).to_contain_text("Would it come in a child size too?")  # the reported comment
    for path in ("/staff/dashboard", "/staff/review", f"/staff/campaigns/{site.campaign_id}",
                 "/staff/products", f"/staff/orders/{site.order_number}", "/staff/experiments",
                 f"/staff/experiments/{EXPERIMENT_KEY}"):
        audit(staff, path)
    staff.locator("details.staff-menu > summary").click()
    expect(staff.get_by_role("link", name="Moderation")).to_be_visible()
    audit(staff)

    assert len(visited) == 35, visited
    problems += watched.problems() + site.setup_problems
    assert not problems, f"{len(problems)} problems on {len(visited)} pages:\n" + "\n".join(problems)


# ---- 2. the keyboard -------------------------------------------------------------------------


def test_main_actions_work_with_the_keyboard(site, watched, live_server):
    visitor = watched().new_page()
    visitor.goto("/")
    _page_ready(visitor)

    # The first Tab shows the skip link; Enter moves the focus to the main content.
    visitor.keyboard.press("Tab")
    skip = visitor.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0 and box["width"] > 0, f"skip link off screen: {box}"
    visitor.keyboard.press("Enter")
    expect(visitor.locator("main#main")).to_be_focused()

    # Tab reaches the main navigation and each page's primary control, every stop with a visible focus.
    member = watched(storage_state=site.member_state).new_page()
    problems: list[str] = []

    def check_tab_order(pages) -> None:  # noqa: ANN001
        for page, path, primary in pages:
            page.goto(path)
            log = _tab_through(page, primary(page))
            reached = [entry["target"] for entry in log if entry["target"]]
            problems.extend(f"{path}: Tab never reached the main nav link {name!r}"
                            for name in MAIN_NAV if f"nav:{name}" not in reached)
            if "primary" not in reached:
                problems.append(f"{path}: Tab never reached the primary control ({len(log)} stops)")
            problems.extend(f"{path}: no visible focus on <{e['tag']}> {e['name']!r}" for e in log if not e["visible"])

    check_tab_order([
        (visitor, "/login", lambda p: p.get_by_role("button", name="Log in")),
        (visitor, "/signup", lambda p: p.get_by_role("button", name="Create my account")),
        (visitor, "/ideas", lambda p: p.locator(".card-title a").first),
        (visitor, f"/shop/{site.product_slug}", lambda p: p.get_by_role("button", name="Add to cart")),
        (member, "/ideas/new", lambda p: p.get_by_role("button", name="Submit for review")),
        (member, f"/ideas/{site.vote_idea}", lambda p: p.locator(f"#vote-{site.vote_idea} button[type=submit]")),
        (member, f"/ideas/{site.campaign_idea}", lambda p: p.locator("form.pledge-form button[type=submit]")),
        (member, "/notifications/settings", lambda p: p.locator("main button[type=submit]").last),
    ])

    # Vote with Enter, withdraw with Space: the count follows, focus visible on the button.
    member.goto(f"/ideas/{site.vote_idea}")
    _page_ready(member)
    before = int(flows.vote_count(member))
    _tab_to(member, member.get_by_role("button", name="I want this"))
    assert _focus_shows(member), "the vote button has the focus but shows no outline"
    member.keyboard.press("Enter")
    expect(member.get_by_test_id("vote-count")).to_have_text(str(before + 1))
    withdraw = member.get_by_role("button", name=re.compile("You want this"))
    expect(withdraw).to_have_attribute("aria-pressed", "true")
    member.evaluate("() => window.scrollTo(0, 0)")
    _tab_to(member, withdraw)
    member.keyboard.press("Space")
    expect(member.get_by_test_id("vote-count")).to_have_text(str(before))
    expect(member.get_by_role("button", name="I want this")).to_be_visible()

    # Add to cart with the keyboard: the header badge counts one more.
    member.goto(f"/shop/{site.product_slug}")
    _page_ready(member)
    in_cart = int(flows.cart_badge_count(member) or 0)
    _tab_to(member, member.get_by_role("button", name="Add to cart"))
    assert _focus_shows(member), "the Add to cart button has the focus but shows no outline"
    member.keyboard.press("Enter")
    expect(member.locator("#cart-message")).to_contain_text("Added to your cart.")
    expect(member.locator("#cart-badge [data-testid=cart-count]")).to_have_text(str(in_cart + 1))

    # With a line in the cart: the cart's "Check out" and the checkout's pay button.
    check_tab_order([
        (member, "/cart", lambda p: p.get_by_role("link", name="Check out")),
        (member, "/checkout", lambda p: p.locator("#pay-button")),
    ])
    assert not problems, "\n".join(problems)

    problems = watched.problems()
    assert not problems, "\n".join(problems)


# ---- 3. the CSRF header on htmx requests -----------------------------------------------------


def test_htmx_state_changes_carry_the_csrf_header(site, watched, live_server):
    origin = live_server.url
    page = watched(storage_state=site.member_state).new_page()
    sent: list[dict] = []
    answers: dict[str, int] = {}

    def on_request(request) -> None:  # noqa: ANN001 (playwright Request)
        headers = request.headers  # lower-case names
        if request.method != "GET" and headers.get("hx-request") == "true" and request.url.startswith(origin):
            sent.append({"what": f"{request.method} {request.url.removeprefix(origin)}",
                         "token": headers.get("x-csrftoken", "")})

    def on_response(response) -> None:  # noqa: ANN001 (playwright Response)
        request = response.request
        if request.method != "GET" and request.headers.get("hx-request") == "true":
            answers[f"{request.method} {request.url.removeprefix(origin)}"] = response.status

    page.on("request", on_request)
    page.on("response", on_response)

    def page_token() -> str:
        token = json.loads(page.locator("body").get_attribute("hx-headers") or "{}").get("x-csrftoken", "")
        assert token, f"no x-csrftoken in <body hx-headers> on {page.url}"
        return token

    # Vote and withdraw, follow and unfollow, comment: all htmx, all in place.
    page.goto(f"/ideas/{site.vote_idea}")
    _page_ready(page)
    token = page_token()
    before = int(flows.vote_count(page))
    page.get_by_role("button", name="I want this").click()
    expect(page.get_by_test_id("vote-count")).to_have_text(str(before + 1))
    page.get_by_role("button", name=re.compile("You want this")).click()
    expect(page.get_by_test_id("vote-count")).to_have_text(str(before))
    page.locator(".byline-row").get_by_role("button", name="Follow", exact=True).click()
    page.locator(".byline-row").get_by_role("button", name="✓ Following").click()
    expect(page.locator(".byline-row").get_by_role("button", name="Follow", exact=True)).to_be_visible()
    page.get_by_label("Your comment", exact=True).fill("Count me in for a yellow one.")
    page.locator("form.comment-form").get_by_role("button", name="Post comment").click()
    expect(page.locator("#comments .comment-body").filter(has_text="yellow one")).to_have_count(1)
    wrong = [s for s in sent if s["token"] != token]
    assert not wrong, f"htmx requests without the page's X-CSRFToken ({token[:8]}...): {wrong}"

    # Add to cart, change the quantity and remove the line in the cart.
    page.goto(f"/shop/{site.product_slug}")
    _page_ready(page)
    token = page_token()
    flows.add_to_cart(page)
    page.goto("/cart")
    _page_ready(page)
    cart_token = page_token()
    assert cart_token == token  # one token per session
    line = page.locator("#cart .cart-line").first
    line.get_by_label("Quantity").select_option("2")  # htmx posts on change
    expect(page.get_by_test_id("cart-subtotal")).to_contain_text(re.compile(r"398[.,]00"))
    while page.locator("#cart .cart-line").count():
        count = page.locator("#cart .cart-line").count()
        page.locator("#cart .cart-line").first.get_by_role("button", name=re.compile("^Remove")).click()
        expect(page.locator("#cart .cart-line")).to_have_count(count - 1)

    what = [s["what"] for s in sent]
    vote = site.vote_idea
    for expected in (f"POST /ideas/{vote}/vote", f"POST /ideas/{vote}/unvote", "POST /follow",
                     f"POST /ideas/{vote}/comments", "POST /cart/lines"):
        assert expected in what, f"htmx never sent {expected}: {what}"
    assert any(re.fullmatch(r"POST /cart/lines/\d+", w) for w in what), what
    assert any(re.fullmatch(r"POST /cart/lines/\d+/remove", w) for w in what), what
    missing = [s["what"] for s in sent if not s["token"]]
    assert not missing, f"htmx requests without X-CSRFToken: {missing}"
    wrong = [s["what"] for s in sent if s["token"] != token]
    assert not wrong, f"htmx requests with another token than the page's: {wrong}"
    refused = {w: status for w, status in answers.items() if status >= 400}
    assert not refused, f"htmx requests refused: {refused}"

    problems = watched.problems()
    assert not problems, "\n".join(problems)
