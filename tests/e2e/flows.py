"""What a person does in the browser, step by step (shared by the e2e tests)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

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
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url("**/welcome")
    expect(page.locator(".flash-success")).to_contain_text(f"Welcome, {person.name}")


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
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".flash-success")).to_contain_text("Welcome back")


def log_out(page: Page) -> None:
    page.locator("details.account-menu > summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.locator(".flash-info")).to_contain_text("You are logged out")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


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
