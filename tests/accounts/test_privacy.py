"""Privacy: data export, account deletion (searched for in every table), marketing consents,
sign-in by email link."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest
from piccolo.columns import JSON, JSONB, Text, Varchar

from app.accounts import privacy
from app.accounts import service as accounts
from app.accounts.tables import Address, ApiToken, Consent, EmailToken, Member, Session
from app.campaigns.service import variants_of
from app.campaigns.tables import Campaign, Pledge, PledgeEvent
from app.community import service as community
from app.community.tables import Comment, Follow
from app.db import raw, utcnow
from app.errors import Conflict, FormError
from app.ideas import service as ideas
from app.ideas.tables import Idea
from app.jobs import service as jobs
from app.jobs.tables import Job
from app.mail.tables import EmailMessage
from app.notifications.tables import Notification
from app.orders.tables import Order
from app.payments.gateway import gateway
from app.shop import cart, catalog, reviews, wishlist
from app.shop.tables import Cart, Product, Review, WishlistItem
from app.tables import ALL_TABLES
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import PASSWORD, csrf_from, login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order

A_ADDRESS = {"name": "Q. Varga-Lindholm", "line1": "Sjoviksbacken 17", "line2": "Porten B", "postal_code": "11743",
             "city": "Hagersten", "country": "SE", "phone": "+46701234567"}
B_ADDRESS = {"name": "Bertil Oskarsson", "line1": "Kopmangatan 9", "line2": "", "postal_code": "11131",
             "city": "Gamla Stan", "country": "SE", "phone": "+46709876543"}


def _token_in(text: str, path: str) -> str:
    match = re.search(rf"{re.escape(path)}\?token=([A-Za-z0-9_\-]+)", text)
    assert match, f"no {path} link in: {text}"
    return match.group(1)


async def _mail(kind: str, to: str) -> dict:
    row = await EmailMessage.select().where((EmailMessage.kind == kind) & (EmailMessage.recipient == to)).order_by(
        EmailMessage.id, ascending=False).first()
    assert row, f"no {kind} email to {to}"
    return row


async def _customer_gone(customer: str) -> bool:
    import stripe as stripe_sdk

    try:
        found = await gateway().client.v1.customers.retrieve_async(customer)
    except stripe_sdk.InvalidRequestError:
        return True  # localstripe forgets a deleted customer
    return bool(getattr(found, "deleted", False))


async def _give_address(member, address: dict) -> None:
    await Address.insert(Address(member=member.id, is_default=True, **address))


async def _order_with_address(member, product: dict, address: dict, *, status: str = "delivered") -> str:
    order_id = await make_order(member, [product], status=status)
    await Order.update({Order.ship_to: json.dumps(address)}).where(Order.id == order_id)
    return (await Order.select(Order.number).where(Order.id == order_id).first())["number"]


async def _campaign() -> tuple[int, int]:
    campaign_id, _ = await make_campaign(goal=5)
    return campaign_id, (await variants_of([campaign_id]))[campaign_id][0]["id"]


async def _busy_world() -> dict:
    """Two members, A and B, doing the same things side by side, plus a creator C."""
    staff = await make_member("Privacy Staff", staff=True)
    a = await make_member("Quintessa Varga")
    b = await make_member("Bertil Oskarsson")
    c = await make_member("Cecilia Creator")
    shared_idea = await make_idea(c, title="Shared rain poncho", staff=staff)
    a_public = await make_idea(a, title="Quintessa public lamp idea", staff=staff)
    a_draft = await make_idea(a, title="Quintessa secret draft", status="draft")
    b_draft = await make_idea(b, title="Bertil secret draft", status="draft")
    for member in (a, b):
        await ideas.vote(member, shared_idea)
        await community.follow(member, "idea", shared_idea)
    await ideas.vote(b, a_public)
    b_comment = await community.add_comment(b, shared_idea, "Bertil thinks the hood should be bigger")
    a_comment = await community.add_comment(a, shared_idea, "Quintessa loves the colour", parent_id=b_comment)
    await community.add_comment(c, shared_idea, f"Thanks @{a.handle} for the idea!")
    product = await make_product("Privacy socks")
    slug = product["slug"]
    a_number = await _order_with_address(a, product, A_ADDRESS)
    b_number = await _order_with_address(b, product, B_ADDRESS)
    await reviews.submit_review(a, product["id"], rating=5, title="Quintessa review title", body="Warm and soft")
    await reviews.submit_review(b, product["id"], rating=1, title="Bertil review title", body="Too thin for Bertil")
    await catalog.ask_question(a, slug, "Quintessa asks: are they washable?")
    await catalog.ask_question(b, slug, "Bertil asks: do they shrink?")
    for member in (a, b):
        await wishlist.set_heart(member, "product", product["id"], True)
        await cart.add_to_cart(cart.member_owner(member.id), product["variants"]["One size"], 1, member_id=member.id)
    await _give_address(a, A_ADDRESS)
    await _give_address(b, B_ADDRESS)
    await accounts.create_api_token(a.id, "Quintessa laptop script")
    await accounts.create_api_token(b.id, "Bertil phone script")
    await privacy.set_marketing_consent(a.id, True)
    await privacy.set_marketing_consent(b.id, True)
    return {"a": a, "b": b, "c": c, "staff": staff, "shared_idea": shared_idea, "a_public": a_public,
            "a_draft": a_draft, "b_draft": b_draft, "a_comment": a_comment, "b_comment": b_comment,
            "product": product, "a_number": a_number, "b_number": b_number}


# ---- export --------------------------------------------------------------------------------------


async def test_export_holds_all_my_data_and_nothing_of_another_member(client, stripe):
    w = await _busy_world()
    a, b = w["a"], w["b"]
    campaign_id, variant = await _campaign()
    await pledge_with_card(a, campaign_id, variant, quantity=2)
    await pledge_with_card(b, campaign_id, variant, quantity=1)
    await login(client, a.email)

    response = await client.get("/account/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    text = response.text

    assert data["profile"]["email"] == a.email and data["profile"]["handle"] == a.handle
    assert "password_hash" not in text and "$argon2" not in text
    assert {i["title"] for i in data["ideas"]} == {"Quintessa public lamp idea", "Quintessa secret draft"}
    assert {v["idea.title"] for v in data["votes"]} == {"Shared rain poncho"}
    assert [c["body"] for c in data["comments"]] == ["Quintessa loves the colour"]
    assert [(p["quantity"], p["status"]) for p in data["pledges"]] == [(2, "active")]
    assert [o["number"] for o in data["orders"]] == [w["a_number"]]
    assert data["orders"][0]["ship_to"]["line1"] == "Sjoviksbacken 17"
    assert data["orders"][0]["lines"][0]["title"] == "Privacy socks"
    assert data["points"]["balance"] == sum(e["points"] for e in data["points"]["ledger"]) > 0
    assert data["badges"]
    assert data["consents"][0]["granted"] is True and data["consents"][0]["text_version"]
    assert [x["product.name"] for x in data["wishlist"]] == ["Privacy socks"]
    assert [(c["variant.product.name"], c["quantity"]) for c in data["cart"]] == [("Privacy socks", 1)]
    assert [r["title"] for r in data["reviews"]] == ["Quintessa review title"]
    assert [q["body"] for q in data["product_questions"]] == ["Quintessa asks: are they washable?"]
    assert [x["line1"] for x in data["addresses"]] == ["Sjoviksbacken 17"]
    assert [t["name"] for t in data["api_tokens"]] == ["Quintessa laptop script"]
    assert {(f["kind"], f["name"]) for f in data["follows"]} == {("idea", "Shared rain poncho")}
    assert any("mentioned you" in n["title"] for n in data["notifications"])
    assert data["sessions"]

    # Nothing of B: not their email, handle, words, address, order, token or private idea.
    for secret in (b.email, b.handle, "Bertil thinks", "Too thin for Bertil", "Bertil asks", "Kopmangatan",
                   "+46709876543", w["b_number"], "Bertil phone script", "Bertil secret draft", "Bertil review"):
        assert secret not in text, secret
    # Token hashes are never exported.
    hashes = [r["token_hash"] for r in await ApiToken.select(ApiToken.token_hash)]
    assert not any(h in text for h in hashes)


async def test_export_needs_a_login(client):
    response = await client.get("/account/export", follow_redirects=False)
    assert response.status_code in (302, 303, 401)


# ---- deletion --------------------------------------------------------------------------------------


async def _request_deletion(client, member) -> str:
    await login(client, member.email)
    page = await client.get("/account/delete")
    assert page.status_code == 200 and "Email me the confirmation link" in page.text
    sent = await client.post("/account/delete", data={"_csrf_token": csrf_from(page.text)})
    assert sent.status_code == 303
    mail = await _mail("privacy_delete", member.email)
    return _token_in(mail["text_body"], "/account/delete/confirm")


async def _confirm_deletion(client, token: str, content: str = "keep"):
    page = await client.get(f"/account/delete/confirm?token={token}")
    assert page.status_code == 200
    return await client.post("/account/delete/confirm",
                             data={"token": token, "content": content, "_csrf_token": csrf_from(page.text)})


def _searchable_columns(table) -> list[str]:
    return [c._meta.db_column_name for c in table._meta.columns if isinstance(c, Varchar | Text | JSON | JSONB)]


async def _find_everywhere(needles: list[str]) -> list[str]:
    """Every (table, column, needle) where a needle still appears, case-insensitively, in any
    text or JSON column of any table."""
    found = []
    for table in ALL_TABLES:
        name = table._meta.tablename
        for column in _searchable_columns(table):
            value = f'lower(CAST("{column}" AS TEXT))'
            hits = await raw(f'SELECT {value} AS v FROM "{name}" WHERE ' + " OR ".join(
                f"{value} LIKE {{}}" for _ in needles), *(f"%{n.lower()}%" for n in needles))
            found += [f"{name}.{column} contains {n!r}" for n in needles for h in hits if n.lower() in h["v"]]
    return found


async def test_deletion_leaves_no_trace_of_the_member_in_any_table(client, stripe):
    w = await _busy_world()
    a, b = w["a"], w["b"]
    campaign_id, variant = await _campaign()
    pledge_id = await pledge_with_card(a, campaign_id, variant)
    customer = (await Member.select(Member.stripe_customer_id).where(Member.id == a.id).first())["stripe_customer_id"]
    assert customer
    # Everything B's inbox got from A's actions names A before the deletion.
    assert await Notification.count().where(Notification.title.like(f"{a.display_name}%")) >= 2
    needles = [a.email, a.display_name, a.handle, *[v for k, v in A_ADDRESS.items() if k != "country"]]
    assert await _find_everywhere(needles)  # the search does find things before

    token = await _request_deletion(client, a)
    response = await _confirm_deletion(client, token)
    assert response.status_code == 303 and response.headers["location"] == "/account/deleted"
    assert "Your account is deleted" in (await client.get("/account/deleted")).text

    assert await _find_everywhere(needles) == []
    row = await Member.select().where(Member.id == a.id).first()
    assert row["deleted_at"] is not None and row["display_name"] == "Deleted member"
    assert row["email"] == f"deleted-{a.id}@invalid" and row["handle"] == f"deleted-{a.id}"
    # Orders stay for the books; the open pledge was cancelled; ideas and comments stay anonymised.
    order = await Order.select(Order.ship_to, Order.total).where(Order.number == w["a_number"]).first()
    assert json.loads(order["ship_to"]) if isinstance(order["ship_to"], str) else order["ship_to"]
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "cancelled"
    assert await Idea.exists().where(Idea.id == w["a_public"])
    assert (await Comment.select(Comment.body).where(Comment.id == w["a_comment"]).first())["body"] == \
        "Quintessa loves the colour"
    idea_page = await client.get(f"/ideas/{w['shared_idea']}")
    assert "Deleted member" in idea_page.text and a.display_name not in idea_page.text
    assert f"@deleted-{a.id}" in idea_page.text
    # B keeps everything of their own.
    assert await Address.exists().where(Address.member == b.id)
    assert (await Comment.select(Comment.body).where(Comment.id == w["b_comment"]).first())["body"].startswith("Bertil")
    assert await Notification.exists().where(
        (Notification.member == b.id) & Notification.title.like("Deleted member replied%"))
    # Stripe forgot the customer, and the sessions, tokens and links are gone.
    assert await _customer_gone(customer)
    for table in (Session, ApiToken, EmailToken, Consent, Notification, Address, WishlistItem, Cart, Follow):
        assert await table.count().where(table.member == a.id) == 0, table
    assert await WishlistItem.count().where(WishlistItem.member == b.id) == 1


async def test_a_deleted_member_cannot_log_in_by_any_door(client):
    member = await make_member("Leaving Lena")
    raw_api = await accounts.create_api_token(member.id)
    token = await _request_deletion(client, member)
    assert (await _confirm_deletion(client, token)).status_code == 303
    # The browser that deleted the account is logged out.
    account = await client.get("/account", follow_redirects=False)
    assert account.status_code in (302, 303, 401)
    page = await client.get("/login")
    wrong = await client.post("/login", data={"email": member.email, "password": PASSWORD,
                                              "_csrf_token": csrf_from(page.text)})
    assert wrong.status_code == 400 and "Wrong email or password." in wrong.text
    before = await EmailMessage.count()
    link = await client.post("/login/link", data={"link_email": member.email, "_csrf_token": csrf_from(page.text)})
    assert link.status_code == 200 and "Check your inbox" in link.text
    assert await EmailMessage.count() == before  # nobody to send it to
    api = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw_api}"})
    assert api.status_code == 401


async def test_remove_choice_removes_comments_reviews_and_unpublished_ideas(client):
    w = await _busy_world()
    a = w["a"]
    lonely = await make_idea(a, title="Quintessa idea nobody voted for", staff=w["staff"])
    product_before = await Product.select(Product.rating_count, Product.rating_sum).where(
        Product.id == w["product"]["id"]).first()
    token = await _request_deletion(client, a)
    assert (await _confirm_deletion(client, token, content="remove")).status_code == 303

    comment = await Comment.select(Comment.body, Comment.deleted_at).where(Comment.id == w["a_comment"]).first()
    assert comment["body"] == "" and comment["deleted_at"] is not None
    assert not await Idea.exists().where(Idea.id.is_in([w["a_draft"], lonely]))
    assert await Idea.exists().where(Idea.id == w["a_public"])  # B voted for it: it stays, anonymised
    review = await Review.select(Review.hidden, Review.body).where(Review.member == a.id).first()
    assert review["hidden"] and review["body"] == ""
    product = await Product.select(Product.rating_count, Product.rating_sum).where(
        Product.id == w["product"]["id"]).first()
    assert product["rating_count"] == product_before["rating_count"] - 1
    assert product["rating_sum"] == product_before["rating_sum"] - 5
    # B's own comment and review stay; B's bell no longer holds A's reply.
    assert await Comment.exists().where((Comment.id == w["b_comment"]) & Comment.deleted_at.is_null())
    assert not await Notification.exists().where(
        (Notification.member == w["b"].id) & Notification.title.like("%replied%"))
    page = await client.get(f"/ideas/{w['shared_idea']}")
    assert "Quintessa loves the colour" not in page.text


async def test_deletion_link_is_one_time_and_expires(client):
    member = await make_member("Careful Carl")
    token = await _request_deletion(client, member)
    await EmailToken.update({EmailToken.expires_at: utcnow() - dt.timedelta(minutes=1)}).where(
        EmailToken.purpose == "delete")
    page = await client.get(f"/account/delete/confirm?token={token}")
    assert "invalid, expired or was already used" in page.text
    refused = await client.post("/account/delete/confirm",
                                data={"token": token, "content": "keep", "_csrf_token": csrf_from(page.text)})
    assert refused.status_code == 400
    assert await Member.exists().where((Member.id == member.id) & Member.deleted_at.is_null())

    fresh = await client.get("/account/delete")
    await client.post("/account/delete", data={"_csrf_token": csrf_from(fresh.text)})
    token = _token_in((await _mail("privacy_delete", member.email))["text_body"], "/account/delete/confirm")
    assert (await _confirm_deletion(client, token)).status_code == 303
    page = await client.get(f"/account/delete/confirm?token={token}")
    assert "invalid, expired or was already used" in page.text


async def test_concurrent_double_confirm_deletes_once(stripe):
    member = await make_member("Double Dora")
    campaign_id, variant = await _campaign()
    pledge_id = await pledge_with_card(member, campaign_id, variant, quantity=2)
    await privacy.request_deletion(member)
    token = _token_in((await _mail("privacy_delete", member.email))["text_body"], "/account/delete/confirm")

    results = await asyncio.gather(*(privacy.delete_account(token) for _ in range(4)), return_exceptions=True)
    done = [r for r in results if isinstance(r, privacy.DeletionResult)]
    refused = [r for r in results if isinstance(r, FormError)]
    assert len(done) == 1 and len(refused) == 3, results
    assert await PledgeEvent.count().where((PledgeEvent.pledge == pledge_id) & (PledgeEvent.to_status == "cancelled")) == 1
    campaign = await Campaign.select(Campaign.pledged_units, Campaign.backers).where(Campaign.id == campaign_id).first()
    assert campaign["pledged_units"] == 0 and campaign["backers"] == 0
    assert await Job.count().where(Job.kind == "delete_stripe_customer") == 1


async def test_deletion_waits_while_a_payment_is_in_progress(client, stripe):
    member = await make_member("Charging Charlie")
    campaign_id, variant = await _campaign()
    pledge_id = await pledge_with_card(member, campaign_id, variant)
    token = await _request_deletion(client, member)
    await Pledge.update({Pledge.status: "charging"}).where(Pledge.id == pledge_id)

    page = await client.get("/account/delete")
    assert "can't be deleted yet" in page.text and "is in progress" in page.text
    refused = await _confirm_deletion(client, token)
    assert refused.status_code == 409 and "is in progress" in refused.text
    assert await Member.exists().where((Member.id == member.id) & Member.deleted_at.is_null())
    with pytest.raises(Conflict):
        await privacy.delete_account(token)
    # An order still to ship needs the address too.
    await Pledge.update({Pledge.status: "paid"}).where(Pledge.id == pledge_id)
    product = await make_product()
    number = await _order_with_address(member, product, A_ADDRESS, status="paid")
    page = await client.get("/account/delete")
    assert f"Order {number} has not shipped yet" in page.text


async def test_stripe_down_is_retried_by_a_job(client, stripe, monkeypatch):
    member = await make_member("Offline Olga")
    customer = await gateway().create_customer(email=member.email, name=member.display_name, member_id=member.id)
    await Member.update({Member.stripe_customer_id: customer}).where(Member.id == member.id)

    async def stripe_is_down(customer_id: str) -> None:
        raise ConnectionError("Stripe is unreachable")

    monkeypatch.setattr(gateway(), "delete_customer", stripe_is_down)
    token = await _request_deletion(client, member)
    assert (await _confirm_deletion(client, token)).status_code == 303
    assert not await _customer_gone(customer)
    monkeypatch.undo()
    await jobs.drain()
    assert await _customer_gone(customer)
    assert (await Job.select(Job.status).where(Job.kind == "delete_stripe_customer").first())["status"] == "done"


# ---- consents --------------------------------------------------------------------------------------


async def _signup(client, email: str, *, opt_in: bool) -> None:
    page = await client.get("/signup")
    assert 'name="marketing_opt_in"' in page.text and "checked" not in re.search(
        r'<input[^>]*name="marketing_opt_in"[^>]*>', page.text).group(0)
    data = {"display_name": "Consent Carla", "email": email, "password": PASSWORD, "_csrf_token": csrf_from(page.text)}
    if opt_in:
        data["marketing_opt_in"] = "on"
    assert (await client.post("/signup", data=data)).status_code == 303
    await login(client, email)  # sign-up does not log in (the emailed link or a login does)


async def test_signup_opt_in_and_consent_history(client):
    await _signup(client, "carla@example.com", opt_in=True)
    member = await Member.select(Member.id, Member.marketing_opt_in).where(Member.email == "carla@example.com").first()
    assert member["marketing_opt_in"] is True
    consents = await Consent.select().where(Consent.member == member["id"])
    assert [(c["kind"], c["granted"], c["text_version"]) for c in consents] == [
        ("marketing_email", True, privacy.MARKETING_TEXT_VERSION)]
    assert "campaigns" in consents[0]["text"] and consents[0]["created_at"] is not None
    assert await privacy.can_send_marketing(member["id"]) is False  # not until the email is confirmed
    await Member.update({Member.email_verified_at: utcnow()}).where(Member.id == member["id"])
    assert await privacy.can_send_marketing(member["id"]) is True

    page = await client.get("/account/consents")
    assert page.status_code == 200 and "you get news and offers by email" in page.text
    withdrawn = await client.post("/account/consents", data={"_csrf_token": csrf_from(page.text)})
    assert withdrawn.status_code == 303
    page = await client.get("/account/consents")
    assert "no marketing emails" in page.text
    assert page.text.count("Withdrawn") == 1 and page.text.count("Given") == 1
    again = await client.post("/account/consents", data={"_csrf_token": csrf_from(page.text)})
    assert again.status_code == 303
    assert await Consent.count().where(Consent.member == member["id"]) == 2  # no change, no new row
    assert await privacy.can_send_marketing(member["id"]) is False


async def test_signup_without_the_box_sends_no_marketing(client):
    await _signup(client, "quiet@example.com", opt_in=False)
    member = await Member.select(Member.id, Member.marketing_opt_in).where(Member.email == "quiet@example.com").first()
    assert member["marketing_opt_in"] is False
    assert await Consent.count().where(Consent.member == member["id"]) == 0


async def test_concurrent_consent_changes_keep_the_flag_equal_to_the_latest_answer():
    member = await make_member("Flip Flop")
    answers = [i % 2 == 0 for i in range(12)]
    await asyncio.gather(*(privacy.set_marketing_consent(member.id, granted) for granted in answers))
    history = await Consent.select(Consent.granted).where(Consent.member == member.id).order_by(Consent.id)
    flag = (await Member.select(Member.marketing_opt_in).where(Member.id == member.id).first())["marketing_opt_in"]
    assert history and flag == history[-1]["granted"]
    assert all(x["granted"] != y["granted"] for x, y in zip(history, history[1:], strict=False))  # only changes


# ---- sign-in by email link -------------------------------------------------------------------------


async def _ask_link(client, email: str):
    page = await client.get("/login")
    assert "Email me a sign-in link" in page.text
    return await client.post("/login/link", data={"link_email": email, "_csrf_token": csrf_from(page.text)})


async def test_login_link_signs_in_once(client):
    member = await make_member("Linky Lou", verified=False)
    sent = await _ask_link(client, member.email.upper())
    assert sent.status_code == 200 and "Check your inbox" in sent.text
    token = _token_in((await _mail("login_link", member.email))["text_body"], "/login/link")

    page = await client.get(f"/login/link?token={token}")
    assert page.status_code == 200 and "Sign me in" in page.text
    assert (await client.get("/account", follow_redirects=False)).status_code != 200  # a GET signs nobody in
    before = await Session.count().where(Session.member == member.id)
    signed_in = await client.post("/login/link/confirm", data={"token": token, "_csrf_token": csrf_from(page.text)})
    assert signed_in.status_code == 303
    assert await Session.count().where(Session.member == member.id) == before + 1
    account = await client.get("/account")
    assert account.status_code == 200 and member.email in account.text
    assert (await accounts.get_member(member.id)).verified  # the link proved the address

    client.cookies.clear()
    page = await client.get(f"/login/link?token={token}")
    again = await client.post("/login/link/confirm", data={"token": token, "_csrf_token": csrf_from(page.text)})
    assert again.status_code == 400 and "already used" in again.text


async def test_login_link_expires_after_15_minutes(client):
    member = await make_member("Slow Sam")
    await _ask_link(client, member.email)
    token = _token_in((await _mail("login_link", member.email))["text_body"], "/login/link")
    row = await EmailToken.select(EmailToken.created_at, EmailToken.expires_at).where(EmailToken.purpose == "login").first()
    assert dt.timedelta(minutes=14) < row["expires_at"] - row["created_at"] <= dt.timedelta(minutes=15, seconds=5)
    await EmailToken.update({EmailToken.expires_at: utcnow() - dt.timedelta(seconds=1)}).where(
        EmailToken.purpose == "login")
    page = await client.get(f"/login/link?token={token}")
    refused = await client.post("/login/link/confirm", data={"token": token, "_csrf_token": csrf_from(page.text)})
    assert refused.status_code == 400 and "expired" in refused.text


async def test_login_link_for_unknown_email_looks_the_same_and_is_throttled(client):
    answer = await _ask_link(client, "nobody@example.com")
    assert answer.status_code == 200 and "If an account exists for <strong>nobody@example.com</strong>" in answer.text
    assert await EmailMessage.count() == 0
    bad = await _ask_link(client, "not-an-email")
    assert bad.status_code == 400 and "Enter a valid email address" in bad.text
    for _ in range(4):
        await _ask_link(client, "nobody@example.com")
    throttled = await _ask_link(client, "nobody@example.com")
    assert throttled.status_code == 429 and "Too many sign-in links" in throttled.text


async def test_concurrent_use_of_one_login_link_signs_in_once():
    member = await make_member("Racy Rita")
    await privacy.request_login_link(member.email)
    token = _token_in((await _mail("login_link", member.email))["text_body"], "/login/link")
    results = await asyncio.gather(*(privacy.sign_in_with_link(token) for _ in range(5)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, accounts.CurrentMember)) == 1
    assert sum(1 for r in results if isinstance(r, FormError)) == 4


# ---- settings links and progressive profile ----------------------------------------------------------


async def test_settings_link_to_export_consents_and_deletion(client):
    member = await make_member("Settings Sally")
    await login(client, member.email)
    page = await client.get("/account")
    for href in ('href="/account/export"', 'href="/account/consents"', 'href="/account/delete"'):
        assert href in page.text
    client.cookies.clear()
    page = (await client.get("/signup")).text
    form = re.search(r'<form method="post" action="/signup".*?</form>', page, re.S).group(0)
    fields = set(re.findall(r'<input[^>]*name="([a-z_]+)"', form)) - {"_csrf_token", "ref"}
    assert fields == {"display_name", "email", "password", "marketing_opt_in"}  # nothing else at sign-up
