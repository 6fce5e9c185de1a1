"""What happens in the shop that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShopOrderPaid:
    """A shop order moved placed -> paid (once, whichever of the API, the browser or the webhook
    told first)."""

    order_id: int
    member_id: int
    number: str


@dataclass(frozen=True)
class AddedToCart:
    member_id: int | None
    ab_subject: str | None


@dataclass(frozen=True)
class ReviewSaved:
    """A verified buyer wrote or changed their review of a product."""

    member_id: int
    product_id: int


@dataclass(frozen=True)
class ReviewHidden:
    """Staff hid a review that had earned points."""

    member_id: int
    product_id: int
    review_id: int


@dataclass(frozen=True)
class ProductQuestionAsked:
    """A member asked about a product that came from another member's idea (its creator)."""

    question_id: int
    creator_id: int
    asker_name: str
    product_name: str
    product_url: str
    text: str


@dataclass(frozen=True)
class ProductQuestionAnswered:
    question_id: int
    asker_id: int
    product_name: str
    product_url: str
    text: str
