"""The whole life of an idea, in one browser journey through the real UI of the live server:
a visitor signs up and submits an idea, staff approve it, members vote for it, staff greenlight
it into a pre-order campaign, two backers pledge with the fake Stripe.js (one card asks for
3-D Secure again when it is charged), staff close the campaign, the charges settle, staff ship
the pre-orders with tracking numbers and publish the product, and a backer follows the parcel,
reviews the product and sees the points and badges it earned.

The close is the staff dashboard's "Close now (settles as at the deadline)" button; settlement
and the charges are the jobs the live server's in-process worker runs (JOBS_IN_PROCESS=true),
as they would at the deadline.

Every page is watched (flows.watch_context): no JavaScript console errors or uncaught page errors,
and every unsafe htmx/fetch request carries the CSRF header. Screenshots of the main pages go to
the screenshot_dir fixture ($E2E_SCREENSHOTS or a pytest temporary directory).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TRACKING_A = "PN0042913377SE"
TRACKING_B = "PN0042913378SE"


def _money(major: int) -> re.Pattern:
    return re.compile(rf"{major}[.,]00")


def _shot(page: Page, directory: Path, name: str) -> None:
    page.wait_for_function("() => [...document.images].every((img) => img.complete || img.loading === 'lazy')")
    page.screenshot(path=str(directory / f"idea-life-{name}.png"), full_page=True)


def test_the_life_of_an_idea(watched, accounts, live_server, png_file, screenshot_dir):
    title = "Solar-charged bike light"

    # 1. A visitor signs up, confirms the email from the link in the dev mailbox, and submits
    #    an idea with a picture.
    author_page = watched.context(viewport=DESKTOP).new_page()
    author = flows.new_person("Ines Inventor")
    flows.sign_up(author_page, author)
    flows.open_verification_link(author_page, author)
    flows.confirm_email(author_page)
    idea_id = flows.submit_idea(author_page, title=title, image=png_file,
                                summary="A bike light that charges in the sun while you ride.")
    flows.expect_idea_in_review(author_page, title)
    expect(author_page.locator(".idea-head .badge")).to_have_text("In review")

    # 2. Staff approve it from the review queue; the author sees it open for votes.
    staff = watched.context(storage_state=accounts.staff_state, viewport=DESKTOP).new_page()
    flows.approve_idea(staff, title, idea_id)
    author_page.reload()
    expect(author_page.locator(".idea-head .badge")).to_have_text("Voting open")
    expect(author_page.locator(".vote-box")).to_contain_text("This is your idea. Share it to gather votes!")
    expect(author_page.locator(".vote-box")).to_contain_text("2 more votes until our team reviews it")
    _shot(author_page, screenshot_dir, "idea-desktop")

    # 3. Two other members vote for it (SUPPORT_THRESHOLD=2: it becomes "ready for review").
    bea, bea_person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Bea Backer")
    tom, tom_person = flows.sign_up_verified(watched.context(viewport=DESKTOP), "Tom Threeds")
    flows.vote_for(bea, idea_id, expected_count=1)
    expect(bea.locator(".vote-box")).to_contain_text("1 more vote until our team reviews it")
    flows.vote_for(tom, idea_id, expected_count=2)
    expect(tom.locator(".vote-box .badge-ready")).to_have_text("Ready for review")

    # 4. Staff find it among the ideas ready for review and greenlight a campaign whose goal
    #    two units reach.
    staff.goto("/staff/review")
    ready = staff.locator("section", has=staff.get_by_role("heading", name=re.compile("^Ready for review")))
    row = ready.locator("tbody tr").filter(has=staff.locator(f'a[href="/ideas/{idea_id}"]'))
    expect(row.locator("td").nth(1)).to_have_text("2")
    row.get_by_role("link", name=title).click()
    staff.wait_for_url(f"**/ideas/{idea_id}")
    campaign_id = flows.greenlight(staff, idea_id, price="49", goal_units=2, variants=("Black", "Silver"))
    expect(staff.locator(".idea-head .badge")).to_have_text("On pre-order")
    expect(staff.get_by_test_id("campaign-progress")).to_contain_text("0 of 2 units pre-ordered")

    # 5. Two backers pledge: Bea with a card that just works, Tom with one whose bank asks for
    #    3-D Secure when it is saved (and again when it is charged).
    bea_pledge = flows.start_pledge(bea, idea_id, variant="Black", quantity=1)
    expect(bea.get_by_test_id("pledge-amount")).to_have_text(_money(49))
    expect(bea.get_by_test_id("consent")).to_contain_text("charged only if the campaign is funded")
    flows.save_card_and_pledge(bea, flows.CARD_OK)
    expect(bea.locator(f"#pledge-{bea_pledge} .badge")).to_have_text("Active")

    tom_pledge = flows.start_pledge(tom, idea_id, variant="Silver", quantity=1)
    flows.save_card_and_pledge(tom, flows.CARD_3DS, authenticate=True)
    expect(tom.locator(f"#pledge-{tom_pledge} .badge")).to_have_text("Active")
    expect(tom.locator(f"#pledge-{tom_pledge}")).to_contain_text("1 × Silver")

    bea.goto(f"/ideas/{idea_id}")
    progress = bea.get_by_test_id("campaign-progress")
    expect(progress.get_by_test_id("pledged-units")).to_have_text("2")
    expect(progress.get_by_test_id("backers")).to_have_text("2")
    expect(progress).to_contain_text("Goal reached")
    expect(progress).to_contain_text(_money(98))
    expect(bea.get_by_test_id("my-pledge")).to_contain_text("You back this: 1 × Black")
    _shot(bea, screenshot_dir, "campaign-desktop")

    # 6. Staff close the campaign now: funded. The worker charges both cards; Bea's is paid, Tom's
    #    bank asks for authentication again, so his payment waits for him.
    flows.close_campaign_now(staff, campaign_id, outcome="Funded")
    settlement = staff.locator("section", has=staff.get_by_role("heading", name="Settlement"))
    failed = staff.locator("section", has=staff.get_by_role("heading", name="Failed payments"))
    # The two charges finish in any order: wait for each (neither changes again by itself).
    flows.reload_until(staff, lambda: settlement, re.compile(r"Charged .*49[.,]00.* of .*98[.,]00"))
    flows.reload_until(staff, lambda: failed, tom_person.email)
    expect(settlement).to_contain_text(re.compile(r"Charged .*49[.,]00.* of .*98[.,]00"))

    bea.goto("/me/pledges")
    flows.reload_until(bea, lambda: bea.locator(f"#pledge-{bea_pledge} .badge"), "Paid")
    tom.goto("/me/pledges")
    expect(tom.locator(f"#pledge-{tom_pledge} .badge")).to_have_text("Payment failed: action needed")
    expect(tom.locator(f"#pledge-{tom_pledge}").get_by_role("link", name="Fix my payment")).to_have_attribute(
        "href", f"/pledges/{tom_pledge}/fix")

    # Tom follows the link in the email and completes the authentication.
    email = flows.open_email(tom, tom_person.email, "Action needed")
    link = re.search(r"(https?://\S+/pledges/\d+/fix)", email)
    assert link, f"no link to fix the payment in the email:\n{email}"
    assert link.group(1) == f"{live_server.url}/pledges/{tom_pledge}/fix"
    tom.goto(link.group(1))
    expect(tom.get_by_role("heading", level=1)).to_have_text("Fix your payment")
    expect(tom.locator(".lead")).to_contain_text(title)
    expect(tom.get_by_role("heading", name="Your bank asks you to confirm the payment")).to_be_visible()
    tom.get_by_role("button", name="Authenticate the payment").click()
    tom.get_by_role("button", name="Complete authentication").click()
    tom.wait_for_url("**/me/pledges")
    expect(tom.locator(".flash-success")).to_contain_text("Thank you! Your payment went through.")
    expect(tom.locator(f"#pledge-{tom_pledge} .badge")).to_have_text("Paid")

    # Both paid: the dashboard shows everything charged and no failed payment left.
    staff.goto(f"/staff/campaigns/{campaign_id}")
    expect(settlement).to_contain_text(re.compile(r"Charged .*98[.,]00.* of .*98[.,]00"))
    expect(failed).to_contain_text("No failed payments.")
    expect(staff.locator(".panel .badge-campaign")).to_have_text("Funded: charging cards")

    # 7. The paid pledges are pre-orders; each backer gives a delivery address on the order page.
    bea_order = flows.open_my_order(bea, title)
    expect(bea.get_by_role("heading", level=1)).to_have_text(f"Order {bea_order}")
    expect(bea.locator(".order-head .badge")).to_have_text("Paid")
    expect(bea.locator(".order-status")).to_contain_text("Production starts soon.")
    expect(bea.locator(".order-lines")).to_contain_text(title)
    expect(bea.locator(".order-lines")).to_contain_text("Black")
    expect(bea.locator(".order-total")).to_contain_text(_money(49))
    flows.give_delivery_address(bea, flows.Address(name="Bea Backer", line1="Kungsgatan 1"))
    tom_order = flows.open_my_order(tom, title)
    flows.give_delivery_address(tom, flows.Address(name="Tom Threeds", line1="Vasagatan 7"))

    #    Staff move the campaign's pre-orders to production, then ship them with PostNord and a
    #    tracking number each (the fulfilment page's bulk update).
    flows.bulk_move_preorders(staff, campaign_id, to="in_production")
    expect(staff.locator(".flash-success")).to_contain_text("2 pre-order(s) moved to in production.")
    #    Tom's order waits its turn: second in the delivery queue.
    tom.goto(f"/orders/{tom_order}")
    expect(tom.get_by_test_id("queue-place")).to_contain_text("Your place in the delivery queue: 2 of 2")
    #    Staff post a milestone and move the estimated delivery, with the reason, on the dashboard.
    staff.goto(f"/staff/campaigns/{campaign_id}#delivery")
    staff.get_by_label("Milestone").fill("Sample approved")
    staff.get_by_role("button", name="Post milestone").click()
    expect(staff.locator(".flash-success")).to_contain_text("Milestone posted; backers are emailed.")
    staff.get_by_label("New estimated delivery").fill("2028-01-15")
    staff.get_by_label("Why (shown to backers)").fill("The lens supplier needs three more weeks.")
    staff.get_by_role("button", name="Change the date and tell backers").click()
    expect(staff.locator(".flash-success")).to_contain_text("Estimated delivery changed")
    #    Wave 1: Bea's parcel only; then the rest (Tom's) in wave 2.
    flows.ship_wave(staff, campaign_id, carrier="PostNord", tracking={bea_order: TRACKING_A})
    expect(staff.locator(".flash-success")).to_contain_text(
        "1 pre-order(s) marked shipped; the backers are emailed. Shipping wave 1 is on the campaign's delivery timeline.")
    tom.goto(f"/orders/{tom_order}")
    expect(tom.get_by_test_id("queue-place")).to_contain_text("Your place in the delivery queue: 1 of 1")
    expect(tom.get_by_test_id("eta-slip")).to_contain_text("The lens supplier needs three more weeks.")
    tom.goto(f"/ideas/{idea_id}#delivery")
    posts = tom.get_by_test_id("delivery-post")
    expect(posts).to_have_count(3)
    expect(posts.nth(0)).to_contain_text("Shipping wave 1 sent: 1 pre-order")
    expect(posts.nth(1)).to_contain_text("The lens supplier needs three more weeks.")
    expect(posts.nth(2)).to_contain_text("Sample approved")
    _shot(tom, screenshot_dir, "delivery-timeline-desktop")
    flows.bulk_move_preorders(staff, campaign_id, to="shipped", carrier="PostNord", tracking={tom_order: TRACKING_B})
    expect(staff.locator(".flash-success")).to_contain_text("Shipping wave 2 is on the campaign's delivery timeline.")
    results = staff.locator("#results")
    for number, tracking in ((bea_order, TRACKING_A), (tom_order, TRACKING_B)):
        order_row = results.locator("tbody tr", has=staff.get_by_role("link", name=number))
        expect(order_row.locator(".badge")).to_have_text("Shipped")
        expect(order_row).to_contain_text(tracking)

    #    Staff publish the funded campaign's product to the shop (reviews are of shop products).
    _, slug = flows.publish_campaign_product(staff, title, stock=20)

    # 8. Bea sees her parcel on its way, with the tracking number and the carrier's link.
    bea.goto(f"/orders/{bea_order}")
    expect(bea.locator(".order-head .badge")).to_have_text("Shipped")
    expect(bea.locator(".order-status h2")).to_have_text("On its way")
    expect(bea.locator(".order-status")).to_contain_text("Shipped with PostNord.")
    expect(bea.locator(".tracking-number")).to_have_text(TRACKING_A)
    track = bea.get_by_role("link", name=re.compile("Track with PostNord"))
    expect(track).to_have_attribute("href", f"https://tracking.postnord.com/se/?id={TRACKING_A}")
    expect(bea.locator(".order-timeline [aria-current=step]")).to_contain_text("Shipped")
    expect(bea.locator(".ship-to")).to_contain_text("Kungsgatan 1")
    _shot(bea, screenshot_dir, "order-desktop")
    shipped_email = flows.open_email(bea, bea_person.email, "is on its way")
    assert TRACKING_A in shipped_email and bea_order in shipped_email, shipped_email
    tom.goto(f"/orders/{tom_order}")
    expect(tom.locator(".tracking-number")).to_have_text(TRACKING_B)

    #    From the order she reaches the product in the shop and reviews it as a verified buyer.
    bea.goto(f"/orders/{bea_order}")
    bea.locator(".order-lines").get_by_role("link", name=title).click()
    bea.wait_for_url(f"**/shop/{slug}")
    expect(bea.get_by_role("heading", level=1)).to_have_text(title)
    flows.write_review(bea, stars=5, title="Bright and never flat",
                       body="Charges on the rack while I work; the beam is great on dark roads.")
    review = bea.locator(".review", has_text="Bright and never flat")
    expect(review).to_contain_text("Bea Backer")
    expect(review).to_contain_text("✓ Verified buyer")
    bea.reload()
    expect(bea.locator(".rating-summary")).to_contain_text("5.0")

    #    Her points: 50 (verified email) + 2 (vote) + 10 (one paid unit) + 20 (review) = 82, and
    #    her badges on her profile.
    bea.goto("/points")
    expect(bea.locator(".level-card")).to_contain_text("82 earned in total")
    history = bea.locator("table tbody")
    for what, points in (("Verified-buyer review", "+20"), ("Pledge paid (per unit)", "+10"),
                         ("Voted for an idea", "+2"), ("Signed up and verified your email", "+50")):
        expect(history.locator("tr", has_text=what).locator("td.num")).to_have_text(points)
    bea.locator("details.account-menu > summary").click()
    bea.get_by_role("link", name="My profile").click()
    bea.wait_for_url("**/members/*")
    expect(bea.get_by_role("heading", level=1)).to_have_text("Bea Backer")
    expect(bea.get_by_test_id("lifetime-points")).to_have_text("82")
    badges = bea.locator(".badge-grid")
    for badge in ("First vote", "First backer", "Reviewer"):
        expect(badges.locator(".earned-badge", has_text=badge)).to_have_count(1)
    _shot(bea, screenshot_dir, "profile-desktop")

    # The author's profile shows the idea's road: accepted, greenlit, funded (50 + 100 + 500 + 1000).
    author_page.goto(f"/ideas/{idea_id}")
    author_page.locator(".byline").get_by_role("link", name="Ines Inventor").click()
    expect(author_page.get_by_test_id("lifetime-points")).to_have_text(re.compile(r"^1[,. \u00a0\u202f]?650$"))
    expect(author_page.locator(".level-card .level-name")).to_have_text("Contributor")
    for badge in ("Idea maker", "Greenlit", "Funded creator"):
        expect(author_page.locator(".badge-grid .earned-badge", has_text=badge)).to_have_count(1)

    # What the pages showed matches the server's own records.
    orders = live_server.fetch(
        f"SELECT number, status, total, tracking_number FROM shop_order WHERE campaign_id = {campaign_id} ORDER BY number")
    assert sorted((o["number"], o["status"], o["total"], o["tracking_number"]) for o in orders) == sorted(
        [(bea_order, "shipped", 4900, TRACKING_A), (tom_order, "shipped", 4900, TRACKING_B)]), orders
    attempts = live_server.fetch(
        f"SELECT pledge, attempt, status FROM charge_attempt WHERE pledge IN ({bea_pledge}, {tom_pledge}) ORDER BY pledge")
    assert [(a["pledge"], a["status"]) for a in attempts] == [(bea_pledge, "paid"), (tom_pledge, "paid")], attempts
    watched.assert_clean()


def test_backer_on_a_phone_pledges_and_follows_the_order(watched, accounts, approved_idea, live_server,
                                                         screenshot_dir):
    """The backer's part at 390 px: pledge and order pages fit the screen (no sideways scrolling)."""
    title = "Pocket tyre pump"
    idea_id = approved_idea(title, image=True)
    staff = watched.context(storage_state=accounts.staff_state, viewport=DESKTOP).new_page()
    campaign_id = flows.greenlight(staff, idea_id, price="25", goal_units=1, variants=("One size",))

    phone, _ = flows.sign_up_verified(watched.context(viewport=PHONE, is_mobile=True, has_touch=True), "Pia Phone")
    overflow: list[str] = []

    def check(name: str, *, screenshot: bool = False) -> None:
        if screenshot:
            _shot(phone, screenshot_dir, f"{name}-phone")
        if problem := flows.horizontal_overflow(phone):
            overflow.append(f"{name}: {problem}")

    pledge_id = flows.start_pledge(phone, idea_id, variant="One size", quantity=2)
    expect(phone.get_by_test_id("pledge-amount")).to_have_text(_money(50))
    check("card", screenshot=True)
    flows.save_card_and_pledge(phone, flows.CARD_OK)
    expect(phone.locator(f"#pledge-{pledge_id} .badge")).to_have_text("Active")
    check("my-pledges")
    phone.goto(f"/ideas/{idea_id}")
    expect(phone.get_by_test_id("my-pledge")).to_contain_text("You back this: 2 × One size")
    check("campaign", screenshot=True)

    flows.close_campaign_now(staff, campaign_id, outcome="Funded")
    phone.goto("/me/pledges")
    flows.reload_until(phone, lambda: phone.locator(f"#pledge-{pledge_id} .badge"), "Paid")
    number = flows.open_my_order(phone, title)
    expect(phone.locator(".order-head .badge")).to_have_text("Paid")
    expect(phone.locator(".order-total")).to_contain_text(_money(50))
    check("order-address-form")
    flows.give_delivery_address(phone, flows.Address(name="Pia Phone"))
    expect(phone.get_by_role("heading", level=1)).to_have_text(f"Order {number}")
    check("order", screenshot=True)

    watched.assert_clean()
    assert not overflow, "pages wider than a 390 px phone:\n" + "\n".join(overflow)
