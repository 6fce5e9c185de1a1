"""Conversation in the browser: following an idea, comments posted with htmx, an @mention that
reaches the other member's notification bell by its own polling, markup shown as text, and the
comment form used with the keyboard alone."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e

BELL_POLL_S = 15  # templates/base.html: hx-trigger="load, every 15s"


def _own_handle(page: Page) -> str:
    """The member's handle, from the "My profile" link in the account menu (closed: not visible)."""
    href = page.locator("details.account-menu a", has_text="My profile").get_attribute("href") or ""
    match = re.fullmatch(r"/members/([a-z0-9_-]+)", href)
    assert match, f"no profile link in the account menu: {href!r}"
    return match.group(1)


def _open_idea_with_bell(page: Page, idea_id: int) -> None:
    """Open the idea page and wait for the bell's first ("load") poll to be answered."""
    with page.expect_response(lambda r: r.url.endswith("/notifications/bell") and r.ok):
        page.goto(f"/ideas/{idea_id}")


def _comment_id(page: Page, body: str) -> int:
    item = page.locator("#comments li.comment").filter(has=page.locator(".comment-body", has_text=body))
    expect(item).to_have_count(1)
    match = re.fullmatch(r"comment-(\d+)", item.get_attribute("id") or "")
    assert match, "a comment without its comment-<id> anchor"
    return int(match.group(1))


def test_follow_mention_and_bell(new_context, approved_idea):
    title = "Modular bike pannier"
    idea_id = approved_idea(title, image=False)

    # Both members sign up first, so the wait for the bell's poll starts as late as possible.
    a_page, _ = flows.sign_up_verified(new_context(), "Ann Follower")
    a_handle = _own_handle(a_page)
    b_page, _ = flows.sign_up_verified(new_context(), "Ben Commenter")
    dialogs: list[str] = []
    for page in (a_page, b_page):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # 1. A follows the idea: the button is swapped in place by htmx.
    _open_idea_with_bell(a_page, idea_id)
    a_url = flows.arm_no_reload_marker(a_page)
    expect(a_page.locator("#bell")).to_be_visible()
    expect(a_page.get_by_test_id("bell-count")).to_have_count(0)  # nothing unread yet
    follow = a_page.locator(".byline-row form.follow-form")
    follow.get_by_role("button", name="Follow", exact=True).click()
    following = a_page.locator(".byline-row").get_by_role("button", name="✓ Following")
    expect(following).to_be_visible()
    expect(following).to_have_attribute("aria-pressed", "true")
    flows.assert_not_reloaded(a_page, a_url)
    polled_at = time.monotonic()  # the bell's next poll comes BELL_POLL_S after its first one at the latest

    # 2. B comments on the idea and mentions A; #comments is swapped in without a reload.
    body = f"Love it, @{a_handle}! Would a clip-on rain cover fit too?"
    b_page.goto(f"/ideas/{idea_id}")
    b_url = flows.arm_no_reload_marker(b_page)
    expect(b_page.locator("#comments-title .count")).to_have_text("0")
    b_page.get_by_label("Your comment", exact=True).fill(body)
    b_page.locator("form.comment-form").get_by_role("button", name="Post comment").click()
    expect(b_page.locator("#comments .comment-body")).to_have_text([body])
    expect(b_page.locator("#comments-title .count")).to_have_text("1")
    expect(b_page.get_by_label("Your comment", exact=True)).to_have_value(
        ""
    )  # a fresh form came with the swap
    flows.assert_not_reloaded(b_page, b_url)
    comment_id = _comment_id(b_page, body)
    expect(b_page.locator(f"#comment-{comment_id} .comment-author")).to_have_text("Ben Commenter")

    # 3. A's page, still open and never reloaded, shows 1 unread once the bell polls again.
    expect(a_page.get_by_test_id("bell-count")).to_have_text("1", timeout=(BELL_POLL_S + 5) * 1000)
    assert time.monotonic() - polled_at < BELL_POLL_S + 5
    expect(a_page.locator("#bell")).to_have_attribute("aria-label", "Notifications: 1 unread")
    flows.assert_not_reloaded(a_page, a_url)
    expect(a_page.locator("#comments .comment-body")).to_have_count(0)  # only the bell was refreshed

    # The bell leads to the list, and the notification to the comment on the idea page.
    a_page.locator("#bell").click()
    a_page.wait_for_url("**/notifications")
    expect(a_page.get_by_role("heading", level=1)).to_have_text("Notifications")
    items = a_page.locator(".notification-list li.notification")
    expect(items).to_have_count(1)
    item = items.first
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    expect(item).to_contain_text(f"Ben Commenter mentioned you on {title}")
    expect(item).to_contain_text(body)
    item.get_by_role("button").click()
    a_page.wait_for_url(re.compile(rf"/ideas/{idea_id}#comment-{comment_id}$"))
    expect(a_page.get_by_role("heading", level=1)).to_have_text(title)
    comment = a_page.locator(f"#comment-{comment_id}")
    expect(comment.locator(".comment-body")).to_have_text(body)
    expect(comment).to_be_in_viewport()
    # Read now: the bell (asked again on this page load) has nothing unread.
    expect(a_page.locator("#bell")).to_have_attribute("aria-label", "Notifications")
    expect(a_page.get_by_test_id("bell-count")).to_have_count(0)
    # A still follows the idea after a full page load.
    expect(a_page.locator(".byline-row").get_by_role("button", name="✓ Following")).to_be_visible()
    assert dialogs == []


def test_comment_markup_is_text_and_form_works_with_keyboard(new_context, approved_idea):
    idea_id = approved_idea("Collapsible water bottle", image=False)
    page, _ = flows.sign_up_verified(new_context(), "Kai Keyboard")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/ideas/{idea_id}")
    url = flows.arm_no_reload_marker(page)

    # 5. Tab reaches the comment box; type there, Tab once more to "Post comment", press Enter.
    focused_id = "() => document.activeElement && document.activeElement.id"
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate(focused_id) == "comment-body":
            break
    else:
        pytest.fail("Tab never reached the comment textarea")
    markup = "<img src=x onerror=alert(1)>"
    page.keyboard.type(markup)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const el = document.activeElement;"
        " return {tag: el.tagName, text: el.textContent.trim(), form: !!el.closest('form.comment-form')}; }"
    )
    assert focused == {"tag": "BUTTON", "text": "Post comment", "form": True}, focused
    page.keyboard.press("Enter")

    # 4. The markup is shown as text, through the htmx swap and after a full load; no dialog.
    body = page.locator("#comments .comment-body")
    expect(body).to_have_text([markup])
    flows.assert_not_reloaded(page, url)
    assert page.locator("#comments img").count() == 0
    page.reload()
    expect(body).to_have_text([markup])
    assert page.locator("#comments img").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would fire as soon as the (broken) image failed
    assert dialogs == [], f"markup from a comment ran: {dialogs}"
