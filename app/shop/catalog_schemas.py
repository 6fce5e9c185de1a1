"""msgspec Structs for the catalog API (GET /api/v1/products, /api/v1/products/{id})."""

from __future__ import annotations

import datetime as dt

import msgspec


class ProductImageOut(msgspec.Struct):
    url: str
    thumb_url: str
    width: int
    height: int
    alt: str


class ProductVariantOut(msgspec.Struct):
    id: int
    name: str
    sku: str
    price: int  # minor units: the variant's own price or the product's
    stock: int  # units free to sell now
    sold_out: bool


class ProductSummaryOut(msgspec.Struct):
    id: int
    slug: str
    name: str
    summary: str
    price: int
    min_price: int
    max_price: int
    currency: str
    rating_avg: float
    rating_count: int
    stock: int
    sold_out: bool
    category: str | None
    thumb_url: str | None
    url: str


class ProductList(msgspec.Struct):
    items: list[ProductSummaryOut]
    total: int
    next_cursor: str | None


class ProductOut(msgspec.Struct):
    id: int
    slug: str
    name: str
    summary: str
    description: str
    details: str
    status: str
    price: int
    min_price: int
    max_price: int
    currency: str
    category: str | None
    ships_in_days: int
    rating_avg: float
    rating_count: int
    sold_count: int
    stock: int
    sold_out: bool
    published_at: dt.datetime | None
    variants: list[ProductVariantOut]
    images: list[ProductImageOut]
    idea_url: str | None
    url: str
    vat_rate: int = 25  # percent of VAT included in the prices
