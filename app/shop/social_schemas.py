"""API shapes for reviews and collections (msgspec)."""

from __future__ import annotations

import datetime as dt

import msgspec


class ReviewIn(msgspec.Struct):
    rating: int
    title: str = ""
    body: str = ""


class ReviewOut(msgspec.Struct):
    id: int
    product_id: int
    rating: int
    title: str
    body: str
    author_name: str
    author_handle: str
    created_at: dt.datetime
    updated_at: dt.datetime


class RatingOut(msgspec.Struct):
    average: float
    count: int
    distribution: dict[str, int]  # "5" .. "1" -> number of visible reviews


class ReviewList(msgspec.Struct):
    rating: RatingOut
    items: list[ReviewOut]
    next_cursor: str | None


class CollectionItemOut(msgspec.Struct):
    kind: str  # product | idea
    id: int
    title: str
    url: str
    note: str
    position: int
    price: int | None = None  # products: minor units
    currency: str | None = None
    votes: int | None = None  # ideas
    image_url: str | None = None


class CollectionSummaryOut(msgspec.Struct):
    slug: str
    title: str
    body: str
    featured: bool
    home_position: int
    cover_url: str | None
    item_count: int
    url: str


class CollectionOut(msgspec.Struct):
    slug: str
    title: str
    body: str
    featured: bool
    home_position: int
    cover_url: str | None
    url: str
    items: list[CollectionItemOut]


class CollectionList(msgspec.Struct):
    items: list[CollectionSummaryOut]
    next_cursor: str | None
