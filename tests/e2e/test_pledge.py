"""Pre-orders in a real browser: staff greenlights a campaign, members pledge with the (fake)
Stripe.js card element against localstripe, and open idea pages follow the numbers live
(server-sent events)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e


def _progress(page: Page):
    return page.get_by_test_id("campaign-progress")


def _expect_numbers(page: Page, units: int, backers: int) -> None:
    progress = _progress(page)
    expect(progress.get_by_test_id("pledged-units")).to_have_text(str(units))
    expect(progress.get_by_test_id("backers")).to_have_text(str(backers))


def _wait_for_webhook_events(live_server, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = live_server.fetch("SELECT type, outcome FROM stripe_event")
        if rows:
            return rows
        assert time.monotonic() < deadline, (
            "localstripe's webhook events never reached /webhooks/stripe (signature or URL wrong?)"
        )
        time.sleep(0.3)


def test_pledge_with_card_updates_open_pages_live(new_context, campaign, live_server):
    idea_id, campaign_id = campaign("Merino cycling cap", price="49", goal_units=20, variants=("S", "M", "L"))

    # Someone else (not logged in) has the idea page open, with the live stream connected.
    viewer = new_context().new_page()
    viewer.goto(f"/ideas/{idea_id}")
    expect(viewer.locator("#pledge").get_by_role("link", name="Log in to pre-order")).to_be_visible()
    _expect_numbers(viewer, 0, 0)
    viewer_url = flows.arm_no_reload_marker(viewer)
    flows.wait_for_live_stream(viewer)
    assert viewer.locator("[sse-connect]").get_attribute("sse-connect") == f"/campaigns/{campaign_id}/live"

    # Backer A, a verified member, in a context of their own.
    backer, _ = flows.sign_up_verified(new_context(), "Bea Backer")
    pledge_id = flows.start_pledge(backer, idea_id, variant="M", quantity=2)
    expect(backer.get_by_test_id("pledge-amount")).to_have_text(re.compile(r"98[.,]00"))
    expect(backer.get_by_test_id("consent")).to_contain_text("charged only if the campaign is funded")
    _expect_numbers(viewer, 0, 0)  # a pending pledge (no card yet) does not count

    flows.fill_card(backer, flows.CARD_OK)
    backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
    backer.wait_for_url("**/me/pledges")
    expect(backer.locator(".flash-success")).to_contain_text("Your pledge of 2 unit(s) is active")
    row = backer.locator(f"#pledge-{pledge_id}")
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row).to_contain_text("2 × M")

    # The other open page follows without a reload (server-sent events).
    _expect_numbers(viewer, 2, 1)
    expect(_progress(viewer)).to_contain_text("of 20 units pre-ordered")
    flows.assert_not_reloaded(viewer, viewer_url)

    # localstripe's signed webhook events reach the server and are recorded.
    events = _wait_for_webhook_events(live_server)
    assert any(e["type"].startswith("customer.") and e["outcome"] == "ignored" for e in events), events

    # Backer A changes the quantity in place (htmx) on My pledges.
    my_url = flows.arm_no_reload_marker(backer)
    row.get_by_label("Quantity").select_option("3")
    row.get_by_role("button", name="Change").click()
    row = backer.locator(f"#pledge-{pledge_id}")
    expect(row.get_by_role("status")).to_have_text("Saved.")
    expect(row).to_contain_text("3 × M")
    expect(row).to_contain_text(re.compile(r"147[.,]00"))
    expect(row.locator(".badge")).to_have_text("Active")
    flows.assert_not_reloaded(backer, my_url)
    _expect_numbers(viewer, 3, 1)  # the change is live too
    flows.assert_not_reloaded(viewer, viewer_url)

    # Stored: a fresh load agrees, and so does the idea page.
    backer.reload()
    expect(backer.locator(f"#pledge-{pledge_id}")).to_contain_text("3 × M")
    expect(backer.locator(f"#pledge-{pledge_id}").get_by_label("Quantity")).to_have_value("3")
    backer.goto(f"/ideas/{idea_id}")
    expect(backer.get_by_test_id("my-pledge")).to_contain_text("3 × M")
    _expect_numbers(backer, 3, 1)


def test_declined_card_at_setup_keeps_the_pledge_pending(new_context, campaign):
    idea_id, _ = campaign("Reflective ankle band", price="15", goal_units=50, variants=("One size",))
    backer, _ = flows.sign_up_verified(new_context(), "Dee Declined")
    pledge_id = flows.start_pledge(backer, idea_id, variant="One size", quantity=1)
    card_url = backer.url

    flows.fill_card(backer, flows.CARD_DECLINED)
    backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
    error = backer.locator("[data-card-error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Your card was declined")
    expect(backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$"))).to_be_enabled()  # can try again
    assert backer.url == card_url

    # Nothing is active: the pledge waits for a card and the campaign does not count it.
    backer.goto("/me/pledges")
    row = backer.locator(f"#pledge-{pledge_id}")
    expect(row.locator(".badge")).to_have_text("Waiting for your card")
    expect(row.get_by_role("link", name="Save your card to finish")).to_have_attribute(
        "href", f"/pledges/{pledge_id}/card"
    )
    backer.goto(f"/ideas/{idea_id}")
    _expect_numbers(backer, 0, 0)
    expect(backer.get_by_test_id("my-pledge")).to_contain_text("save your card to finish")

    # Another card on the same form finishes the pledge.
    backer.get_by_test_id("my-pledge").get_by_role("link", name="save your card to finish").click()
    backer.wait_for_url(f"**/pledges/{pledge_id}/card")
    flows.fill_card(backer, flows.CARD_OK)
    backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
    backer.wait_for_url("**/me/pledges")
    expect(backer.locator(f"#pledge-{pledge_id}").locator(".badge")).to_have_text("Active")
    backer.goto(f"/ideas/{idea_id}")
    _expect_numbers(backer, 1, 1)


def test_3d_secure_card_at_setup(new_context, campaign):
    idea_id, _ = campaign("Heated bike grips", price="35", goal_units=30, variants=("Black", "Orange"))
    backer, _ = flows.sign_up_verified(new_context(), "Tia Threeds")
    pledge_id = flows.start_pledge(backer, idea_id, variant="Orange", quantity=1)

    flows.fill_card(backer, flows.CARD_3DS)
    backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
    complete = backer.get_by_role("button", name="Complete authentication")
    expect(complete).to_be_visible()
    expect(backer.get_by_role("button", name="Fail authentication")).to_be_visible()
    assert "/pledges/" in backer.url  # still on the card page while the bank asks

    complete.click()
    backer.wait_for_url("**/me/pledges")
    row = backer.locator(f"#pledge-{pledge_id}")
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row).to_contain_text("1 × Orange")
    backer.goto(f"/ideas/{idea_id}")
    _expect_numbers(backer, 1, 1)
