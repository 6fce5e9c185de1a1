"""Field-level mass assignment (issue 7): every member-facing write, as a form and through the
API, is sent with extra fields that name what only the server (or staff) may set: statuses,
prices and amounts, points, staff flags, email verification, stock, counters, and the ids of
authors and owners (pointing at another member). The request must work as if the extras were
not there, or be refused with a clear 4xx; never a 500. The database decides: no protected
column of an existing row moves except those the action itself moves (a vote moves the vote
count), no new row carries a hostile value or names the other member, and each new row holds
what the server decided (the author is the caller, the status is the first one, the amount is
the price times the quantity)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.accounts import service as accounts
from app.db import raw
from app.orders.tables import Order
from app.points import service as points
from app.settings import get_settings
from app.shop import cart as carts
from app.tables import ALL_TABLES
from tests.campaigns.helpers import make_campaign
from tests.factories import PASSWORD, csrf_from, login, make_idea, make_member
from tests.orders.helpers import make_shop_order
from tests.shop.helpers import make_product
from tests.support.audit import assert_audit_clean

SENTINEL = 987_654  # counts, points, stock
MONEY = 3  # three öre: a price nobody sets
HOSTILE_TIME = "2020-01-01T00:00:00+00:00"

# Columns only the server or staff decide, in whichever table they appear.
PROTECTED = {
    "status", "price", "early_bird_price", "amount", "total", "subtotal", "shipping", "discount", "refunded",
    "unit_price", "points", "points_balance", "points_lifetime", "is_staff", "is_admin", "email_verified_at",
    "stock", "sold", "reserved", "limit_units", "sold_count", "vote_count", "hot_score", "ready_for_review",
    "pledged_units", "pledged_amount", "backers", "early_bird_units", "early_bird_taken", "goal_units", "rating",
    "rating_count", "rating_sum", "rating_avg", "reports", "hidden", "hidden_at", "published", "featured",
    "member", "author", "actor", "created_by", "reporter", "answered_by", "referred_by", "staff", "hidden_by",
    "stripe_customer_id", "payment_method_id", "payment_intent_id", "paid_at", "idea", "campaign", "product",
    "variant", "order", "pledge", "pledge_id", "order_id", "owner", "quantity", "deleted_at", "winner",
}
MEMBER_REFS = {"member", "author", "actor", "created_by", "reporter", "answered_by", "referred_by", "staff",
               "hidden_by"}
MONEY_COLUMNS = {"price", "early_bird_price", "amount", "total", "subtotal", "unit_price"}


def hostile(victim: Any, victim_idea: int) -> dict[str, Any]:
    """What an attacker adds to a body. JSON keeps the types; forms send them as text."""
    return {
        "id": victim_idea, "status": "paid", "state": "approved", "to_status": "voting",
        "price": MONEY, "unit_price": MONEY, "amount": MONEY, "total": MONEY, "subtotal": MONEY,
        "discount": SENTINEL, "refunded": 0, "early_bird_price": MONEY, "early_bird_units": SENTINEL,
        "points": SENTINEL, "points_balance": SENTINEL, "points_lifetime": SENTINEL,
        "is_staff": True, "is_admin": True, "staff": True, "admin": True, "role": "staff",
        "email_verified": True, "email_verified_at": HOSTILE_TIME, "verified": True,
        "stock": SENTINEL, "sold": SENTINEL, "sold_count": SENTINEL, "reserved": 0, "limit_units": SENTINEL,
        "quantity": SENTINEL, "vote_count": SENTINEL, "hot_score": SENTINEL, "ready_for_review": True,
        "pledged_units": SENTINEL, "pledged_amount": SENTINEL, "backers": SENTINEL, "comment_count": SENTINEL,
        "rating_count": SENTINEL, "rating_sum": SENTINEL, "rating_avg": 5.0, "reports": 0,
        "member": victim.id, "member_id": victim.id, "author": victim.id, "author_id": victim.id,
        "user_id": victim.id, "owner": f"m:{victim.id}", "created_by": victim.id, "referred_by": victim.id,
        "stripe_customer_id": "cus_hostile", "payment_method_id": "pm_hostile", "paid_at": HOSTILE_TIME,
        "deleted_at": HOSTILE_TIME,
    }


def as_form(values: dict[str, Any]) -> dict[str, str]:
    return {k: ("on" if v is True else str(v)) for k, v in values.items()}


class World:
    """The members and things one case needs, made on first use."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    async def _once(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._made:
            self._made[key] = await make()
        return self._made[key]

    async def attacker(self):
        return await self._once("attacker", lambda: make_member("Attacker Member"))

    async def victim(self):
        return await self._once("victim", lambda: make_member("Victim Member"))

    async def staff(self):
        return await self._once("staff", lambda: make_member("Mass Staff", staff=True))

    async def victim_idea(self) -> int:
        return await self._once("victim_idea", lambda: self._victim_draft())

    async def _victim_draft(self) -> int:
        return await make_idea(await self.victim(), title="The victim's own draft", status="draft")

    async def draft(self) -> int:
        async def make() -> int:
            return await make_idea(await self.attacker(), title="Attacker's draft", status="draft")
        return await self._once("draft", make)

    async def voting_idea(self) -> int:
        async def make() -> int:
            author = await make_member("Idea Author")
            return await make_idea(author, title="An idea in voting", staff=await self.staff())
        return await self._once("voting", make)

    async def campaign(self) -> tuple[int, dict]:
        return await self._once("campaign", lambda: self._campaign())

    async def _campaign(self) -> tuple[int, dict]:
        return await make_campaign(goal=5, staff=await self.staff())

    async def product(self) -> dict:
        return await self._once("product", lambda: make_product("Mass tote", price=29_900, variants={"One size": 10}))

    async def token(self) -> str:
        async def make() -> str:
            return await accounts.create_api_token((await self.attacker()).id, "mass")
        return await self._once("token", make)


ADDRESS = {"name": "Alva Attacker", "line1": "Storgatan 1", "line2": "", "postal_code": "111 22",
           "city": "Stockholm", "country": "SE", "phone": "+46 70 123 45 67"}


async def _rows(table: str, **where: Any) -> list[dict]:
    clause = " AND ".join(f'"{k}" = {{}}' for k in where)
    return [dict(r) for r in await raw(f'SELECT * FROM "{table}"' + (f" WHERE {clause}" if clause else ""),
                                       *where.values())]


async def _one(table: str, **where: Any) -> dict:
    rows = await _rows(table, **where)
    assert len(rows) == 1, (table, where, rows)
    return rows[0]


# ---- what each write must have done, read from the database ------------------------------------

async def _new_member_is_plain(w: World, email: str) -> None:
    row = await _one("member", email=email)
    assert (row["is_staff"], row["is_admin"], row["email_verified_at"]) in ((False, False, None), (0, 0, None))
    assert (row["points_balance"], row["points_lifetime"], row["referred_by"], row["stripe_customer_id"],
            row["deleted_at"]) == (0, 0, None, "", None)


async def check_signup_form(w: World) -> None:
    await _new_member_is_plain(w, "form.signup@example.com")


async def check_signup_api(w: World) -> None:
    await _new_member_is_plain(w, "api.signup@example.com")


async def check_new_idea(w: World) -> None:
    rows = await _rows("idea", title="Rain poncho with pockets")
    assert len(rows) == 1
    row = rows[0]
    assert (row["author"], row["status"], row["vote_count"]) == ((await w.attacker()).id, "draft", 0)
    assert not row["ready_for_review"]


async def check_edited_draft(w: World) -> None:
    row = await _one("idea", id=await w.draft())
    assert (row["title"], row["author"], row["status"], row["vote_count"]) == (
        "Attacker's draft, edited", (await w.attacker()).id, "draft", 0)
    victim = await _one("idea", id=await w.victim_idea())
    assert (victim["title"], victim["author"]) == ("The victim's own draft", (await w.victim()).id)


async def check_profile(w: World) -> None:
    row = await _one("member", id=(await w.attacker()).id)
    assert row["bio"] == "I make things."
    assert not row["is_staff"] and not row["is_admin"] and row["email_verified_at"] is not None
    ledger = sum(e["points"] for e in await _rows("points_entry", member=row["id"]))
    assert row["points_balance"] == row["points_lifetime"] == ledger < 100  # at most the profile reward


async def check_consent(w: World) -> None:
    rows = await _rows("consent", member=(await w.attacker()).id)
    assert [r["granted"] for r in rows] in ([True], [1])


async def check_notification_settings(w: World) -> None:
    rows = await _rows("notification_setting", member=(await w.attacker()).id, kind="reply")
    assert [r["mode"] for r in rows] == ["digest"]


async def _check_comment(w: World, body: str) -> None:
    row = await _one("comment", body=body)
    assert (row["idea"], row["author"], row["hidden_at"], row["deleted_at"]) == (
        await w.voting_idea(), (await w.attacker()).id, None, None)


async def check_comment_form(w: World) -> None:
    await _check_comment(w, "Would it come in green?")


async def check_comment_api(w: World) -> None:
    await _check_comment(w, "Would it come in blue?")


async def check_pledge(w: World) -> None:
    campaign_id, campaign = await w.campaign()
    row = await _one("pledge", member=(await w.attacker()).id)
    assert (row["campaign"], row["variant"], row["quantity"], row["amount"], row["status"], row["early_bird_units"]) == (
        campaign_id, campaign["variants"][0]["id"], 1, 50_000, "pending", 0)
    stored = await _one("campaign", id=campaign_id)
    assert (stored["price"], stored["goal_units"], stored["pledged_units"], stored["backers"]) == (50_000, 5, 0, 0)


async def check_cart(w: World) -> None:
    product = await w.product()
    cart = await _one("cart", member=(await w.attacker()).id)
    assert cart["owner"] == carts.member_owner((await w.attacker()).id)
    lines = await _rows("cart_line", cart=cart["id"])
    assert [(line["variant"], line["quantity"]) for line in lines] == [(product["variants"]["One size"], 1)]


async def _check_order(w: World, *, saved_address: bool) -> None:
    product = await w.product()
    order = await _one("shop_order", member=(await w.attacker()).id)
    shipping = {code: price for code, _, price in get_settings().shipping_options()}["standard"]
    assert (order["status"], order["kind"], order["subtotal"], order["discount"], order["refunded"]) == (
        "placed", "shop", 29_900, 0, 0)
    assert order["total"] == 29_900 + shipping and order["paid_at"] is None
    lines = await _rows("order_line", order=order["id"])
    assert [(line["quantity"], line["unit_price"], line["total"]) for line in lines] == [(1, 29_900, 29_900)]
    variant = await _one("product_variant", id=product["variants"]["One size"])
    assert (variant["stock"], variant["sold"]) == (9, 0)  # one unit held for the order, none sold yet
    if saved_address:
        assert [a["member"] for a in await _rows("address")] == [(await w.attacker()).id]


async def check_checkout_form(w: World) -> None:
    await _check_order(w, saved_address=False)


async def check_checkout_api(w: World) -> None:
    await _check_order(w, saved_address=True)


async def _check_review(w: World, rating: int) -> None:
    product = await w.product()
    review = await _one("product_review", product=product["id"])
    assert (review["member"], review["rating"]) == ((await w.attacker()).id, rating) and not review["hidden"]
    stored = await _one("product", id=product["id"])
    assert (stored["price"], stored["rating_count"], stored["rating_sum"], stored["sold_count"]) == (29_900, 1, rating, 1)


async def check_review_form(w: World) -> None:
    await _check_review(w, 4)


async def check_review_api(w: World) -> None:
    await _check_review(w, 2)


async def check_question(w: World) -> None:
    row = await _one("product_question", product=(await w.product())["id"])
    assert (row["member"], row["answer"], row["answered_by"]) == ((await w.attacker()).id, "", None)
    assert not row["hidden"]


async def check_address(w: World) -> None:
    order = await _one("shop_order", number="CM-MASS0001")
    assert (order["status"], order["total"], order["member"], order["refunded"]) == (
        "paid", 50_000, (await w.attacker()).id, 0)
    ship_to = order["ship_to"] if isinstance(order["ship_to"], dict) else json.loads(order["ship_to"])
    assert ship_to["city"] == "Stockholm" and "member_id" not in ship_to and "status" not in ship_to


async def check_vote(w: World) -> None:
    idea = await _one("idea", id=await w.voting_idea())
    assert (idea["vote_count"], idea["status"]) == (1, "voting")
    assert [v["member"] for v in await _rows("vote", idea=idea["id"])] == [(await w.attacker()).id]


async def check_redeem(w: World) -> None:
    voucher = await _one("voucher", member=(await w.attacker()).id)
    assert (voucher["points"], voucher["amount"], voucher["status"], voucher["order_id"]) == (
        points.VOUCHER_POINTS, points.VOUCHER_AMOUNT, "issued", None)
    member = await _one("member", id=(await w.attacker()).id)
    assert member["points_balance"] == 1_500 - points.VOUCHER_POINTS


# ---- preparing a case ---------------------------------------------------------------------------

async def prepare_review(w: World) -> None:
    """A paid order of the product (reviews count only buyers), charged in localstripe."""
    await make_shop_order(await w.attacker(), product=await w.product(), price=29_900, quantity=1)


async def prepare_cart(w: World) -> None:
    product = await w.product()
    await carts.add_to_cart(carts.member_owner((await w.attacker()).id), product["variants"]["One size"], 1,
                            member_id=(await w.attacker()).id)


async def prepare_preorder(w: World) -> None:
    campaign_id, _ = await w.campaign()
    await Order.insert(Order(number="CM-MASS0001", member=(await w.attacker()).id, status="paid", kind="preorder",
                             subtotal=50_000, total=50_000, campaign_id=campaign_id))


async def prepare_points(w: World) -> None:
    await points.award((await w.attacker()).id, "adjustment", key="mass:grant", points=1_500,
                       reference="test", note="for a voucher")


# ---- the endpoints ----------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    method: str
    path: Callable[[World], Awaitable[str]]
    body: Callable[[World], Awaitable[dict]]
    check: Callable[[World], Awaitable[None]]
    api: bool = False
    visitor: bool = False
    prepare: Callable[[World], Awaitable[None]] | None = None
    csrf_page: Callable[[World], Awaitable[str]] | None = None
    may_change: set[tuple[str, str]] = field(default_factory=set)


def const(value: Any) -> Callable[[World], Awaitable[Any]]:
    async def get(_: World) -> Any:
        return value
    return get


async def _draft_path(w: World) -> str:
    return f"/ideas/{await w.draft()}/edit"


async def _comment_path(w: World) -> str:
    return f"/ideas/{await w.voting_idea()}/comments"


async def _pledge_form_path(w: World) -> str:
    return f"/campaigns/{(await w.campaign())[0]}/pledge"


async def _pledge_api_path(w: World) -> str:
    return f"/api/v1/campaigns/{(await w.campaign())[0]}/pledges"


async def _pledge_body(w: World) -> dict:
    return {"variant": (await w.campaign())[1]["variants"][0]["id"], "quantity": 1}


async def _review_form_path(w: World) -> str:
    return f"/shop/{(await w.product())['slug']}/reviews"


async def _question_path(w: World) -> str:
    return f"/shop/{(await w.product())['slug']}/questions"


async def _variant_body(w: World) -> dict:
    return {"variant_id": (await w.product())["variants"]["One size"], "quantity": 1}


async def _checkout_api_body(w: World) -> dict:
    nested = {"price": MONEY, "unit_price": MONEY, "total": MONEY, "stock": SENTINEL, "member_id": (await w.victim()).id}
    return {"lines": [{**nested, "variant_id": (await w.product())["variants"]["One size"], "quantity": 1}],
            "shipping": "standard", "address": {**ADDRESS, **nested}, "save_address": True}


async def _vote_path(w: World) -> str:
    return f"/api/v1/ideas/{await w.voting_idea()}/vote"


async def _idea_api_patch_path(w: World) -> str:
    return f"/api/v1/ideas/{await w.draft()}"


async def _review_api_path(w: World) -> str:
    return f"/api/v1/products/{(await w.product())['id']}/reviews"


async def _idea_page(w: World) -> str:
    return f"/ideas/{await w.voting_idea()}"


async def _product_page(w: World) -> str:
    return f"/shop/{(await w.product())['slug']}"


IDEA = {"title": "Rain poncho with pockets", "summary": "Packs into its own pocket",
        "description": "A poncho that packs into its chest pocket and has a hood with a brim.", "category": "bags"}
POINTS = {("member", "points_balance"), ("member", "points_lifetime")}
CUSTOMER = {("member", "stripe_customer_id")}  # the first card saved creates the member's Stripe customer

CASES = [
    Case("signup form", "POST", const("/signup"), const({"email": "form.signup@example.com", "password": PASSWORD,
                                                          "display_name": "Form Signup"}),
         check_signup_form, visitor=True, csrf_page=const("/signup")),
    Case("signup api", "POST", const("/api/v1/auth/signup"),
         const({"email": "api.signup@example.com", "password": PASSWORD, "display_name": "Api Signup"}),
         check_signup_api, api=True, visitor=True),
    Case("idea form", "POST", const("/ideas"), const(IDEA), check_new_idea, csrf_page=const("/ideas/new")),
    Case("idea edit form", "POST", _draft_path, const({**IDEA, "title": "Attacker's draft, edited"}),
         check_edited_draft),
    Case("idea api", "POST", const("/api/v1/ideas"), const(IDEA), check_new_idea, api=True),
    Case("idea edit api", "PATCH", _idea_api_patch_path, const({"title": "Attacker's draft, edited"}),
         check_edited_draft, api=True),
    Case("profile form", "POST", const("/account"), lambda w: _profile_body(w),
         check_profile, csrf_page=const("/account"), may_change=POINTS),
    Case("privacy consents form", "POST", const("/account/consents"), const({"marketing_email": "on"}),
         check_consent, csrf_page=const("/account/consents")),
    Case("notification settings form", "POST", const("/notifications/settings"), const({"reply": "digest"}),
         check_notification_settings, csrf_page=const("/notifications/settings")),
    Case("comment form", "POST", _comment_path, const({"body": "Would it come in green?"}), check_comment_form,
         csrf_page=_idea_page, may_change=POINTS),
    Case("comment api", "POST", lambda w: _comment_path_api(w), const({"body": "Would it come in blue?"}),
         check_comment_api, api=True, may_change=POINTS),
    Case("vote api", "PUT", _vote_path, const({}), check_vote, api=True,
         may_change=POINTS | {("idea", "vote_count"), ("idea", "hot_score"), ("idea", "ready_for_review")}),
    Case("pledge form", "POST", _pledge_form_path, lambda w: _pledge_form_body(w), check_pledge,
         may_change=CUSTOMER | {("campaign_variant", "reserved")}),
    Case("pledge api", "POST", _pledge_api_path, lambda w: _pledge_api_body(w), check_pledge, api=True,
         may_change=CUSTOMER | {("campaign_variant", "reserved")}),
    Case("cart form", "POST", const("/cart/lines"), _variant_body, check_cart, csrf_page=_product_page),
    Case("checkout form", "POST", const("/checkout"), const({**ADDRESS, "shipping": "standard"}), check_checkout_form,
         prepare=prepare_cart, csrf_page=const("/checkout"), may_change=CUSTOMER | {("product_variant", "stock")}),
    Case("checkout api", "POST", const("/api/v1/checkout"), _checkout_api_body, check_checkout_api, api=True,
         may_change=CUSTOMER | {("product_variant", "stock")}),
    Case("review form", "POST", _review_form_path, const({"rating": "4", "title": "Good", "body": "Holds up well."}),
         check_review_form, prepare=prepare_review, csrf_page=_product_page,
         may_change=POINTS | {("product", "rating_count"), ("product", "rating_sum"), ("product", "rating_avg")}),
    Case("review api", "POST", _review_api_path, const({"rating": 2, "title": "Meh", "body": "The strap broke."}),
         check_review_api, api=True, prepare=prepare_review,
         may_change=POINTS | {("product", "rating_count"), ("product", "rating_sum"), ("product", "rating_avg")}),
    Case("product question form", "POST", _question_path, const({"body": "Is it machine washable?"}), check_question,
         csrf_page=_product_page),
    Case("delivery address form", "POST", const("/orders/CM-MASS0001/address"), const(ADDRESS), check_address,
         prepare=prepare_preorder, csrf_page=const("/orders/CM-MASS0001")),
    Case("points voucher form", "POST", const("/points/redeem"), const({}), check_redeem, prepare=prepare_points,
         csrf_page=const("/points"), may_change=POINTS),
]


async def _profile_body(w: World) -> dict:
    return {"display_name": "Attacker Member", "handle": (await w.attacker()).handle, "bio": "I make things.",
            "location": "Malmö"}


async def _comment_path_api(w: World) -> str:
    return "/api/v1" + await _comment_path(w)


async def _pledge_form_body(w: World) -> dict:
    body = await _pledge_body(w)
    return {"variant": str(body["variant"]), "quantity": "1", "consent": "yes"}


async def _pledge_api_body(w: World) -> dict:
    return {**await _pledge_body(w), "consent": True}


# ---- the walk -----------------------------------------------------------------------------------

async def protected_snapshot() -> dict[tuple[str, int], dict[str, Any]]:
    found = {}
    for table in ALL_TABLES:
        name = table._meta.tablename
        columns = [c._meta.db_column_name for c in table._meta.columns if c._meta.name in PROTECTED]
        if not columns:
            continue
        for row in await raw(f'SELECT id, {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{name}"'):
            found[(name, row["id"])] = {c: row[c] for c in columns}
    return found


def _clear_message(response) -> bool:
    if response.headers.get("content-type", "").startswith("application/json"):
        return bool(str(response.json().get("detail", "")).strip())
    return "<html" in response.text and len(response.text) > 200


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_extra_fields_never_set_what_the_server_decides(client, stripe, case: Case):
    w = World()
    attacker, victim = await w.attacker(), await w.victim()
    victim_idea = await w.victim_idea()
    path = await case.path(w)
    body = await case.body(w)
    if case.prepare:
        await case.prepare(w)
    extras = hostile(victim, victim_idea)
    headers: dict[str, str] = {}
    if case.api:
        if not case.visitor:
            headers["Authorization"] = f"Bearer {await w.token()}"
        request = {"json": {**extras, **body}}
    else:
        if not case.visitor:
            await login(client, attacker.email)
        page = await client.get(await case.csrf_page(w) if case.csrf_page else "/account")
        assert page.status_code == 200, (page.status_code, page.text[:300])
        request = {"data": {**as_form(extras), **as_form(body), "_csrf_token": csrf_from(page.text)}}
    before = await protected_snapshot()
    victim_rows = (await _rows("member", id=victim.id), await _rows("idea", id=victim_idea))

    response = await client.request(case.method, path, headers=headers, **request)

    assert response.status_code < 500, response.text[:500]
    refused = 400 <= response.status_code < 500
    if refused:
        assert response.status_code in (400, 422) and _clear_message(response), (response.status_code, response.text[:500])
    after = await protected_snapshot()
    for key, values in after.items():
        if key in before:
            changed = {c for c in values if values[c] != before[key][c]}
            assert not changed - {c for t, c in case.may_change if t == key[0]}, (key, before[key], values)
        else:
            assert not refused, f"a refused request wrote {key}: {values}"
            changed = set(values)
        for column in changed:  # a new row or a column the action moves: nothing hostile landed in it
            value = values[column]
            assert value not in ("cus_hostile", "pm_hostile"), (key, column, values)
            if column in MEMBER_REFS:
                assert value != victim.id, (key, column, values)
            if column in MONEY_COLUMNS:
                assert value != MONEY, (key, column, values)
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert value != SENTINEL, (key, column, values)
            if column == "email_verified_at":
                assert value is None, (key, values)
    assert (await _rows("member", id=victim.id), await _rows("idea", id=victim_idea)) == victim_rows
    if not refused:
        assert response.status_code in (200, 201, 202, 303), (response.status_code, response.text[:500])
        await case.check(w)
    await assert_audit_clean()
