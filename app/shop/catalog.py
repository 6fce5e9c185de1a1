"""The catalog (DESIGN section 7): products published from funded campaigns or created by staff,
variants with stock, images, the shop list (filters, sorts, full-text search, pages), product
pages, questions and answers, "bought together", "members who liked this also liked" and the
recently viewed list.

Exact writes: a product's slug is unique (insert ... ON CONFLICT DO NOTHING, then the next
suffix); one product per campaign (checked under the campaign's row lock on PostgreSQL / the
IMMEDIATE transaction on SQLite); staff stock edits are conditional updates (an absolute value
only when the stock is still what the staff member saw, an adjustment as `stock + n >= 0`), so a
sale at the same moment is never overwritten and stock never goes negative.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from piccolo.columns.combination import WhereRaw

from app.accounts.service import CurrentMember
from app.campaigns.service import get_campaign, parse_money
from app.campaigns.tables import Campaign
from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import Conflict, Forbidden, FormError, NotFound, TooManyRequests
from app.events import emit
from app.i18n import N_, gettext
from app.ideas.service import PUBLIC_STATUSES, decode_cursor, encode_cursor, fts5_query  # noqa: F401  (re-exported for the API)
from app.ideas.tables import Category, Idea, IdeaImage
from app.media.images import StoredImage, check_and_reencode
from app.media.storage import new_key, storage
from app.orders import lookup
from app.settings import get_settings
from app.shop import prices
from app.shop.events import ProductQuestionAnswered, ProductQuestionAsked
from app.shop.tables import BoughtTogether, Product, ProductImage, ProductQuestion, ProductVariant
from app.throttle import counters


class ProductStatus(StrEnum):
    DRAFT = "draft"  # being prepared: staff only
    ACTIVE = "active"  # listed and for sale
    HIDDEN = "hidden"  # taken off the shop for now: 404 to members, staff see a banner
    ARCHIVED = "archived"  # no longer sold: 404 to members


STATUS_LABELS = {
    ProductStatus.DRAFT: N_("Draft"),
    ProductStatus.ACTIVE: N_("In the shop"),
    ProductStatus.HIDDEN: N_("Hidden"),
    ProductStatus.ARCHIVED: N_("Archived"),
}
SORTS = {  # labels translated where shown
    "popular": N_("Most popular"),
    "newest": N_("Newest"),
    "price_asc": N_("Price: low to high"),
    "price_desc": N_("Price: high to low"),
    "rating": N_("Top rated"),
}
RATING_FILTERS = (4, 3)
PAGE_SIZE = 24
LOW_STOCK = 5  # "Only N left" from here down
MAX_VARIANTS = 20
MAX_IMAGES = 10
MAX_STOCK = 1_000_000
MAX_QUESTION = 1_000
MAX_ANSWER = 2_000
QUESTIONS_PER_HOUR = 10
PUBLISHABLE_CAMPAIGNS = ("funded", "charging", "in_production", "delivered")
RECENT_COOKIE = "cm_recent"
RECENT_MAX = 8


def status_label(status: str) -> str:
    """The status in the page's language."""
    try:
        return gettext(STATUS_LABELS[ProductStatus(status)])
    except ValueError:
        return status


def _require_staff(member: CurrentMember | None) -> None:
    if member is None or not member.is_staff:
        raise Forbidden(gettext("Staff only."))


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")
    return slug or "product"


def major_units(minor: int | None) -> str:
    """499_00 -> "499", 499_50 -> "499.50" (what a staff member would type)."""
    if minor is None:
        return ""
    return str(minor // 100) if minor % 100 == 0 else f"{minor / 100:.2f}"


# ---- input and validation ---------------------------------------------------------------------


# Product safety (GPSR): what a product in the shop must show, and the message by each field.
SAFETY_REQUIRED = {
    "manufacturer": N_("Name the manufacturer, with postal address and email, before the product goes in the shop."),
    "eu_responsible": N_("Name the person responsible in the EU, with postal address and email, before the product "
                         "goes in the shop."),
    "safety_info": N_("Write the safety warnings and instructions (or “No special warnings”) before the product goes "
                      "in the shop."),
}
SAFETY_LABELS = {"manufacturer": N_("manufacturer"), "eu_responsible": N_("responsible person in the EU"),
                 "safety_info": N_("safety information")}


@dataclass
class VariantInput:
    name: str = ""
    sku: str = ""
    stock: int | str | None = 0  # only for new variants; existing ones change stock with set_stock()
    price: str | int | None = ""  # major units, blank: the product's price
    id: int | None = None  # an existing variant (when editing)
    remove: bool = False
    made_to_order: bool = False  # made to the buyer's specification: no right of withdrawal


@dataclass
class ProductInput:
    """What staff type. `price` and variant prices are MAJOR units as typed ("299", "299.50")."""

    name: str = ""
    summary: str = ""
    description: str = ""
    details: str = ""
    category: str = ""  # a category slug
    price: str | int | None = ""
    ships_in_days: int | str | None = 3
    status: str = ProductStatus.DRAFT.value
    vat_rate: int | str | None = None  # percent; None: the site's default (VAT_RATES' first)
    manufacturer: str = ""  # product safety (GPSR): required before the product is in the shop
    eu_responsible: str = ""
    safety_info: str = ""
    variants: list[VariantInput] = field(default_factory=list)
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, content)
    remove_images: list[int] = field(default_factory=list)


def _coerce(data: ProductInput | dict[str, Any]) -> ProductInput:
    """The demo loader may pass a plain dict with the same names (variants as dicts too)."""
    if isinstance(data, ProductInput):
        return data
    values = dict(data)
    variants = [v if isinstance(v, VariantInput) else VariantInput(**v) for v in values.pop("variants", [])]
    return ProductInput(**values, variants=variants)


def _whole(value: int | str | None, default: int | None = None) -> int | None:
    if value is None or str(value).strip() == "":
        return default
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d{1,10}", text):
        raise ValueError
    return int(text)


def _price(value: str | int | None) -> int | None:
    """Major units -> minor units; raises ValueError for anything that is not a price of 1.00+."""
    minor = parse_money(value)
    if minor is not None and minor < 100:
        raise ValueError
    return minor


async def _validate(data: ProductInput, *, existing_images: int = 0,
                    existing_variants: dict[int, dict] | None = None) -> tuple[dict[str, Any], list[VariantInput], list]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    name = (data.name or "").strip()
    if len(name) < 2:
        errors["name"] = gettext("Give the product a name of at least 2 characters.")
    elif len(name) > 120:
        errors["name"] = gettext("Keep the name under 120 characters.")
    values["name"] = name
    for key, limit, message in (("summary", 280, N_("Keep the summary under %(num)s characters.")),
                                ("description", 10_000, N_("Keep the description under %(num)s characters.")),
                                ("details", 5_000, N_("Keep the details under %(num)s characters."))):
        text = (getattr(data, key) or "").strip()
        if len(text) > limit:
            errors[key] = gettext(message, num=format(limit, ","))
        values[key] = text
    values["category"] = None
    if data.category:
        row = await Category.select(Category.id).where(Category.slug == str(data.category)).first()
        if row is None:
            errors["category"] = gettext("Choose one of the listed categories.")
        else:
            values["category"] = row["id"]
    try:
        values["price"] = _price(data.price)
        if values["price"] is None:
            errors["price"] = gettext("Set a price, e.g. 299 or 299.50.")
    except ValueError:
        errors["price"] = gettext("Write the price as a number of at least 1.00, e.g. 299 or 299.50.")
    try:
        values["ships_in_days"] = _whole(data.ships_in_days, 3)
        if not 0 <= values["ships_in_days"] <= 90:
            raise ValueError
    except ValueError:
        errors["ships_in_days"] = gettext("Ships within how many days? Use a whole number from 0 to 90.")
    if data.status not in {s.value for s in ProductStatus}:
        errors["status"] = gettext("Choose draft, active, hidden or archived.")
    for key, limit in (("manufacturer", 1_000), ("eu_responsible", 1_000), ("safety_info", 5_000)):
        text = (getattr(data, key) or "").strip()
        if len(text) > limit:
            errors[key] = gettext("Keep it under %(num)s characters.", num=format(limit, ","))
        elif not text and data.status == ProductStatus.ACTIVE.value:
            errors[key] = gettext(SAFETY_REQUIRED[key])
        values[key] = text
    try:
        values["vat_rate"] = get_settings().vat_rate(data.vat_rate)
    except ValueError:
        errors["vat_rate"] = gettext("Choose a VAT rate: %(rates)s.",
                                     rates=", ".join(f"{r} %" for r in get_settings().vat_rate_choices()))
    values["status"] = data.status

    existing_variants = existing_variants or {}
    variants: list[VariantInput] = []
    problems: list[str] = []
    for index, variant in enumerate(data.variants, start=1):
        variant_name = (variant.name or "").strip()
        if variant.id is not None and variant.id not in existing_variants:
            problems.append(gettext("Variant %(num)s is not part of this product.", num=index))
            continue
        typed = any(str(value or "").strip() not in ("", "0") for value in (variant.sku, variant.price, variant.stock))
        if variant.remove or (not variant_name and variant.id is None and not typed):
            if variant.remove and variant.id is not None:
                variants.append(VariantInput(id=variant.id, name=variant_name, remove=True))
            continue
        clean = VariantInput(name=variant_name, sku=str(variant.sku or "").strip(), id=variant.id,
                             made_to_order=bool(variant.made_to_order))
        if not variant_name:
            problems.append(gettext("Variant %(num)s: give it a name (e.g. M, Blue or One size).", num=index))
        elif len(variant_name) > 60:
            problems.append(gettext("Variant %(num)s: keep the name under 60 characters.", num=index))
        if len(clean.sku) > 40:
            problems.append(gettext("Variant %(num)s: keep the SKU under 40 characters.", num=index))
        try:
            clean.price = _price(variant.price)
        except ValueError:
            problems.append(gettext("Variant %(num)s: write its price as a number of at least 1.00, or leave it empty.",
                                    num=index))
        if variant.id is None:
            try:
                clean.stock = _whole(variant.stock, 0)
                if not 0 <= clean.stock <= MAX_STOCK:
                    raise ValueError
            except ValueError:
                problems.append(gettext("Variant %(num)s: stock must be a whole number, 0 or more.", num=index))
        variants.append(clean)
    kept = [v for v in variants if not v.remove]
    names = [v.name.lower() for v in kept if v.name]
    if len(set(names)) != len(names):
        problems.append(gettext("Each variant needs a different name."))
    if not kept:
        problems.append(gettext("Add at least one variant (e.g. “One size”) with its stock."))
    if len(kept) > MAX_VARIANTS:
        problems.append(gettext("Use at most %(num)s variants.", num=MAX_VARIANTS))
    if problems:
        errors["variants"] = " ".join(problems)

    uploads = [(filename, content) for filename, content in data.uploads if content]
    if existing_images + len(uploads) > MAX_IMAGES:
        errors["images"] = gettext("A product can have at most %(num)s images.", num=MAX_IMAGES)
    processed = []
    if "images" not in errors:
        max_bytes = get_settings().upload_max_bytes
        for filename, content in uploads:
            try:
                processed.append(await asyncio.to_thread(check_and_reencode, content, filename=filename,
                                                         max_bytes=max_bytes))
            except FormError as error:
                errors.update(error.errors)
                break
    if errors:
        raise FormError(errors)
    return values, variants, processed


def _save_images(processed: list) -> list[StoredImage]:
    stored = []
    for full, thumb, width, height in processed:
        key = new_key(".jpg")
        thumb_key = key.replace(".jpg", "-t.jpg")
        storage().save_as(key, full)
        storage().save_as(thumb_key, thumb)
        stored.append(StoredImage(key, thumb_key, width, height))
    return stored


async def _insert_images(product_id: int, stored: list[StoredImage], start: int, alt: str) -> None:
    for offset, image in enumerate(stored):
        await ProductImage.insert(ProductImage(product=product_id, position=start + offset, key=image.key,
                                               thumb_key=image.thumb_key, width=image.width, height=image.height,
                                               alt=alt[:160]))


async def _insert_product(values: dict[str, Any]) -> tuple[int, str]:
    """Insert with a unique slug: the name's slug, else the next free "-2", "-3", ... A slug taken
    by a concurrent insert is skipped (ON CONFLICT DO NOTHING), never an error."""
    base = slugify(values["name"])
    taken = {r["slug"] for r in await Product.select(Product.slug).where(
        (Product.slug == base) | Product.slug.like(f"{base}-%"))}
    number, candidate = 1, base
    while True:
        if candidate not in taken:
            rows = await Product.insert(Product(slug=candidate, **values)).on_conflict(
                target=Product.slug, action="DO NOTHING").returning(Product.id)
            if rows:
                return rows[0]["id"], candidate
        number += 1
        candidate = f"{base}-{number}"


async def _insert_variants(product_id: int, variants: list[VariantInput], start: int = 0) -> None:
    for position, variant in enumerate(variants, start=start):
        await ProductVariant.insert(ProductVariant(product=product_id, name=variant.name, sku=variant.sku,
                                                   position=position, price=variant.price, stock=variant.stock or 0,
                                                   made_to_order=variant.made_to_order))


def _product_values(values: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row = {k: values[k] for k in ("name", "summary", "description", "details", "category", "price", "ships_in_days",
                                  "status", "vat_rate", "manufacturer", "eu_responsible", "safety_info")}
    row.update(currency=get_settings().currency, created_at=now, updated_at=now,
               published_at=now if values["status"] == ProductStatus.ACTIVE else None)
    return row


# ---- staff: create, edit, status, stock, publish a campaign ----------------------------------


async def create_product(staff: CurrentMember, data: ProductInput | dict[str, Any]) -> dict[str, Any]:
    """Create a product directly (staff). Returns the product as get_product_for_staff() does."""
    _require_staff(staff)
    data = _coerce(data)
    values, variants, processed = await _validate(data)
    stored = _save_images(processed)
    async with write_transaction():
        product_id, _ = await _insert_product(_product_values(values))
        await _insert_variants(product_id, variants)
        await prices.record_prices(product_id)
        await _insert_images(product_id, stored, 0, values["name"])
    return await get_product_for_staff(staff, product_id)


async def campaign_defaults(campaign_id: int, *, stock: dict[int, int] | None = None,
                            price: int | None = None) -> tuple[ProductInput, dict[str, Any]]:
    """The editor prefilled from a campaign: the idea's words and category, the campaign's price
    (its full price, not the early-bird one) and variants. Returns (input, campaign)."""

    campaign = await get_campaign(campaign_id)
    idea = await Idea.select(Idea.title, Idea.summary, Idea.description, Idea.category.slug).where(
        Idea.id == campaign["idea"]).first()
    stock = stock or {}
    data = ProductInput(
        name=idea["title"], summary=idea["summary"], description=idea["description"],
        category=idea["category.slug"] or "", price=major_units(price if price is not None else campaign["price"]),
        ships_in_days=3, status=ProductStatus.ACTIVE.value, vat_rate=campaign["vat_rate"],
        # The brand makes the crowd's designs: it is the manufacturer and the responsible person
        # unless staff say otherwise; the safety information is theirs to write.
        manufacturer=_seller(), eu_responsible=_seller(),
        variants=[VariantInput(name=v["name"], stock=stock.get(v["id"], 0)) for v in campaign["variants"]],
    )
    return data, campaign


def _seller() -> str:
    settings = get_settings()
    return f"{settings.seller_legal_name}, {settings.seller_address}"


async def publish_from_campaign(staff: CurrentMember, campaign_id: int, *, stock: dict[int, int],
                                price: int | None = None, data: ProductInput | dict[str, Any] | None = None,
                                safety_info: str = "") -> dict[str, Any]:
    """Publish a funded campaign's product to the shop, once per campaign.

    `stock` maps campaign variant ids to units; `price` (minor units) overrides the campaign's
    full price, `safety_info` gives the warnings and instructions the shop requires (GPSR). With
    `data` (the staff editor's edited copy) those three are ignored. The idea's
    images are carried over as product images that reuse the same stored files.
    """
    _require_staff(staff)
    defaults, campaign = await campaign_defaults(campaign_id, stock=stock, price=price)
    if campaign["status"] not in PUBLISHABLE_CAMPAIGNS:
        raise Conflict(gettext("Only funded campaigns can be published to the shop; this one is %(status)s.",
                               status=campaign["status_label"].lower()))
    defaults.safety_info = safety_info
    data = defaults if data is None else _coerce(data)
    values, variants, processed = await _validate(data)
    stored = _save_images(processed)
    idea_images = await IdeaImage.select().where(IdeaImage.idea == campaign["idea"]).order_by(IdeaImage.position, IdeaImage.id)
    async with write_transaction():
        if not is_sqlite():  # SQLite: the IMMEDIATE transaction already serialises publishers
            await Campaign.select(Campaign.id).where(Campaign.id == campaign_id).lock_rows()
        existing = await Product.select(Product.name).where(Product.campaign == campaign_id).first()
        if existing is not None:
            raise Conflict(gettext("This campaign is already in the shop as “%(name)s”. Edit that product instead.",
                                   name=existing["name"]))
        product_id, _ = await _insert_product({**_product_values(values), "campaign": campaign_id, "idea": campaign["idea"]})
        await _insert_variants(product_id, variants)
        await prices.record_prices(product_id)
        for position, image in enumerate(idea_images):
            await ProductImage.insert(ProductImage(product=product_id, position=position, key=image["key"],
                                                   thumb_key=image["thumb_key"], width=image["width"],
                                                   height=image["height"], alt=values["name"][:160]))
        await _insert_images(product_id, stored, len(idea_images), values["name"])
    return await get_product_for_staff(staff, product_id)


async def update_product(staff: CurrentMember, product_id: int, data: ProductInput | dict[str, Any]) -> dict[str, Any]:
    """Edit words, price, category, delivery estimate, variants (rename, price, add, remove) and
    images. The status and existing variants' stock have their own functions."""
    _require_staff(staff)
    data = _coerce(data)
    current = await Product.select(Product.id, Product.status).where(Product.id == product_id).first()
    if current is None:
        raise NotFound(gettext("Product not found"))
    data.status = current["status"]
    existing = {v["id"]: v for v in await ProductVariant.select().where(
        (ProductVariant.product == product_id) & (ProductVariant.active == True))}  # noqa: E712
    images = await ProductImage.select(ProductImage.id).where(ProductImage.product == product_id)
    remove_images = [i for i in data.remove_images if i in {r["id"] for r in images}]
    values, variants, processed = await _validate(data, existing_images=len(images) - len(remove_images),
                                                  existing_variants=existing)
    stored = _save_images(processed)
    async with write_transaction():
        await Product.update({
            Product.name: values["name"], Product.summary: values["summary"], Product.description: values["description"],
            Product.details: values["details"], Product.category: values["category"], Product.price: values["price"],
            Product.ships_in_days: values["ships_in_days"], Product.vat_rate: values["vat_rate"], Product.updated_at: utcnow(),
            Product.manufacturer: values["manufacturer"], Product.eu_responsible: values["eu_responsible"],
            Product.safety_info: values["safety_info"],
        }).where(Product.id == product_id)
        position = 0
        new = []
        for variant in variants:
            if variant.remove:
                # Kept as a row (orders and carts point at it), no longer offered.
                await ProductVariant.update({ProductVariant.active: False}).where(
                    (ProductVariant.id == variant.id) & (ProductVariant.product == product_id))
            elif variant.id is not None:
                await ProductVariant.update({
                    ProductVariant.name: variant.name, ProductVariant.sku: variant.sku,
                    ProductVariant.price: variant.price, ProductVariant.position: position,
                    ProductVariant.made_to_order: variant.made_to_order,
                }).where((ProductVariant.id == variant.id) & (ProductVariant.product == product_id))
                position += 1
            else:
                new.append(variant)
        await _insert_variants(product_id, new, start=position)
        await prices.record_prices(product_id)  # the price history the 30-day lowest price comes from
        if remove_images:
            await ProductImage.delete().where(
                ProductImage.id.is_in(remove_images) & (ProductImage.product == product_id))
        last = await ProductImage.select(ProductImage.position).where(ProductImage.product == product_id).order_by(
            ProductImage.position, ascending=False).first()
        await _insert_images(product_id, stored, (last["position"] + 1) if last else 0, values["name"])
    return await get_product_for_staff(staff, product_id)


async def set_status(staff: CurrentMember, product_id: int, status: str) -> dict[str, Any]:
    _require_staff(staff)
    try:
        target = ProductStatus(status)
    except ValueError:
        raise FormError({"status": gettext("Choose draft, active, hidden or archived.")}) from None
    async with write_transaction():
        row = await Product.select(Product.status, Product.published_at, Product.manufacturer, Product.eu_responsible,
                                   Product.safety_info).where(Product.id == product_id).first()
        if row is None:
            raise NotFound(gettext("Product not found"))
        missing = [key for key in SAFETY_REQUIRED if not (row[key] or "").strip()]
        if target is ProductStatus.ACTIVE and missing:
            raise Conflict(gettext("Before it goes in the shop, fill in the product safety information (EU product "
                                   "safety rules): %(missing)s.", missing=", ".join(gettext(SAFETY_LABELS[k]) for k in missing)))
        values: dict[Any, Any] = {Product.status: target.value, Product.updated_at: utcnow()}
        if target is ProductStatus.ACTIVE:
            offered = await ProductVariant.count().where(
                (ProductVariant.product == product_id) & (ProductVariant.active == True))  # noqa: E712
            if not offered:
                raise Conflict(gettext("Add a variant before putting the product in the shop."))
            if row["published_at"] is None:
                values[Product.published_at] = utcnow()
                # Prices a draft had were never offered: the history starts the day it is in the shop.
                await prices.restart_history(product_id)
        await Product.update(values).where(Product.id == product_id)
    return await get_product_for_staff(staff, product_id)


async def set_stock(staff: CurrentMember, variant_id: int, stock: int | str, *, expected: int | str | None = None,
                    product_id: int | None = None) -> dict[str, Any]:
    """Staff stock edit. "15" sets 15 (only if the stock is still `expected`, when given);
    "+20" / "-3" adjust, refused below zero. Both are single conditional updates, so a sale at
    the same moment is neither lost nor oversold."""
    _require_staff(staff)
    text = str(stock).strip()
    try:
        number = _whole(text)
        if number is None or abs(number) > MAX_STOCK:
            raise ValueError
        adjust = text[0] in "+-"
        if not adjust and number < 0:
            raise ValueError
        was = _whole(expected) if expected not in (None, "") else None
    except ValueError:
        raise FormError({"stock": gettext("Write the stock as a whole number (e.g. 15), or +20 / -3 to adjust it.")}) \
            from None
    mine = ProductVariant.id == variant_id
    if product_id is not None:
        mine = mine & (ProductVariant.product == product_id)
    async with write_transaction():
        if adjust:
            rows = await ProductVariant.update({ProductVariant.stock: ProductVariant.stock + number}).where(
                mine & WhereRaw('"stock" + {} >= 0', number)
            ).returning(ProductVariant.id)
        else:
            condition = mine
            if was is not None:
                condition = condition & (ProductVariant.stock == was)
            rows = await ProductVariant.update({ProductVariant.stock: number}).where(condition).returning(ProductVariant.id)
        if not rows:
            now = await ProductVariant.select(ProductVariant.stock).where(mine).first()
            if now is None:
                raise NotFound(gettext("Variant not found"))
            if adjust:
                raise FormError({"stock": gettext("Only %(num)s in stock: it can't go below zero.", num=now["stock"])})
            raise Conflict(gettext("The stock changed to %(num)s while you were editing (a sale or another edit). "
                                   "Check it and save again.", num=now["stock"]))
    return await ProductVariant.select().where(ProductVariant.id == variant_id).first()


# ---- reading: cards, lists, search --------------------------------------------------------------

CARD_COLUMNS = (
    Product.id, Product.slug, Product.name, Product.summary, Product.price, Product.currency, Product.status,
    Product.rating_avg, Product.rating_count, Product.sold_count, Product.published_at, Product.ships_in_days,
    Product.category.name, Product.category.slug,
)


async def _decorate_cards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stock, price range and the first image for a page of products: two queries, whatever the
    page size."""
    ids = [r["id"] for r in rows]
    if not ids:
        return rows
    variants = await ProductVariant.select(ProductVariant.product, ProductVariant.stock, ProductVariant.price).where(
        ProductVariant.product.is_in(ids) & (ProductVariant.active == True))  # noqa: E712
    images = await ProductImage.select(ProductImage.product, ProductImage.thumb_key, ProductImage.key).where(
        ProductImage.product.is_in(ids)).order_by(ProductImage.position).order_by(ProductImage.id)
    first: dict[int, dict] = {}
    for image in images:
        first.setdefault(image["product"], image)
    by_product: dict[int, list[dict]] = {}
    for variant in variants:
        by_product.setdefault(variant["product"], []).append(variant)
    for row in rows:
        mine = by_product.get(row["id"], [])
        prices = [v["price"] if v["price"] is not None else row["price"] for v in mine] or [row["price"]]
        row["stock"] = sum(max(0, v["stock"]) for v in mine)
        row["sold_out"] = row["stock"] <= 0
        row["low_stock"] = 0 < row["stock"] <= LOW_STOCK
        row["min_price"], row["max_price"] = min(prices), max(prices)
        image = first.get(row["id"])
        row["thumb_key"] = image["thumb_key"] if image else None
        row["image_key"] = image["key"] if image else None
        row["url"] = f"/shop/{row['slug']}"
        row["rating_avg"] = round(row["rating_avg"] or 0.0, 1)
    return rows


async def product_cards(ids: list[int]) -> list[dict[str, Any]]:
    """Card dicts for these product ids, in this order, active products only (wishlist,
    collections, bought together, recently viewed)."""
    wanted = list(dict.fromkeys(i for i in ids if isinstance(i, int) and 0 < i < 2**31))
    if not wanted:
        return []
    rows = await Product.select(*CARD_COLUMNS).where(Product.id.is_in(wanted) & (Product.status == ProductStatus.ACTIVE.value))
    by_id = {r["id"]: r for r in await _decorate_cards(rows)}
    return [by_id[i] for i in wanted if i in by_id]


async def new_in_shop(limit: int = 8) -> list[dict[str, Any]]:
    """The newest products in the shop (home page)."""
    rows = await Product.select(*CARD_COLUMNS).where(Product.status == ProductStatus.ACTIVE.value).order_by(
        Product.published_at, ascending=False).order_by(Product.id, ascending=False).limit(max(1, min(limit, 48)))
    return await _decorate_cards(rows)


async def search_ids(text: str, limit: int = 1000) -> list[int]:
    """Product ids matching `text`, best match first (FTS5 bm25 / PostgreSQL ts_rank), with the
    same weights as the ideas' search: name > summary > description."""
    if is_sqlite():
        match = fts5_query(text)
        if not match:
            return []
        rows = await raw(
            "SELECT rowid AS id FROM product_fts WHERE product_fts MATCH {} "
            "ORDER BY bm25(product_fts, 10.0, 4.0, 1.0) LIMIT {}", match, limit)
    else:
        vector = ("(setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
                  "setweight(to_tsvector('english', coalesce(summary, '')), 'B') || "
                  "setweight(to_tsvector('english', coalesce(description, '')), 'C'))")
        rows = await raw(
            f"SELECT id FROM product, websearch_to_tsquery('english', {{}}) AS query WHERE {vector} @@ query "
            f"ORDER BY ts_rank({vector}, query) DESC, id DESC LIMIT {{}}", text, limit)
    return [r["id"] for r in rows]


@dataclass
class ProductQuery:
    q: str = ""
    category: str = ""
    min_price: str = ""  # major units as typed
    max_price: str = ""
    rating: int | str = 0  # 4: 4 stars and up, 3: 3 and up
    in_stock: bool = False
    sort: str = ""  # popular, newest, price_asc, price_desc, rating (relevance when searching)
    offset: int = 0
    limit: int = PAGE_SIZE


@dataclass
class ProductPage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int
    query: ProductQuery

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit))

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    def page_numbers(self) -> list[int | None]:
        """1 … 4 5 [6] 7 8 … 20: None marks a gap."""
        pages, current = self.pages, self.page
        shown = sorted({1, pages, *range(max(1, current - 2), min(pages, current + 2) + 1)})
        out: list[int | None] = []
        for number in shown:
            if out and number - (out[-1] or 0) > 1:
                out.append(None)
            out.append(number)
        return out


def clean_query(query: ProductQuery) -> dict[str, str]:
    """Check the filters; a bad one is dropped from `query` and explained in the returned errors."""
    errors: dict[str, str] = {}
    query.q = (query.q or "").strip()[:200]
    if query.sort and query.sort not in SORTS and not (query.sort == "relevance" and query.q):
        errors["sort"] = gettext("Sort by one of: %(sorts)s.", sorts=", ".join(SORTS))
        query.sort = ""
    for key in ("min_price", "max_price"):
        text = (getattr(query, key) or "").strip()
        try:
            parse_money(text)
            setattr(query, key, text)
        except ValueError:
            errors[key] = gettext("Write a price as a number, e.g. 200.")
            setattr(query, key, "")
    low, high = parse_money(query.min_price), parse_money(query.max_price)
    if low is not None and high is not None and low > high:
        errors["max_price"] = gettext("The highest price must be at least the lowest.")
        query.max_price = ""
    try:
        query.rating = int(query.rating or 0)
        if query.rating not in (0, *RATING_FILTERS):
            raise ValueError
    except (TypeError, ValueError):
        errors["rating"] = gettext("Choose 4 stars & up or 3 stars & up.")
        query.rating = 0
    if not 1 <= query.limit <= 100:
        errors["limit"] = gettext("limit must be between 1 and 100.")
        query.limit = PAGE_SIZE
    query.offset = max(0, query.offset)
    return errors


async def list_products(query: ProductQuery) -> ProductPage:
    """The shop list: active products only. A constant number of queries, whatever the page size."""
    errors = clean_query(query)
    if errors:
        raise FormError(errors)
    sort = query.sort or ("relevance" if query.q else "popular")
    condition = Product.status == ProductStatus.ACTIVE.value
    if query.category:
        condition &= Product.category.slug == query.category
    low, high = parse_money(query.min_price), parse_money(query.max_price)
    if low is not None:
        condition &= Product.price >= low
    if high is not None:
        condition &= Product.price <= high
    if query.rating:
        condition &= (Product.rating_avg >= float(query.rating)) & (Product.rating_count > 0)
    if query.in_stock:
        condition &= Product.id.is_in(ProductVariant.select(ProductVariant.product).where(
            (ProductVariant.active == True) & (ProductVariant.stock > 0)))  # noqa: E712
    ranked: list[int] | None = None
    if query.q:
        ranked = await search_ids(query.q)
        condition &= Product.id.is_in(ranked or [-1])
    total = await Product.count().where(condition)
    select = Product.select(*CARD_COLUMNS).where(condition)
    if sort == "relevance" and ranked is not None:
        order = {product_id: index for index, product_id in enumerate(ranked)}
        rows = sorted(await select, key=lambda r: order.get(r["id"], 1 << 30))[query.offset: query.offset + query.limit]
    else:
        if sort == "popular":
            select = select.order_by(Product.sold_count, ascending=False)
        elif sort == "newest":
            select = select.order_by(Product.published_at, ascending=False)
        elif sort == "price_asc":
            select = select.order_by(Product.price)
        elif sort == "price_desc":
            select = select.order_by(Product.price, ascending=False)
        elif sort == "rating":
            select = select.order_by(Product.rating_avg, Product.rating_count, ascending=False)
        rows = await select.order_by(Product.id, ascending=sort == "price_asc").offset(query.offset).limit(query.limit)
    query.sort = sort
    return ProductPage(await _decorate_cards(rows), total, query.offset, query.limit, query)


async def categories_in_shop() -> list[dict[str, Any]]:
    return await Category.select(Category.id, Category.slug, Category.name).order_by(Category.position)


# ---- the product page ------------------------------------------------------------------------


def can_view(product: dict[str, Any], viewer: CurrentMember | None) -> bool:
    return product["status"] == ProductStatus.ACTIVE or bool(viewer and viewer.is_staff)


async def _load(condition, viewer: CurrentMember | None, *, staff_view: bool = False) -> dict[str, Any]:  # noqa: ANN001
    row = await Product.select(*Product.all_columns(), Product.category.name, Product.category.slug).where(condition).first()
    if row is None or not (staff_view or can_view(row, viewer)):
        raise NotFound(gettext("Product not found"))
    row["variants"] = await ProductVariant.select().where(
        (ProductVariant.product == row["id"]) & (ProductVariant.active == True)  # noqa: E712
    ).order_by(ProductVariant.position).order_by(ProductVariant.id)
    for variant in row["variants"]:
        variant["effective_price"] = variant["price"] if variant["price"] is not None else row["price"]
        variant["stock"] = max(0, variant["stock"])
        variant["sold_out"] = variant["stock"] <= 0
        variant["low_stock"] = 0 < variant["stock"] <= LOW_STOCK
    row["images"] = await ProductImage.select().where(ProductImage.product == row["id"]).order_by(
        ProductImage.position).order_by(ProductImage.id)
    prices = [v["effective_price"] for v in row["variants"]] or [row["price"]]
    row["min_price"], row["max_price"] = min(prices), max(prices)
    row["stock"] = sum(v["stock"] for v in row["variants"])
    row["sold_out"] = row["stock"] <= 0
    row["low_stock"] = 0 < row["stock"] <= LOW_STOCK
    row["rating_avg"] = round(row["rating_avg"] or 0.0, 1)
    row["status_label"] = status_label(row["status"])
    row["url"] = f"/shop/{row['slug']}"
    row["idea_author"] = None
    row["idea_url"] = None
    if row["idea"]:
        idea = await Idea.select(Idea.author, Idea.status).where(Idea.id == row["idea"]).first()
        if idea:
            row["idea_author"] = idea["author"]

            if idea["status"] in PUBLIC_STATUSES:
                row["idea_url"] = f"/ideas/{row['idea']}"
    row["can_answer"] = can_answer(row, viewer)
    return row


# What the product page shows that a write can change, as one row of aggregates: the product
# (edits, status, rating), its variants (stock, sold, price, active: weighted by id, so units
# moving between two variants still change it), images, visible questions and answers, and
# reviews, and today's viewers (as flushed). Equal rows mean an equal page (but for time: app/web/shared.py bounds a copy's age).
_VERSION_SQL = """
SELECT p.id, p.updated_at, p.status, p.price, p.rating_count, p.rating_sum,
  (SELECT COUNT(*) FROM product_variant v WHERE v.product = p.id) AS variants,
  (SELECT COALESCE(SUM(v.stock * (v.id % 997 + 1)), 0) FROM product_variant v WHERE v.product = p.id) AS stock,
  (SELECT COALESCE(SUM(v.sold * (v.id % 997 + 1)), 0) FROM product_variant v WHERE v.product = p.id) AS sold,
  (SELECT COALESCE(SUM((COALESCE(v.price, -1) + CASE WHEN v.active THEN 7 ELSE 0 END) * (v.id % 997 + 1)), 0)
     FROM product_variant v WHERE v.product = p.id) AS prices,
  (SELECT COUNT(*) + COALESCE(MAX(i.id), 0) * 1000 + COALESCE(SUM(i.position * (i.id % 997 + 1)), 0)
     FROM product_image i WHERE i.product = p.id) AS images,
  (SELECT COUNT(*) + COALESCE(MAX(q.id), 0) * 1000 FROM product_question q WHERE q.product = p.id AND q.hidden = {})
     AS questions,
  (SELECT COALESCE(SUM(q.id), 0) FROM product_question q WHERE q.product = p.id AND q.answer <> '' AND q.hidden = {})
     AS answers,
  (SELECT MAX(r.updated_at) FROM product_review r WHERE r.product = p.id) AS reviews,
  (SELECT c.views FROM view_count c WHERE c.kind = 'product' AND c.subject = p.id AND c.day = {}) AS viewers
FROM product p WHERE p.slug = {}"""


async def product_version(slug: str) -> tuple | None:
    """The product page's version (see _VERSION_SQL): one statement, None for no such product."""
    rows = await raw(_VERSION_SQL, False, False, utcnow().date().isoformat(), slug)
    return tuple(dict(rows[0]).values()) if rows else None


async def get_product(slug: str, viewer: CurrentMember | None) -> dict[str, Any]:
    """A product page's data. Hidden, archived and draft products are 404 except to staff."""
    if not slug or len(slug) > 80:
        raise NotFound(gettext("Product not found"))
    return await _load(Product.slug == slug, viewer)


async def get_product_by_id(product_id: int, viewer: CurrentMember | None) -> dict[str, Any]:
    if not 0 < product_id < 2**31:
        raise NotFound(gettext("Product not found"))
    return await _load(Product.id == product_id, viewer)


async def get_product_for_staff(staff: CurrentMember, product_id: int) -> dict[str, Any]:
    _require_staff(staff)
    if not 0 < product_id < 2**31:
        raise NotFound(gettext("Product not found"))
    return await _load(Product.id == product_id, staff, staff_view=True)


async def get_active_variant(variant_id: int) -> dict[str, Any] | None:
    """A variant that can be bought now (its product active), joined with its product, for the
    cart: the effective price (the variant's or the product's), the stock and a thumbnail."""
    try:
        variant_id = int(variant_id)
    except (TypeError, ValueError):
        return None
    if not 0 < variant_id < 2**31:
        return None
    row = await ProductVariant.select(
        ProductVariant.id, ProductVariant.name, ProductVariant.sku, ProductVariant.price, ProductVariant.stock,
        ProductVariant.active, ProductVariant.product, ProductVariant.product.name, ProductVariant.product.slug,
        ProductVariant.product.status, ProductVariant.product.price, ProductVariant.product.currency,
        ProductVariant.product.ships_in_days,
    ).where(ProductVariant.id == variant_id).first()
    if row is None or not row["active"] or row["product.status"] != ProductStatus.ACTIVE:
        return None
    image = await ProductImage.select(ProductImage.thumb_key).where(ProductImage.product == row["product"]).order_by(
        ProductImage.position).order_by(ProductImage.id).first()
    return {
        "id": row["id"], "name": row["name"], "sku": row["sku"],
        "price": row["price"] if row["price"] is not None else row["product.price"],
        "stock": max(0, row["stock"]), "product_id": row["product"], "product_name": row["product.name"],
        "product_slug": row["product.slug"], "product_status": row["product.status"],
        "currency": row["product.currency"], "ships_in_days": row["product.ships_in_days"],
        "thumb_key": image["thumb_key"] if image else None,
    }


# ---- questions and answers -------------------------------------------------------------------


def can_answer(product: dict[str, Any], viewer: CurrentMember | None) -> bool:
    """Staff, or the creator of the idea the product was born from."""
    return bool(viewer and (viewer.is_staff or (product.get("idea_author") and viewer.id == product["idea_author"])))


async def questions_for(product_id: int, limit: int = 50) -> list[dict[str, Any]]:
    return await ProductQuestion.select(
        ProductQuestion.id, ProductQuestion.body, ProductQuestion.answer, ProductQuestion.answered_at,
        ProductQuestion.created_at, ProductQuestion.member.display_name, ProductQuestion.member.handle,
        ProductQuestion.answered_by.display_name,
    ).where((ProductQuestion.product == product_id) & (ProductQuestion.hidden == False)).order_by(  # noqa: E712
        ProductQuestion.id, ascending=False).limit(limit)


async def ask_question(member: CurrentMember, slug: str, body: str) -> int:
    if not member.verified:
        raise Forbidden(gettext("Verify your email address to ask a question."))
    product = await get_product(slug, member)
    if product["status"] != ProductStatus.ACTIVE:
        raise NotFound(gettext("Product not found"))
    text = (body or "").strip()
    if len(text) < 5:
        raise FormError({"question": gettext("Write your question (at least 5 characters).")})
    if len(text) > MAX_QUESTION:
        raise FormError({"question": gettext("Keep your question under %(num)s characters.", num=format(MAX_QUESTION, ","))})

    count, retry = await counters().hit(f"question:{member.id}", 3600)
    if count > QUESTIONS_PER_HOUR:
        raise TooManyRequests(gettext("You have asked a lot of questions in the last hour; please wait a little."), retry)
    async with write_transaction():
        rows = await ProductQuestion.insert(ProductQuestion(product=product["id"], member=member.id, body=text)).returning(
            ProductQuestion.id)
        question_id = rows[0]["id"]
        if product["idea_author"] and product["idea_author"] != member.id:
            await emit(ProductQuestionAsked(question_id, product["idea_author"], member.display_name, product["name"],
                                            product["url"], text))
    return question_id


async def answer_question(member: CurrentMember, slug: str, question_id: int, answer: str) -> None:
    product = await get_product(slug, member)
    if not can_answer(product, member):
        raise Forbidden(gettext("Only our team and the product's creator can answer questions."))
    question = await ProductQuestion.select(ProductQuestion.member, ProductQuestion.product).where(
        ProductQuestion.id == question_id).first()
    if question is None or question["product"] != product["id"]:
        raise NotFound(gettext("Question not found"))
    text = (answer or "").strip()
    if not text:
        raise FormError({"answer": gettext("Write the answer first.")})
    if len(text) > MAX_ANSWER:
        raise FormError({"answer": gettext("Keep the answer under %(num)s characters.", num=format(MAX_ANSWER, ","))})
    async with write_transaction():
        await ProductQuestion.update({ProductQuestion.answer: text, ProductQuestion.answered_by: member.id,
                                      ProductQuestion.answered_at: utcnow()}).where(ProductQuestion.id == question_id)
        if question["member"] != member.id:
            await emit(ProductQuestionAnswered(question_id, question["member"], product["name"], product["url"], text))


async def hide_question(staff: CurrentMember, slug: str, question_id: int) -> None:
    _require_staff(staff)
    product = await get_product(slug, staff)
    rows = await ProductQuestion.update({ProductQuestion.hidden: True}).where(
        (ProductQuestion.id == question_id) & (ProductQuestion.product == product["id"])).returning(ProductQuestion.id)
    if not rows:
        raise NotFound(gettext("Question not found"))


# ---- alternatives: bought together, also liked, recently viewed --------------------------------


async def bought_together(product_id: int, limit: int = 4) -> list[dict[str, Any]]:
    """Active products most often in the same paid orders as this one."""
    rows = await BoughtTogether.select(BoughtTogether.other).where(
        (BoughtTogether.product == product_id) & (BoughtTogether.other != product_id)
        & BoughtTogether.other.is_in(Product.select(Product.id).where(Product.status == ProductStatus.ACTIVE.value))
    ).order_by(BoughtTogether.orders, ascending=False).order_by(BoughtTogether.other, ascending=False).limit(limit)
    return await product_cards([r["other"] for r in rows])


async def also_liked(product_id: int, limit: int = 4) -> list[dict[str, Any]]:
    """Members who hearted this product also hearted: one grouped query over the wishlist."""
    rows = await raw(
        "SELECT w2.product AS id, COUNT(*) AS likes FROM wishlist_item w1 "
        "JOIN wishlist_item w2 ON w2.member = w1.member "
        "JOIN product p ON p.id = w2.product "
        "WHERE w1.product = {} AND w2.product IS NOT NULL AND w2.product <> {} AND p.status = 'active' "
        "GROUP BY w2.product ORDER BY COUNT(*) DESC, w2.product DESC LIMIT {}",
        product_id, product_id, limit)
    return await product_cards([r["id"] for r in rows])


def _recent_signature(ids_text: str) -> str:
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"recent:{ids_text}".encode(), hashlib.sha256).hexdigest()[:24]


def read_recent(cookie: str | None) -> list[int]:
    """Product ids from the signed `cm_recent` cookie, newest first; [] for a missing, tampered
    or malformed cookie."""
    if not cookie or len(cookie) > 400:
        return []
    ids_text, _, signature = cookie.rpartition(".")
    if not ids_text or not hmac.compare_digest(signature, _recent_signature(ids_text)):
        return []
    try:
        ids = [int(part) for part in ids_text.split("-")]
    except ValueError:
        return []
    return [i for i in dict.fromkeys(ids) if 0 < i < 2**31][:RECENT_MAX]


def recent_cookie_value(ids: list[int]) -> str:
    ids_text = "-".join(str(i) for i in list(dict.fromkeys(ids))[:RECENT_MAX])
    return f"{ids_text}.{_recent_signature(ids_text)}"


def remember_view(cookie: str | None, product_id: int) -> tuple[list[int], str]:
    """(the products viewed before this one, the new cookie value with this one first)."""
    before = [i for i in read_recent(cookie) if i != product_id]
    return before, recent_cookie_value([product_id, *before])


# ---- staff lists ------------------------------------------------------------------------------


async def staff_products(status: str = "") -> list[dict[str, Any]]:
    query = Product.select(
        Product.id, Product.slug, Product.name, Product.status, Product.price, Product.currency, Product.sold_count,
        Product.published_at, Product.updated_at, Product.campaign, Product.rating_avg, Product.rating_count,
        Product.category.name,
    )
    if status in {s.value for s in ProductStatus}:
        query = query.where(Product.status == status)
    rows = await query.order_by(Product.updated_at, ascending=False).order_by(Product.id, ascending=False)
    ids = [r["id"] for r in rows]
    variants = await ProductVariant.select(ProductVariant.product, ProductVariant.name, ProductVariant.stock).where(
        ProductVariant.product.is_in(ids) & (ProductVariant.active == True)  # noqa: E712
    ).order_by(ProductVariant.position) if ids else []
    images = await ProductImage.select(ProductImage.product, ProductImage.thumb_key).where(
        ProductImage.product.is_in(ids)).order_by(ProductImage.position) if ids else []
    thumbs: dict[int, str] = {}
    for image in images:
        thumbs.setdefault(image["product"], image["thumb_key"])
    for row in rows:
        row["variants"] = [v for v in variants if v["product"] == row["id"]]
        row["stock"] = sum(max(0, v["stock"]) for v in row["variants"])
        row["thumb_key"] = thumbs.get(row["id"])
        row["status_label"] = status_label(row["status"])
    return rows


async def status_counts() -> dict[str, int]:
    rows = await raw("SELECT status, COUNT(*) AS n FROM product GROUP BY status")
    counts = {s.value: 0 for s in ProductStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def publishable_campaigns() -> list[dict[str, Any]]:
    """Funded campaigns that have no product in the shop yet."""
    return await Campaign.select(Campaign.id, Campaign.status, Campaign.idea, Campaign.idea.title, Campaign.price).where(
        Campaign.status.is_in(list(PUBLISHABLE_CAMPAIGNS))
        & Campaign.id.not_in(Product.select(Product.campaign).where(Product.campaign.is_not_null()))
    ).order_by(Campaign.id, ascending=False)


async def product_links(product_ids: list[int], campaign_id: int | None) -> tuple[dict[int, str], str]:
    """An order line's product page, and a pre-order's once its campaign is published to the shop
    (where the backer can review it). Only products still in the shop: a hidden or archived one
    would answer 404."""
    urls = {r["id"]: f"/shop/{r['slug']}" for r in await Product.select(Product.id, Product.slug).where(
        Product.id.is_in(product_ids) & (Product.status == "active"))} if product_ids else {}
    published = await Product.select(Product.slug).where(
        (Product.campaign == campaign_id) & (Product.status == "active")).first() if campaign_id else None
    return urls, f"/shop/{published['slug']}" if published else ""


lookup.link_products_with(product_links)  # the order page's links
