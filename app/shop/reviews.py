"""Reviews by verified buyers, ratings, and the review-request email job.

A member may review a product once (unique (product, member)); a second submit edits the first.
Only a verified buyer may review: a member with a paid-or-later order holding a line of that
product. `Product.rating_count / rating_sum / rating_avg` cache the visible reviews and move in
the same transaction as the review, under the product's row lock (PostgreSQL) or the IMMEDIATE
transaction (SQLite), so they stay exact under concurrency. A review staff hide leaves the
average.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import Forbidden, FormError, NotFound
from app.events import emit
from app.i18n import N_, gettext
from app.jobs.service import enqueue, job_handler
from app.mail.service import queue_email
from app.orders.tables import OrderLine
from app.settings import get_settings
from app.shop.events import ReviewHidden, ReviewSaved
from app.shop.tables import Product, Review

log = logging.getLogger("crowdmade.shop.reviews")

# Orders that count as "bought": paid and everything after it (not placed, cancelled, refunded).
BOUGHT_STATUSES = ("paid", "in_production", "shipped", "delivered")
MAX_TITLE = 120
MAX_BODY = 4000
VISIBLE_LIMIT = 20
NOT_A_BUYER = N_("Only members who bought this product can review it.")


# ---- checks ---------------------------------------------------------------------------------


def _bought_sql() -> tuple[str, list[Any]]:
    """The verified-buyer rule as one SQL condition (with `{}` for the product and the member,
    in that order): a paid order line of the product, or a paid pre-order of the campaign the
    product was published from. Both `is_verified_buyer` and `may_review` ask it."""
    marks = ", ".join("{}" for _ in BOUGHT_STATUSES)
    sql = ('(EXISTS (SELECT 1 FROM "order_line" l JOIN "shop_order" o ON o."id" = l."order" '
           f'WHERE l."product_id" = {{}} AND o."member" = {{}} AND o."status" IN ({marks})) '
           'OR EXISTS (SELECT 1 FROM "shop_order" o JOIN "product" p ON p."campaign" = o."campaign_id" '
           f'WHERE p."id" = {{}} AND o."member" = {{}} AND o."kind" = {{}} AND o."status" IN ({marks})))')
    return sql, [*BOUGHT_STATUSES]


async def is_verified_buyer(member_id: int, product_id: int) -> bool:
    sql, statuses = _bought_sql()
    rows = await raw(f'SELECT {sql} AS "yes"', product_id, member_id, *statuses, product_id, member_id, "preorder",
                     *statuses)
    return bool(rows and rows[0]["yes"])


async def may_review(member_id: int, product_id: int) -> bool:
    """Whether the member has a review of this product or may write one (a verified buyer): one
    statement, asked on every product page a member opens."""
    sql, statuses = _bought_sql()
    rows = await raw(f'SELECT (EXISTS (SELECT 1 FROM "product_review" WHERE "product" = {{}} AND "member" = {{}}) '
                     f'OR {sql}) AS "yes"', product_id, member_id, product_id, member_id, *statuses, product_id,
                     member_id, "preorder", *statuses)
    return bool(rows and rows[0]["yes"])


def validate_review(rating: Any, title: Any, body: Any) -> tuple[int, str, str]:
    errors: dict[str, str] = {}
    try:
        stars = int(str(rating).strip())
        if not 1 <= stars <= 5:
            raise ValueError
    except (TypeError, ValueError):
        stars = 0
        errors["rating"] = gettext("Choose from 1 to 5 stars.")
    title = str(title or "").strip()
    body = str(body or "").strip()
    if len(title) > MAX_TITLE:
        errors["title"] = gettext("Keep the title under %(max)s characters (it has %(num)s).", max=MAX_TITLE,
                                  num=len(title))
    if len(body) > MAX_BODY:
        errors["body"] = gettext("Keep the review under %(max)s characters (it has %(num)s).", max=MAX_BODY,
                                 num=len(body))
    if errors:
        raise FormError(errors, gettext("Please fix your review."))
    return stars, title, body


async def _product(product_id: int | None = None, *, slug: str | None = None) -> dict[str, Any]:
    query = Product.select(Product.id, Product.slug, Product.name, Product.status)
    query = query.where(Product.id == product_id) if product_id is not None else query.where(Product.slug == slug)
    row = await query.first()
    if row is None or row["status"] == "draft":
        raise NotFound(gettext("Product not found"))
    return row


async def product_by_slug(slug: str) -> dict[str, Any]:
    return await _product(slug=slug)


async def product_by_id(product_id: int) -> dict[str, Any]:
    return await _product(product_id)


async def get_review(review_id: int) -> dict[str, Any]:
    row = await Review.select().where(Review.id == review_id).first()
    if row is None:
        raise NotFound(gettext("Review not found"))
    return row


async def review_of(member_id: int, product_id: int) -> dict[str, Any] | None:
    """The member's review of the product (hidden or not), with the author's name."""
    return await Review.select(*Review.all_columns(), Review.member.display_name, Review.member.handle).where(
        (Review.product == product_id) & (Review.member == member_id)).first()


async def _lock_product(product_id: int) -> None:
    """Serialise rating changes of one product (SQLite: the IMMEDIATE transaction already does)."""
    if not is_sqlite():
        await Product.select(Product.id).where(Product.id == product_id).lock_rows()


async def _move_rating(product_id: int, count_delta: int, sum_delta: int) -> None:
    await Product.update({Product.rating_count: Product.rating_count + count_delta,
                          Product.rating_sum: Product.rating_sum + sum_delta}).where(Product.id == product_id)
    await raw("UPDATE product SET rating_avg = CASE WHEN rating_count > 0 "
              "THEN rating_sum * 1.0 / rating_count ELSE 0 END WHERE id = {}", product_id)


# ---- writing --------------------------------------------------------------------------------


async def submit_review(member: CurrentMember, product_id: int, *, rating: Any, title: Any = "",
                        body: Any = "") -> dict[str, Any]:
    """Write or edit the member's review. Raises FormError (bad input), Forbidden (not a buyer)."""
    stars, title, body = validate_review(rating, title, body)
    product = await _product(product_id)
    if not await is_verified_buyer(member.id, product_id):
        raise Forbidden(gettext(NOT_A_BUYER))
    now = utcnow()
    async with write_transaction():
        await _lock_product(product_id)
        existing = await Review.select().where((Review.product == product_id) & (Review.member == member.id)).first()
        if existing is None:
            rows = await Review.insert(Review(product=product_id, member=member.id, rating=stars, title=title,
                                              body=body, created_at=now, updated_at=now)).returning(Review.id)
            review_id = rows[0]["id"]
            await _move_rating(product_id, 1, stars)
        else:
            review_id = existing["id"]
            await Review.update({Review.rating: stars, Review.title: title, Review.body: body,
                                 Review.updated_at: now}).where(Review.id == review_id)
            if not existing["hidden"] and existing["rating"] != stars:
                await _move_rating(product_id, 0, stars - existing["rating"])
        await emit(ReviewSaved(member.id, product_id))
    log.info("review %s of product %s by member %s (%s stars)", review_id, product["id"], member.id, stars)
    return await get_review(review_id)


async def set_hidden(staff: CurrentMember, review_id: int, *, hidden: bool, reason: str = "") -> dict[str, Any]:
    """Staff hide a review (with a reason the author sees) or show it again; exactly once each
    (`changed` says whether this call did). Moderation decides when (app/moderation)."""
    if not staff.is_staff:
        raise Forbidden(gettext("Staff only."))
    reason = (reason or "").strip()
    if hidden and not reason:
        raise FormError({"reason": gettext("Say why the review is hidden; its author sees the reason.")})
    if len(reason) > 500:
        raise FormError({"reason": gettext("Keep the reason under 500 characters.")})
    review = await get_review(review_id)
    async with write_transaction():
        await _lock_product(review["product"])
        moved = await Review.update({Review.hidden: hidden, Review.hidden_reason: reason if hidden else ""}).where(
            (Review.id == review_id) & (Review.hidden.eq(not hidden))).returning(Review.rating)
        if moved:
            stars = moved[0]["rating"]
            await _move_rating(review["product"], -1 if hidden else 1, -stars if hidden else stars)
            if hidden:  # its points go, once (showing it again does not pay them twice)
                await emit(ReviewHidden(review["member"], review["product"], review_id))
    log.info("review %s %s by staff %s", review_id, "hidden" if hidden else "shown", staff.id)
    return {**await get_review(review_id), "changed": bool(moved)}


# ---- reading --------------------------------------------------------------------------------


async def product_reviews(product_id: int, viewer: CurrentMember | None) -> dict[str, Any]:
    """Everything `shop/_reviews.html` needs, as the variable `reviews`."""
    product = await Product.select(Product.id, Product.slug, Product.name, Product.rating_count,
                                   Product.rating_sum, Product.rating_avg).where(Product.id == product_id).first()
    if product is None:
        raise NotFound(gettext("Product not found"))
    counts = {r["rating"]: int(r["n"]) for r in await raw(
        "SELECT rating, COUNT(*) AS n FROM product_review WHERE product = {} AND hidden = {} GROUP BY rating",
        product_id, False)}
    count = product["rating_count"]
    distribution = [{"stars": s, "count": counts.get(s, 0),
                     "percent": round(counts.get(s, 0) * 100 / count) if count else 0} for s in (5, 4, 3, 2, 1)]
    columns = (*Review.all_columns(), Review.member.display_name, Review.member.handle)
    visible = await Review.select(*columns).where((Review.product == product_id) & Review.hidden.eq(False)).order_by(
        Review.created_at, Review.id, ascending=False).limit(VISIBLE_LIMIT)
    hidden: list[dict[str, Any]] = []
    if viewer is not None and viewer.is_staff:
        hidden = await Review.select(*columns).where((Review.product == product_id) & Review.hidden.eq(True)).order_by(
            Review.updated_at, ascending=False).limit(VISIBLE_LIMIT)
    mine = None
    can_review = False
    if viewer is not None:
        mine = await review_of(viewer.id, product_id)
        can_review = mine is not None or await is_verified_buyer(viewer.id, product_id)
    slug = product["slug"]
    return {
        "product": {"id": product["id"], "slug": slug, "name": product["name"]},
        "average": round(product["rating_avg"] or 0, 1),
        "count": count,
        "distribution": distribution,
        "items": visible,
        "hidden_items": hidden,
        "mine": mine,
        "can_review": can_review,
        "viewer_is_staff": bool(viewer and viewer.is_staff),
        "viewer_logged_in": viewer is not None,
        "action": f"/shop/{slug}/reviews",
        "login_url": f"/login?next=/shop/{slug}%23reviews",
    }


async def list_reviews(product_id: int, *, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    return await Review.select(*Review.all_columns(), Review.member.display_name, Review.member.handle).where(
        (Review.product == product_id) & Review.hidden.eq(False)).order_by(
        Review.created_at, Review.id, ascending=False).offset(offset).limit(limit)


# ---- review-request emails -------------------------------------------------------------------


async def due_review_requests(now: dt.datetime | None = None, window_days: int = 30) -> list[dict[str, Any]]:
    """Order lines of delivered orders whose delivery is at least `review_request_days` old (and at
    most `window_days` older than that, so the scan stays small). One line per (order, product)."""
    now = now or utcnow()
    until = now - dt.timedelta(days=get_settings().review_request_days)
    since = until - dt.timedelta(days=window_days)
    rows = await OrderLine.select(OrderLine.id, OrderLine.order, OrderLine.product_id).where(
        (OrderLine.order.status == "delivered") & OrderLine.product_id.is_not_null()
        & (OrderLine.order.delivered_at <= until) & (OrderLine.order.delivered_at > since)
    ).order_by(OrderLine.id)
    seen: set[tuple[int, int]] = set()
    due = []
    for row in rows:
        pair = (row["order"], row["product_id"])
        if pair not in seen:
            seen.add(pair)
            due.append(row)
    return due


async def enqueue_review_requests(now: dt.datetime | None = None) -> int:
    """The periodic scan: one `review_request` job per due order line (unique key per line)."""
    queued = 0
    for row in await due_review_requests(now):
        queued += await enqueue("review_request", {"order_line_id": row["id"]},
                                unique_key=f"review_request:{row['id']}")
    return queued


async def send_review_request(order_line_id: int) -> bool:
    """Email the buyer a link to the product's review form, once per order line."""
    line = await OrderLine.select(OrderLine.id, OrderLine.title, OrderLine.product_id, OrderLine.order.member,
                                  OrderLine.order.number, OrderLine.order.status).where(
        OrderLine.id == order_line_id).first()
    if line is None or line["product_id"] is None or line["order.status"] != "delivered":
        return False
    product = await Product.select(Product.slug, Product.name, Product.status).where(
        Product.id == line["product_id"]).first()
    if product is None or product["status"] != "active":
        return False
    member_id = line["order.member"]
    if await Review.exists().where((Review.product == line["product_id"]) & (Review.member == member_id)):
        return False  # already reviewed: nothing to ask
    member = await Member.select(Member.email, Member.display_name).where(
        (Member.id == member_id) & Member.deleted_at.is_null()).first()
    if member is None:
        return False
    base = get_settings().base_url
    link = f"{base}/shop/{product['slug']}/reviews#write-review"
    return await queue_email(
        kind="review_request", subject_ref=f"order_line:{order_line_id}", to=member["email"],
        subject=N_("How do you like your %(product)s?"), subject_args={"product": product["name"]},
        template="orders/review_request",
        context={"name": member["display_name"], "product": product["name"], "order_number": line["order.number"],
                 "link": link, "star_links": [(s, f"{base}/shop/{product['slug']}/reviews?rating={s}#write-review")
                                              for s in (5, 4, 3, 2, 1)]},
    )


@job_handler("request_reviews", every_seconds=3600)
async def _request_reviews_job(payload: dict[str, Any]) -> None:
    await enqueue_review_requests()


@job_handler("review_request")
async def _review_request_job(payload: dict[str, Any]) -> None:
    await send_review_request(int(payload["order_line_id"]))


async def remove_reviews_of(member_id: int) -> None:
    """A deleted member's reviews, when they chose to remove their content: hidden (the product's
    rating no longer counts them, under its row lock) and emptied. Inside the deletion's transaction."""
    for review in await Review.select(Review.id, Review.product, Review.rating, Review.hidden).where(
            Review.member == member_id):
        await _lock_product(review["product"])
        hidden = await Review.update({Review.hidden: True, Review.hidden_reason: "Removed by its author"}).where(
            (Review.id == review["id"]) & Review.hidden.eq(False)).returning(Review.rating)
        if hidden:
            await _move_rating(review["product"], -1, -hidden[0]["rating"])
        await Review.update({Review.title: "", Review.body: ""}).where(Review.id == review["id"])
