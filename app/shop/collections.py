"""Collections: staff-curated, ordered lists of products and ideas with a cover and a text,
featured on the home page in a chosen order (DESIGN section 7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.accounts.service import CurrentMember
from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import Forbidden, FormError, NotFound
from app.i18n import gettext
from app.ideas.service import PUBLIC_STATUSES, attach_thumbnails
from app.ideas.tables import Idea
from app.shop.tables import Collection, CollectionItem, Product
from app.shop.wishlist import product_thumbs

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_ITEMS = 100


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-")


def _staff(member: CurrentMember | None) -> None:
    if member is None or not member.is_staff:
        raise Forbidden(gettext("Staff only."))


@dataclass
class CollectionInput:
    title: str = ""
    slug: str = ""
    body: str = ""
    published: bool = False
    featured: bool = False
    home_position: str | int = 0
    cover_key: str | None = None  # a stored image key, when a new cover was uploaded
    upload_errors: dict[str, str] | None = None  # a refused cover, reported with the other fields


async def _validate(data: CollectionInput, collection_id: int | None = None) -> dict[Any, Any]:
    errors: dict[str, str] = dict(data.upload_errors or {})
    title = data.title.strip()
    if not title:
        errors["title"] = gettext("Give the collection a title.")
    elif len(title) > 120:
        errors["title"] = gettext("Keep the title under 120 characters.")
    slug = (data.slug or "").strip().lower() or slugify(title)
    if not slug or not SLUG_RE.match(slug) or len(slug) > 80:
        errors["slug"] = gettext("Use lowercase letters, digits and dashes, e.g. winter-favourites.")
    elif await Collection.exists().where((Collection.slug == slug) & (Collection.id != (collection_id or -1))):
        errors["slug"] = gettext("Another collection already uses this address; choose another.")
    body = data.body.strip()
    if len(body) > 5000:
        errors["body"] = gettext("Keep the text under 5,000 characters.")
    try:
        position = int(str(data.home_position).strip() or 0)
        if not 0 <= position <= 1000:
            raise ValueError
    except ValueError:
        position = 0
        errors["home_position"] = gettext("Use a whole number from 0 to 1000 (lower comes first).")
    if errors:
        raise FormError(errors, gettext("Please fix the collection."))
    values = {Collection.title: title, Collection.slug: slug, Collection.body: body,
              Collection.published: bool(data.published), Collection.featured: bool(data.featured),
              Collection.home_position: position, Collection.updated_at: utcnow()}
    if data.cover_key is not None:
        values[Collection.cover_key] = data.cover_key
    return values


async def create_collection(staff: CurrentMember, data: CollectionInput) -> int:
    _staff(staff)
    values = await _validate(data)
    row = Collection(**{column._meta.name: value for column, value in values.items()})
    try:
        rows = await Collection.insert(row).returning(Collection.id)
    except Exception as error:  # the unique slug lost a race with another editor
        if "unique" in str(error).lower():
            raise FormError({"slug": gettext("Another collection already uses this address; choose another.")}) from None
        raise
    return rows[0]["id"]


async def set_published(staff: CurrentMember, collection_id: int, published: bool) -> bool:
    """Publish or unpublish a collection (moderation takes one down, app/moderation), once:
    whether this call changed it."""
    _staff(staff)
    changed = await Collection.update({Collection.published: published, Collection.updated_at: utcnow()}).where(
        (Collection.id == collection_id) & Collection.published.eq(not published)).returning(Collection.id)
    return bool(changed)


async def update_collection(staff: CurrentMember, collection_id: int, data: CollectionInput) -> None:
    _staff(staff)
    await get_collection_row(collection_id)
    values = await _validate(data, collection_id)
    try:
        await Collection.update(values).where(Collection.id == collection_id)
    except Exception as error:
        if "unique" in str(error).lower():
            raise FormError({"slug": gettext("Another collection already uses this address; choose another.")}) from None
        raise


async def delete_collection(staff: CurrentMember, collection_id: int) -> None:
    _staff(staff)
    await Collection.delete().where(Collection.id == collection_id)


async def get_collection_row(collection_id: int) -> dict[str, Any]:
    row = await Collection.select().where(Collection.id == collection_id).first()
    if row is None:
        raise NotFound(gettext("Collection not found"))
    return row


async def _lock_collection(collection_id: int) -> None:
    query = Collection.select(Collection.id).where(Collection.id == collection_id)
    if not is_sqlite():
        query = query.lock_rows()
    if await query.first() is None:
        raise NotFound(gettext("Collection not found"))


async def add_item(staff: CurrentMember, collection_id: int, *, kind: str, ref: str, note: str = "") -> int:
    """Append a product (by slug) or an idea (by id or /ideas/<id> link) to the collection."""
    _staff(staff)
    ref = (ref or "").strip()
    note = (note or "").strip()
    if len(note) > 200:
        raise FormError({"note": gettext("Keep the note under 200 characters.")})
    values: dict[str, Any] = {}
    if kind == "product":
        slug = ref.rstrip("/").rsplit("/", 1)[-1]
        product = await Product.select(Product.id).where(Product.slug == slug).first() if slug else None
        if product is None:
            raise FormError({"ref": gettext("No product has the address “%(ref)s”. Use its slug, e.g. rain-jacket.",
                                            ref=ref)})
        values["product"] = product["id"]
        column = CollectionItem.product
    elif kind == "idea":
        match = re.search(r"(\d+)/?$", ref)
        idea = await Idea.select(Idea.id, Idea.status).where(Idea.id == int(match.group(1))).first() if match else None
        if idea is None or idea["status"] not in {s.value for s in PUBLIC_STATUSES}:
            raise FormError({"ref": gettext("No public idea has that number. Use its id, e.g. 42, or its link.")})
        values["idea"] = idea["id"]
        column = CollectionItem.idea
    else:
        raise FormError({"kind": gettext("Choose a product or an idea.")})
    async with write_transaction():
        await _lock_collection(collection_id)
        if await CollectionItem.exists().where((CollectionItem.collection == collection_id) & (column == next(iter(values.values())))):
            raise FormError({"ref": gettext("That is already in this collection.")})
        items = await CollectionItem.select(CollectionItem.position).where(CollectionItem.collection == collection_id)
        if len(items) >= MAX_ITEMS:
            raise FormError({"ref": gettext("A collection holds at most %(num)s items.", num=MAX_ITEMS)})
        position = max((i["position"] for i in items), default=-1) + 1
        rows = await CollectionItem.insert(CollectionItem(collection=collection_id, position=position, note=note,
                                                          **values)).returning(CollectionItem.id)
        await Collection.update({Collection.updated_at: utcnow()}).where(Collection.id == collection_id)
    return rows[0]["id"]


async def _item(collection_id: int, item_id: int) -> dict[str, Any]:
    row = await CollectionItem.select().where(
        (CollectionItem.id == item_id) & (CollectionItem.collection == collection_id)).first()
    if row is None:
        raise NotFound(gettext("Item not found"))
    return row


async def move_item(staff: CurrentMember, collection_id: int, item_id: int, direction: str) -> None:
    """Swap the item with its neighbour above ("up") or below ("down")."""
    _staff(staff)
    if direction not in ("up", "down"):
        raise FormError({"direction": gettext("Move up or down.")})
    async with write_transaction():
        await _lock_collection(collection_id)
        items = await CollectionItem.select(CollectionItem.id, CollectionItem.position).where(
            CollectionItem.collection == collection_id).order_by(CollectionItem.position).order_by(CollectionItem.id)
        ids = [i["id"] for i in items]
        if item_id not in ids:
            raise NotFound(gettext("Item not found"))
        index = ids.index(item_id)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(ids):
            return
        ids[index], ids[other] = ids[other], ids[index]
        # Renumber densely: positions stay unique and gap-free whatever happened before.
        for position, row_id in enumerate(ids):
            await CollectionItem.update({CollectionItem.position: position}).where(CollectionItem.id == row_id)


async def update_item_note(staff: CurrentMember, collection_id: int, item_id: int, note: str) -> None:
    _staff(staff)
    note = (note or "").strip()
    if len(note) > 200:
        raise FormError({"note": gettext("Keep the note under 200 characters.")})
    await _item(collection_id, item_id)
    await CollectionItem.update({CollectionItem.note: note}).where(CollectionItem.id == item_id)


async def remove_item(staff: CurrentMember, collection_id: int, item_id: int) -> None:
    _staff(staff)
    await CollectionItem.delete().where((CollectionItem.id == item_id) & (CollectionItem.collection == collection_id))


# ---- reading --------------------------------------------------------------------------------


async def resolve_items(collection_ids: list[int], *, public_only: bool = True,
                        per_collection: int | None = None) -> dict[int, list[dict[str, Any]]]:
    """Items of these collections in order, each with kind, title, url, price or votes, thumb.
    A fixed number of queries whatever the number of collections and items."""
    if not collection_ids:
        return {}
    rows = await CollectionItem.select().where(CollectionItem.collection.is_in(list(collection_ids))).order_by(
        CollectionItem.position).order_by(CollectionItem.id)
    product_ids = [r["product"] for r in rows if r["product"]]
    idea_ids = [r["idea"] for r in rows if r["idea"]]
    products = {p["id"]: p for p in await Product.select(
        Product.id, Product.slug, Product.name, Product.summary, Product.price, Product.currency, Product.status,
        Product.rating_avg, Product.rating_count).where(Product.id.is_in(product_ids))} if product_ids else {}
    thumbs = await product_thumbs(product_ids)
    ideas: dict[int, dict[str, Any]] = {}
    if idea_ids:
        idea_rows = await Idea.select(Idea.id, Idea.title, Idea.summary, Idea.status, Idea.vote_count).where(
            Idea.id.is_in(idea_ids))
        await attach_thumbnails(idea_rows)
        ideas = {i["id"]: i for i in idea_rows}
    public = {s.value for s in PUBLIC_STATUSES}
    out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in collection_ids}
    for row in rows:
        bucket = out[row["collection"]]
        if per_collection is not None and len(bucket) >= per_collection:
            continue
        base = {"item_id": row["id"], "position": row["position"], "note": row["note"]}
        if row["product"]:
            p = products.get(row["product"])
            if p is None or (public_only and p["status"] != "active"):
                continue
            bucket.append({**base, "kind": "product", "id": p["id"], "title": p["name"], "summary": p["summary"],
                           "url": f"/shop/{p['slug']}", "slug": p["slug"], "price": p["price"],
                           "currency": p["currency"], "votes": None, "status": p["status"],
                           "rating_avg": p["rating_avg"], "rating_count": p["rating_count"],
                           "thumb_key": thumbs.get(p["id"])})
        elif row["idea"]:
            i = ideas.get(row["idea"])
            if i is None or (public_only and i["status"] not in public):
                continue
            bucket.append({**base, "kind": "idea", "id": i["id"], "title": i["title"], "summary": i["summary"],
                           "url": f"/ideas/{i['id']}", "price": None, "currency": None, "votes": i["vote_count"],
                           "status": i["status"], "thumb_key": i.get("thumb_key")})
    return out


async def list_collections(*, published_only: bool = True, featured_only: bool = False, limit: int = 100,
                           offset: int = 0, preview_items: int | None = 4) -> list[dict[str, Any]]:
    """Featured first (by home position), then the others newest first."""
    query = Collection.select()
    if published_only:
        query = query.where(Collection.published.eq(True))
    if featured_only:
        query = query.where(Collection.featured.eq(True))
    rows = await query.order_by(Collection.featured, ascending=False).order_by(Collection.home_position).order_by(
        Collection.id, ascending=False).offset(offset).limit(limit)
    if preview_items is not None:
        items = await resolve_items([r["id"] for r in rows], public_only=True)
        for row in rows:
            row["item_count"] = len(items.get(row["id"], []))
            row["items"] = items.get(row["id"], [])[:preview_items]
    return rows


async def featured_collections(limit: int = 3, preview_items: int = 4) -> list[dict[str, Any]]:
    """Published and featured collections in their home-page order."""
    return await list_collections(featured_only=True, limit=limit, preview_items=preview_items)


async def get_collection(slug: str, viewer: CurrentMember | None = None) -> dict[str, Any]:
    """A published collection with its items (staff also see drafts)."""
    row = await Collection.select().where(Collection.slug == slug).first()
    staff = viewer is not None and viewer.is_staff
    if row is None or (not row["published"] and not staff):
        raise NotFound(gettext("Collection not found"))
    row["items"] = (await resolve_items([row["id"]], public_only=True))[row["id"]]
    return row


async def staff_collections() -> list[dict[str, Any]]:
    rows = await Collection.select().order_by(Collection.featured, ascending=False).order_by(
        Collection.home_position).order_by(Collection.id, ascending=False)
    counts = {r["collection"]: int(r["n"]) for r in await raw(
        "SELECT collection, COUNT(*) AS n FROM collection_item GROUP BY collection")}
    for row in rows:
        row["item_count"] = counts.get(row["id"], 0)
    return rows


async def staff_collection(collection_id: int) -> dict[str, Any]:
    row = await get_collection_row(collection_id)
    row["items"] = (await resolve_items([collection_id], public_only=False))[collection_id]
    return row
