"""A/B experiment in a real browser: staff define and start an experiment on the pledge button's
text, two members each see their own (deterministic) variant on every visit, one pledges with the
(fake) Stripe.js card element, and the results page counts that conversion for that variant."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.experiments.service import assign
from tests.e2e import flows

pytestmark = pytest.mark.e2e

KEY = "pledge_button"
VARIANTS = (("Pre-order now", 50), ("Back this project", 50))
DEFAULT_LABEL = "Pre-order: continue to card"


def _pledge_button(page: Page):
    return page.locator("form.pledge-form button[type=submit]")


def _create_and_start(staff: Page) -> None:
    staff.goto("/staff/experiments")
    expect(staff.get_by_role("heading", level=1)).to_have_text("Experiments")
    staff.get_by_label("Key").fill(KEY)
    staff.get_by_label("Title").fill("Pledge button text")
    staff.get_by_label("Hypothesis").fill("Plain words make more people pledge.")
    staff.get_by_label("Goal event").select_option(label="Pledges (card saved)")
    for index, (name, weight) in enumerate(VARIANTS):
        staff.get_by_label(re.compile(rf"^Variant {index + 1} name")).fill(name)
        staff.get_by_label(f"Variant {index + 1} weight").fill(str(weight))
    staff.get_by_role("button", name="Create experiment").click()
    staff.wait_for_url(f"**/staff/experiments/{KEY}")
    expect(staff.locator(".flash-success")).to_contain_text("saved as a draft")
    expect(staff.get_by_test_id("experiment-status")).to_have_text("Draft")
    staff.get_by_role("button", name="Start experiment").click()
    staff.wait_for_url(f"**/staff/experiments/{KEY}")
    expect(staff.get_by_test_id("experiment-status")).to_have_text("Running")


def _stop_and_delete(staff: Page) -> None:
    """Cleanup through the UI, so later browser tests see the default pledge button again."""
    staff.goto(f"/staff/experiments/{KEY}")
    if staff.get_by_role("button", name="Stop and ship").count():
        staff.get_by_role("radio", name=re.compile(r"\(control\)")).check()
        staff.get_by_role("button", name="Stop and ship").click()
        expect(staff.get_by_test_id("shipped")).to_contain_text(VARIANTS[0][0])
    staff.get_by_role("button", name=re.compile("^Delete experiment")).click()
    staff.wait_for_url("**/staff/experiments")


def _variant_of(live_server, email: str) -> str:
    """What assignment must give this member: from the subject stored at sign-up/login."""
    row = live_server.fetch(f"SELECT id, ab_subject FROM member WHERE email = '{email}'")[0]
    subject = row["ab_subject"] or f"m:{row['id']}"
    return assign(KEY, subject, [{"name": n, "weight": w} for n, w in VARIANTS])


def test_pledge_button_experiment_from_start_to_results(new_context, accounts, approved_idea, live_server,
                                                        screenshot_dir):
    staff = new_context(storage_state=accounts.staff_state).new_page()
    idea_id = approved_idea("Wool bike gloves", image=False)
    flows.greenlight(staff, idea_id, price="39", goal_units=30, variants=("S", "M"))
    _create_and_start(staff)
    try:
        # Members sign up until both variants have a member (50/50: usually two or three).
        seen: dict[str, tuple[Page, flows.Person]] = {}
        for n in range(8):
            page, person = flows.sign_up_verified(new_context(), f"Tester {n}")
            page.goto(f"/ideas/{idea_id}")
            label = _pledge_button(page).inner_text().strip()
            assert label in dict(VARIANTS), f"the pledge button shows {label!r}"
            assert label == _variant_of(live_server, person.email)  # deterministic, not random per page
            seen.setdefault(label, (page, person))
            if len(seen) == len(VARIANTS):
                break
        assert len(seen) == len(VARIANTS), "eight members and still only one variant"

        # Each member sees the same variant on a second visit (and in a new tab).
        for label, (page, _) in seen.items():
            page.reload()
            expect(_pledge_button(page)).to_have_text(label)
            again = page.context.new_page()
            again.goto(f"/ideas/{idea_id}")
            expect(_pledge_button(again)).to_have_text(label)
            again.close()

        # One of them pledges through the fake Stripe.js.
        backer_label = VARIANTS[1][0]
        backer, _ = seen[backer_label]
        form = backer.locator("form.pledge-form")
        form.get_by_role("radio", name="M", exact=True).check()
        form.get_by_role("checkbox", name=re.compile("I agree that my card is saved")).check()
        form.get_by_role("button", name=backer_label).click()
        backer.wait_for_url(re.compile(r"/pledges/\d+/card$"))
        flows.fill_card(backer, flows.CARD_OK)
        backer.get_by_role("button", name=re.compile(r"^Pledge .*, charged only if funded$")).click()
        backer.wait_for_url("**/me/pledges")
        expect(backer.locator(".flash-success")).to_contain_text("is active")

        # The results page: one exposure per member shown the button, one conversion for the backer's variant.
        staff.goto(f"/staff/experiments/{KEY}")
        results = staff.get_by_test_id("results")
        for label, _ in VARIANTS:
            row = results.locator(f'tr[data-variant="{label}"]')
            expect(row.get_by_test_id("conversions")).to_have_text("1" if label == backer_label else "0")
        expect(results.locator(f'tr[data-variant="{backer_label}"]').get_by_test_id("rate")).to_contain_text("%")
        expect(staff.locator(".notice-warning").first).to_contain_text("Too few")
        exposures = live_server.fetch(
            "SELECT e.variant, e.converted_at FROM experiment_exposure e JOIN experiment x ON x.id = e.experiment "
            f"WHERE x.key = '{KEY}'")
        converted = [r["variant"] for r in exposures if r["converted_at"] is not None]
        assert converted == [backer_label]
        assert {r["variant"] for r in exposures} == set(dict(VARIANTS))

        # The same pages in Swedish, with the footer's language picker (issue 8): screenshots of
        # the results and the dashboard at desktop width are kept as test artifacts.
        staff.set_viewport_size({"width": 1280, "height": 900})
        staff.get_by_label("Language").select_option("sv")
        staff.get_by_role("button", name="Change").click()
        expect(staff.locator("html")).to_have_attribute("lang", "sv")
        expect(staff.locator("#results-title")).to_have_text("Resultat")
        expect(results.locator("thead")).to_contain_text("Konverteringsgrad")
        staff.screenshot(path=str(screenshot_dir / "experiment-results-sv.png"), full_page=True)
        staff.goto("/staff/dashboard")
        expect(staff.get_by_role("heading", level=1)).to_have_text("Översikt")
        expect(staff.locator(".chart-data summary").first).to_have_text("Visa siffrorna")
        staff.screenshot(path=str(screenshot_dir / "dashboard-sv.png"), full_page=True)
        staff.get_by_label("Språk").select_option("en")
        staff.get_by_role("button", name="Byt").click()
        expect(staff.locator("html")).to_have_attribute("lang", "en")
    finally:
        _stop_and_delete(staff)

    # Deleted: the pledge button shows its default text again.
    other_page, _ = next(iter(seen.values()))
    other_page.goto(f"/ideas/{idea_id}")
    if _pledge_button(other_page).count():
        expect(_pledge_button(other_page)).to_have_text(DEFAULT_LABEL)
