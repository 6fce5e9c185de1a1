"""The cart: a visitor's (keyed by the signed anonymous session id) or a member's ("m:<id>").

Quantities are limited by the stock free to sell; inactive or archived products cannot be
added. A visitor's cart is merged into the member's cart at login (quantities added, capped
by stock). Every change runs in one write transaction with the cart row locked
(PostgreSQL) or the IMMEDIATE transaction (SQLite), so two tabs cannot lose an update.
"""

from __future__ import annotations

from typing import Any

from litestar.types import Scope

from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import FormError, NotFound
from app.events import emit
from app.i18n import gettext
from app.settings import get_settings
from app.shop.events import AddedToCart
from app.shop.tables import Cart, CartLine, ProductImage, ProductVariant
from app.web import identity
from app.web.middleware import scope_cookie

MAX_LINE_QUANTITY = 99
CART_COOKIE = "cm_cart"  # "this browser has a visitor cart": without it the badge needs no query


def member_owner(member_id: int) -> str:
    return f"m:{member_id}"


def owner_for(member_id: int | None, session_id: str | None) -> str | None:
    """Whose cart a request uses: the member's, or the visitor's signed anonymous id."""
    if member_id:
        return member_owner(member_id)
    if session_id and session_id.startswith("a."):
        return session_id
    return None


def parse_quantity(value: Any, *, allow_zero: bool = False) -> int:
    try:
        quantity = int(str(value).strip())
    except (TypeError, ValueError):
        raise FormError({"quantity": gettext("Enter a number of units.")}) from None
    low = 0 if allow_zero else 1
    if not low <= quantity <= MAX_LINE_QUANTITY:
        raise FormError({"quantity": gettext("Choose between %(low)s and %(high)s units.",
                                             low=max(low, 1), high=MAX_LINE_QUANTITY)})
    return quantity


def parse_id(value: Any, field: str = "variant_id") -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise FormError({field: gettext("Choose a size or variant.")}) from None
    if not 0 < number < 2**31:
        raise FormError({field: gettext("Choose a size or variant.")})
    return number


def only_left_message(stock: int, name: str | None = None) -> str:
    if stock <= 0:
        return gettext("Sold out: %(name)s.", name=name) if name else gettext("Sold out.")
    if name:
        return gettext("Only %(stock)s left of %(name)s.", stock=stock, name=name)
    return gettext("Only %(stock)s left.", stock=stock)


async def sellable_variant(variant_id: int) -> dict[str, Any]:
    """The variant with its product, or a FormError when it cannot be bought."""
    row = await ProductVariant.select(
        ProductVariant.id, ProductVariant.name, ProductVariant.stock, ProductVariant.active, ProductVariant.price,
        ProductVariant.product, ProductVariant.product.name, ProductVariant.product.status,
        ProductVariant.product.price,
    ).where(ProductVariant.id == variant_id).first()
    if row is None or not row["active"] or row["product.status"] != "active":
        raise FormError({"variant_id": gettext("This product is not available.")})
    return row


async def _cart_id(owner: str, member_id: int | None, *, create: bool) -> int | None:
    if create:
        await Cart.insert(Cart(owner=owner, member=member_id)).on_conflict(target=Cart.owner, action="DO NOTHING")
    query = Cart.select(Cart.id)
    if not is_sqlite():
        query = query.lock_rows()
    row = await query.where(Cart.owner == owner).first()
    return row["id"] if row else None


async def add_to_cart(owner: str, variant_id: Any, quantity: Any = 1, *, member_id: int | None = None,
                      ab_subject: str | None = None) -> int:
    """Add units of a variant; returns the cart's new unit count. Refuses more than the stock.
    `ab_subject`: a visitor's experiment subject (`experiments.visitor_subject(request)`)."""
    variant_id = parse_id(variant_id)
    quantity = parse_quantity(quantity)
    async with write_transaction():
        variant = await sellable_variant(variant_id)
        cart_id = await _cart_id(owner, member_id, create=True)
        line = await CartLine.select(CartLine.id, CartLine.quantity).where(
            (CartLine.cart == cart_id) & (CartLine.variant == variant_id)).first()
        wanted = quantity + (line["quantity"] if line else 0)
        if wanted > variant["stock"]:
            message = only_left_message(variant["stock"])
            if line:
                message = gettext("%(message)s (you have %(num)s in your cart)", message=message, num=line["quantity"])
            raise FormError({"quantity": message})
        if wanted > MAX_LINE_QUANTITY:
            raise FormError({"quantity": gettext("At most %(max)s units of one item per order.", max=MAX_LINE_QUANTITY)})
        if line:
            await CartLine.update({CartLine.quantity: wanted}).where(CartLine.id == line["id"])
        else:
            await CartLine.insert(CartLine(cart=cart_id, variant=variant_id, quantity=wanted))
        await Cart.update({Cart.updated_at: utcnow()}).where(Cart.id == cart_id)
        await emit(AddedToCart(member_id, None if member_id else ab_subject))
    return await cart_count(owner)


async def _owned_line(owner: str, line_id: int) -> dict[str, Any]:
    row = await CartLine.select(CartLine.id, CartLine.variant, CartLine.quantity, CartLine.cart).where(
        (CartLine.id == line_id) & (CartLine.cart.owner == owner)).first()
    if row is None:
        raise NotFound(gettext("That item is not in your cart."))
    return row


async def set_quantity(owner: str, line_id: int, quantity: Any) -> None:
    """Change a line's quantity (0 removes it); refuses more than the stock."""
    quantity = parse_quantity(quantity, allow_zero=True)
    async with write_transaction():
        await _cart_id(owner, None, create=False)  # lock the cart
        line = await _owned_line(owner, line_id)
        if quantity == 0:
            await CartLine.delete().where(CartLine.id == line_id)
            return
        variant = await ProductVariant.select(ProductVariant.stock).where(ProductVariant.id == line["variant"]).first()
        if quantity > line["quantity"] and quantity > variant["stock"]:
            raise FormError({"quantity": only_left_message(variant["stock"])})
        await CartLine.update({CartLine.quantity: quantity}).where(CartLine.id == line_id)


async def remove_line(owner: str, line_id: int) -> None:
    async with write_transaction():
        await _owned_line(owner, line_id)
        await CartLine.delete().where(CartLine.id == line_id)


async def cart_count(owner: str | None) -> int:
    """Units in the cart: one indexed query (the header badge on every page)."""
    if not owner:
        return 0
    rows = await raw('SELECT COALESCE(SUM(cart_line.quantity), 0) AS n FROM cart_line '
                     'JOIN cart ON cart.id = cart_line.cart WHERE cart.owner = {}', owner)
    return int(rows[0]["n"] or 0) if rows else 0


async def badge_count(member_id: int | None, session_id: str | None, *, visitor_has_cart: bool) -> int:
    """The header badge: members always (their cart follows them), visitors only with a cart cookie."""
    if not member_id and not visitor_has_cart:
        return 0
    return await cart_count(owner_for(member_id, session_id))


async def cart_lines(owner: str | None) -> list[dict[str, Any]]:
    """The lines with product, price, stock and a problem message when one cannot be bought as is."""
    if not owner:
        return []
    rows = await CartLine.select(
        CartLine.id, CartLine.quantity, CartLine.variant, CartLine.variant.name, CartLine.variant.stock,
        CartLine.variant.price, CartLine.variant.active, CartLine.variant.product,
        CartLine.variant.product.name, CartLine.variant.product.slug, CartLine.variant.product.price,
        CartLine.variant.product.status, CartLine.variant.product.currency,
    ).where(CartLine.cart.owner == owner).order_by(CartLine.id)
    product_ids = sorted({r["variant.product"] for r in rows})
    thumbs: dict[int, str] = {}
    if product_ids:
        for image in await ProductImage.select(ProductImage.product, ProductImage.thumb_key, ProductImage.position).where(
                ProductImage.product.is_in(product_ids)).order_by(ProductImage.position, ascending=False):
            thumbs[image["product"]] = image["thumb_key"]  # the lowest position wins
    lines = []
    for row in rows:
        unit = row["variant.price"] if row["variant.price"] is not None else row["variant.product.price"]
        problem = ""
        available = row["variant.active"] and row["variant.product.status"] == "active"
        if not available:
            problem = gettext("No longer available: remove it to check out.")
        elif row["quantity"] > row["variant.stock"]:
            problem = only_left_message(row["variant.stock"])
        lines.append({
            "id": row["id"], "variant_id": row["variant"], "product_id": row["variant.product"],
            "name": row["variant.product.name"], "slug": row["variant.product.slug"], "variant": row["variant.name"],
            "quantity": row["quantity"], "unit_price": unit, "total": unit * row["quantity"],
            "stock": row["variant.stock"], "available": available, "problem": problem,
            "currency": row["variant.product.currency"], "thumb_key": thumbs.get(row["variant.product"], ""),
        })
    return lines


async def cart_summary(owner: str | None) -> dict[str, Any]:
    lines = await cart_lines(owner)
    return {
        "lines": lines,
        "count": sum(line["quantity"] for line in lines),
        "subtotal": sum(line["total"] for line in lines if line["available"]),
        "currency": lines[0]["currency"] if lines else get_settings().currency,
        "has_problems": any(line["problem"] for line in lines),
    }


async def merge_visitor_cart(old_session_id: str | None, member_id: int) -> int:
    """At login: move the visitor's lines into the member's cart (quantities added, capped by
    stock) and delete the visitor's cart. Returns the member cart's unit count."""
    if not old_session_id or not old_session_id.startswith("a."):
        return await cart_count(member_owner(member_id))
    async with write_transaction():
        visitor = await Cart.select(Cart.id).where(Cart.owner == old_session_id).first()
        if visitor is None:
            return await cart_count(member_owner(member_id))
        lines = await CartLine.select(CartLine.variant, CartLine.quantity, CartLine.variant.stock,
                                      CartLine.variant.active, CartLine.variant.product.status).where(
            CartLine.cart == visitor["id"]).order_by(CartLine.variant)
        if lines:
            cart_id = await _cart_id(member_owner(member_id), member_id, create=True)
            for line in lines:
                if not line["variant.active"] or line["variant.product.status"] != "active":
                    continue
                mine = await CartLine.select(CartLine.id, CartLine.quantity).where(
                    (CartLine.cart == cart_id) & (CartLine.variant == line["variant"])).first()
                have = mine["quantity"] if mine else 0
                wanted = min(have + line["quantity"], max(line["variant.stock"], have), MAX_LINE_QUANTITY)
                if mine:
                    await CartLine.update({CartLine.quantity: wanted}).where(CartLine.id == mine["id"])
                elif wanted > 0:
                    await CartLine.insert(CartLine(cart=cart_id, variant=line["variant"], quantity=wanted))
            await Cart.update({Cart.updated_at: utcnow()}).where(Cart.id == cart_id)
        await Cart.delete().where(Cart.id == visitor["id"])
    return await cart_count(member_owner(member_id))


async def remove_bought(member_id: int, variant_quantities: dict[int, int]) -> None:
    """After a paid order: take the bought units out of the member's cart (in the caller's transaction)."""
    owner = member_owner(member_id)
    for variant_id, quantity in sorted(variant_quantities.items()):
        line = await CartLine.select(CartLine.id, CartLine.quantity).where(
            (CartLine.cart.owner == owner) & (CartLine.variant == variant_id)).first()
        if line is None:
            continue
        if line["quantity"] <= quantity:
            await CartLine.delete().where(CartLine.id == line["id"])
        else:
            await CartLine.update({CartLine.quantity: line["quantity"] - quantity}).where(CartLine.id == line["id"])



async def _header_badge(scope: Scope, state: dict[str, Any]) -> None:
    member = state["member"]
    state["cart_count"] = await badge_count(member.id if member else None, state["session_id"],
                                            visitor_has_cart=bool(scope_cookie(scope, CART_COOKIE)))


identity.provide_page_state(_header_badge)


async def _follow_sign_in(request: Any, member_id: int) -> None:
    await merge_visitor_cart(request.scope.get("state", {}).get("session_id"), member_id)


identity.provide_sign_in(_follow_sign_in)
