"""The shop's part of a member's personal data (app/accounts/personal_data.py): wishlist, cart,
reviews, questions and addresses; addresses, wishlist and cart go with the account, reviews and
questions with the removed content."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Erasure, Part, register
from app.accounts.tables import Address
from app.shop.cart import member_owner
from app.shop.reviews import remove_reviews_of
from app.shop.tables import Cart, CartLine, Product, ProductQuestion, Review, WishlistItem


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    wishlist = await WishlistItem.select(WishlistItem.product.name, WishlistItem.idea.title,
                                         WishlistItem.created_at).where(
        WishlistItem.member == member_id).order_by(WishlistItem.id)
    cart = await CartLine.select(CartLine.variant.product.name, CartLine.variant.name, CartLine.quantity,
                                 CartLine.added_at).where(CartLine.cart.owner == member_owner(member_id)).order_by(
        CartLine.id)
    reviews = await Review.select(Review.product.name, Review.rating, Review.title, Review.body, Review.hidden,
                                  Review.hidden_reason, Review.created_at, Review.updated_at).where(
        Review.member == member_id).order_by(Review.id)
    questions = await ProductQuestion.select(ProductQuestion.product.name, ProductQuestion.body,
                                             ProductQuestion.answer, ProductQuestion.answered_at,
                                             ProductQuestion.hidden, ProductQuestion.created_at).where(
        ProductQuestion.member == member_id).order_by(ProductQuestion.id)
    addresses = await Address.select(Address.name, Address.line1, Address.line2, Address.postal_code, Address.city,
                                     Address.country, Address.phone, Address.is_default, Address.created_at).where(
        Address.member == member_id).order_by(Address.id)
    return {"wishlist": wishlist, "cart": cart, "reviews": reviews, "product_questions": questions,
            "addresses": addresses}


async def erase(erasure: Erasure) -> None:
    member_id = erasure.member_id
    for table in (WishlistItem, Address):
        await table.delete().where(table.member == member_id)
    await Cart.delete().where((Cart.member == member_id) | (Cart.owner == member_owner(member_id)))
    if erasure.remove_content:
        await ProductQuestion.update({ProductQuestion.hidden: True, ProductQuestion.body: ""}).where(
            ProductQuestion.member == member_id)
        await remove_reviews_of(member_id)


async def claims_idea(idea_id: int, member_id: int) -> bool:
    return await Product.exists().where(Product.idea == idea_id)


register(Part("shop", order=80, export=export, erase=erase, claims_idea=claims_idea))
