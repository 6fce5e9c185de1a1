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
