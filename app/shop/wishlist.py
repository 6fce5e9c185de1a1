"""The wishlist: hearts on products and ideas, one per member and subject (partial unique
indexes), and a public link when the member chooses to share it."""

from __future__ import annotations

from typing import Any

from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.db import id_list, raw, utcnow, write_transaction
from app.errors import FormError, NotFound
from app.i18n import gettext
from app.ideas.service import LIST_COLUMNS, PUBLIC_STATUSES, attach_thumbnails, can_view
from app.ideas.tables import Idea
from app.shop.tables import Product, ProductImage, WishlistItem

KINDS = ("product", "idea")
MAX_ITEMS = 500


async def hearted_product_ids(viewer: CurrentMember | None, ids: list[int]) -> set[int]:
    """Which of these products the viewer hearted (one query; empty for visitors)."""
    wanted = list(dict.fromkeys(i for i in ids if isinstance(i, int)))
    if viewer is None or not wanted:
        return set()
    # Plain SQL: on every product page a member opens, building the query cost more than running it.
    marks = ", ".join("{}" for _ in wanted)
    rows = await raw(f'SELECT "product" FROM "wishlist_item" WHERE "member" = {{}} AND "product" IN ({marks})',
                     viewer.id, *wanted)
    return {r["product"] for r in rows}


async def hearted_idea_ids(viewer: CurrentMember | None, ids: list[int]) -> set[int]:
    """Which of these ideas the viewer hearted (one query; empty for visitors)."""
    if viewer is None or not ids:
        return set()

    rows = await raw(f'SELECT "idea" FROM "wishlist_item" WHERE "member" = {{}} AND "idea" IN {id_list(ids)}', viewer.id)
    return {r["idea"] for r in rows}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound(gettext("Not found"))
    return kind


async def subject_title(kind: str, subject_id: int, viewer: CurrentMember | None) -> str:
    """The product's or idea's name, or NotFound when the viewer may not see it."""
    _check_kind(kind)
    if kind == "product":
        row = await Product.select(Product.name, Product.status).where(Product.id == subject_id).first()
        if row is None or (row["status"] != "active" and not (viewer and viewer.is_staff)):
            raise NotFound(gettext("Product not found"))
        return row["name"]
    row = await Idea.select(Idea.title, Idea.status, Idea.author).where(Idea.id == subject_id).first()
    if row is None or not can_view(row, viewer):
        raise NotFound(gettext("Idea not found"))
    return row["title"]


async def set_heart(member: CurrentMember, kind: str, subject_id: int, on: bool | None = None) -> bool:
    """Heart (on=True), un-heart (on=False) or toggle (None). Returns whether it is hearted now.

    The form sends the state it wants, so a double click cannot flip it back; the partial
    unique index keeps one row per member and subject under concurrency."""
    await subject_title(kind, subject_id, member)
    column = WishlistItem.product if kind == "product" else WishlistItem.idea
    async with write_transaction():
        exists = await WishlistItem.exists().where((WishlistItem.member == member.id) & (column == subject_id))
        want = (not exists) if on is None else on
        if want and not exists:
            count = await WishlistItem.count().where(WishlistItem.member == member.id)
            if count >= MAX_ITEMS:
                raise FormError({"wishlist": gettext("Your wishlist is full (%(num)s items); remove something first.",
                                                     num=MAX_ITEMS)})
            row = WishlistItem(member=member.id, product=subject_id if kind == "product" else None,
                               idea=subject_id if kind == "idea" else None, created_at=utcnow())
            await WishlistItem.insert(row).on_conflict(action="DO NOTHING")
        elif not want and exists:
            await WishlistItem.delete().where((WishlistItem.member == member.id) & (column == subject_id))
    return want


async def set_public(member: CurrentMember, public: bool) -> None:
    await Member.update({Member.wishlist_public: bool(public)}).where(Member.id == member.id)


async def is_public(member_id: int) -> bool:
    row = await Member.select(Member.wishlist_public).where(Member.id == member_id).first()
    return bool(row and row["wishlist_public"])


async def product_thumbs(product_ids: list[int]) -> dict[int, str]:
    """The first image's thumbnail of each product (one query)."""
    if not product_ids:
        return {}
    images = await ProductImage.select(ProductImage.product, ProductImage.thumb_key).where(
        ProductImage.product.is_in(list(product_ids))).order_by(ProductImage.position).order_by(ProductImage.id)
    first: dict[int, str] = {}
    for image in images:
        first.setdefault(image["product"], image["thumb_key"])
    return first


async def wishlist_of(member_id: int, *, public_only: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The member's hearted products (active ones) and ideas (public ones), newest first."""
    items = await WishlistItem.select(WishlistItem.product, WishlistItem.idea).where(
        WishlistItem.member == member_id).order_by(WishlistItem.created_at, WishlistItem.id, ascending=False)
    product_ids = [i["product"] for i in items if i["product"]]
    idea_ids = [i["idea"] for i in items if i["idea"]]
    products: list[dict[str, Any]] = []
    if product_ids:
        query = Product.select(Product.id, Product.slug, Product.name, Product.summary, Product.price,
                               Product.currency, Product.status, Product.rating_avg, Product.rating_count).where(
            Product.id.is_in(product_ids))
        rows = {r["id"]: r for r in await query}
        thumbs = await product_thumbs(product_ids)
        for pid in product_ids:
            row = rows.get(pid)
            if row is None or (public_only and row["status"] != "active"):
                continue
            products.append({**row, "thumb_key": thumbs.get(pid), "url": f"/shop/{row['slug']}"})
    ideas: list[dict[str, Any]] = []
    if idea_ids:
        rows = {r["id"]: r for r in await Idea.select(*LIST_COLUMNS).where(Idea.id.is_in(idea_ids))}
        public = {s.value for s in PUBLIC_STATUSES}
        ideas = [rows[i] for i in idea_ids if i in rows and rows[i]["status"] in public]
        await attach_thumbnails(ideas)
    return {"products": products, "ideas": ideas}


async def public_wishlist(handle: str) -> dict[str, Any]:
    """A shared wishlist by the member's handle; NotFound unless the member made it public."""
    member = await Member.select(Member.id, Member.display_name, Member.handle, Member.wishlist_public).where(
        (Member.handle == handle) & Member.deleted_at.is_null()).first()
    if member is None or not member["wishlist_public"]:
        raise NotFound(gettext("Wishlist not found"))
    return {"owner": member, **await wishlist_of(member["id"])}
