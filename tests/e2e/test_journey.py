"""The acceptance journey and the voting paths, in a real browser against the live server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import flows

pytestmark = pytest.mark.e2e


def test_journey_signup_verify_submit_review_vote(new_context, live_server, png_file):
    # 1. A visitor signs up with display name, email and password.
    author_ctx = new_context()
    page = author_ctx.new_page()
    author = flows.new_person("Jo Maker")
    flows.sign_up(page, author)

    # 2. The verification email arrives in the dev mailbox; its link opens a page with a
    #    button (a GET never changes state: still unconfirmed after opening the link).
    link = flows.open_verification_link(page, author, wait_delivered=True)
    assert link.startswith(live_server.url + "/verify?token=")
    page.goto("/account")  # opening the link confirmed nothing and logged no one in
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.goto(link)
    flows.confirm_email(page)

    # 3. The member submits an idea with an image.
    title = "Waterproof commuter backpack"
    idea_id = flows.submit_idea(page, title=title, image=png_file, category="Bags & Carry")
    flows.expect_idea_in_review(page, title)
    expect(page.locator(".breadcrumbs")).to_contain_text("Bags & Carry")

    # 4. The member logs out.
    flows.log_out(page)
    page.goto(f"/ideas/{idea_id}")
    expect(page.get_by_role("heading", level=1)).not_to_have_text(title)  # not public before review

    # 5. Staff logs in and approves the idea from the review queue.
    staff_page = new_context().new_page()
    flows.log_in(staff_page, live_server.staff_email, live_server.staff_password)
    flows.approve_idea(staff_page, title, idea_id)

    # 6. A second member (own browser context) signs up, verifies and votes without a reload.
    voter_ctx = new_context()
    voter_page, _ = flows.sign_up_verified(voter_ctx, "Vic Voter")
    voter_page.goto(f"/ideas/{idea_id}")
    expect(voter_page.get_by_role("heading", level=1)).to_have_text(title)
    expect(voter_page.get_by_test_id("vote-count")).to_have_text("0")
    url = flows.arm_no_reload_marker(voter_page)
    voter_page.get_by_role("button", name="I want this").click()
    expect(voter_page.get_by_test_id("vote-count")).to_have_text("1")
    expect(voter_page.get_by_role("button", name=re.compile("You want this"))).to_be_visible()
    expect(voter_page.locator(".vote-box")).to_contain_text("1 more vote until our team reviews it")
    flows.assert_not_reloaded(voter_page, url)

    # 7. Withdrawing works the same way.
    voter_page.get_by_role("button", name=re.compile("Withdraw")).click()
    expect(voter_page.get_by_test_id("vote-count")).to_have_text("0")
    expect(voter_page.get_by_role("button", name="I want this")).to_be_visible()
    flows.assert_not_reloaded(voter_page, url)

    # The vote really was stored and withdrawn: a fresh load agrees.
    voter_page.reload()
    expect(voter_page.get_by_test_id("vote-count")).to_have_text("0")


def test_vote_without_javascript(new_context, approved_idea):
    idea_id = approved_idea("Glow-in-the-dark bike bell", image=False)
    ctx = new_context(java_script_enabled=False)
    page, _ = flows.sign_up_verified(ctx, "Nora NoScript")
    page.goto(f"/ideas/{idea_id}")
    assert page.evaluate("() => typeof window.htmx") == "undefined"  # really no page scripts
    expect(page.get_by_test_id("vote-count")).to_have_text("0")

    with page.expect_navigation():
        page.get_by_role("button", name="I want this").click()
    assert page.url.endswith(f"/ideas/{idea_id}")
    expect(page.get_by_test_id("vote-count")).to_have_text("1")
    expect(page.get_by_role("button", name=re.compile("You want this"))).to_be_visible()

    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Withdraw")).click()
    assert page.url.endswith(f"/ideas/{idea_id}")
    expect(page.get_by_test_id("vote-count")).to_have_text("0")


def test_vote_with_keyboard(new_context, approved_idea):
    idea_id = approved_idea("Foldable rain poncho", image=False)
    page, _ = flows.sign_up_verified(new_context(), "Kim Keys")
    page.goto(f"/ideas/{idea_id}")
    expect(page.get_by_test_id("vote-count")).to_have_text("0")
    url = flows.arm_no_reload_marker(page)

    on_vote_button = "() => { const el = document.activeElement; return !!el && el.tagName === 'BUTTON' && !!el.closest('.vote-box'); }"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate(on_vote_button):
            break
    else:
        pytest.fail("Tab never reached the vote button")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "I want this"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("vote-count")).to_have_text("1")
    flows.assert_not_reloaded(page, url)


def test_script_in_title_renders_as_text(new_context, approved_idea, live_server):
    title = "<script>alert(1)</script>"
    dialogs: list[str] = []
    idea_id = approved_idea(title, image=False)

    page = new_context().new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/ideas/{idea_id}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(title)
    expect(heading).to_be_visible()
    assert page.locator("h1 script").count() == 0
    expect(page).to_have_title(re.compile(re.escape(title)))

    for path in ("/ideas", "/", "/ideas?q=laptops"):
        page.goto(path)
        expect(page.get_by_role("link", name=title, exact=True).first).to_be_visible()
        assert page.locator(".card-title script").count() == 0
    assert dialogs == [], f"a script from the title ran: {dialogs}"
