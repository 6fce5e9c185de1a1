"""Product safety (GPSR) in a real browser: staff create a draft product without its safety
information, "Put in the shop" is refused with the reason, they fill in the manufacturer, the
responsible person in the EU and the warnings, and then it goes in the shop, where its page shows
them (desktop and phone, with no sideways scrolling)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def test_staff_publish_a_product_only_with_its_safety_information(watched, live_server, screenshot_dir):
    staff = watched.context().new_page()
    flows.log_in(staff, live_server.staff_email, live_server.staff_password)
    staff.goto("/staff/products/new")
    staff.get_by_label(re.compile(r"^Name")).fill("Trail lantern")
    staff.get_by_label("One-line summary").fill("A rechargeable lantern for the tent.")
    staff.get_by_label("Status").select_option(label="Draft")
    staff.get_by_label(re.compile(r"^Price \(")).fill("349")
    staff.get_by_label("Variant 1 name", exact=True).fill("Green")
    staff.get_by_label("Variant 1 stock", exact=True).fill("8")
    staff.get_by_role("button", name="Create product").click()
    staff.wait_for_url(re.compile(r"/staff/products/\d+/edit$"))
    product_id = int(staff.url.rsplit("/", 2)[1])

    staff.get_by_role("button", name="Put in the shop").click()
    expect(staff.locator(".flash-error")).to_contain_text("Before it goes in the shop, fill in the product safety information")
    expect(staff.locator(".page-head .badge")).to_have_text("Draft")

    flows.fill_product_safety(staff)
    staff.get_by_role("button", name="Save changes").click()
    expect(staff.locator(".flash-success")).to_be_visible()
    flows.put_product_in_shop(staff, product_id)

    slug = (staff.get_by_role("link", name="View in the shop").get_attribute("href") or "").removeprefix("/shop/")
    shopper = watched.context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    shopper.goto(f"/shop/{slug}")
    safety = shopper.get_by_role("region", name="Product safety")
    expect(safety).to_contain_text("Nordvik Textil AB")
    expect(safety).to_contain_text("Keep away from open flames")
    shopper.screenshot(path=str(screenshot_dir / "product-safety-phone.png"), full_page=True)
    assert flows.horizontal_overflow(shopper) == ""
    watched.assert_clean()
