"""Products inserted directly, for tests of the cart, checkout, orders and reviews (the staff
catalog editor itself is tested over HTTP)."""

from __future__ import annotations

import itertools

from app.db import utcnow
from app.shop.tables import Product, ProductVariant

_counter = itertools.count(1)
# Product safety (GPSR): what staff must fill in before a product goes in the shop.
SAFETY = {"manufacturer": "Nordvik Textil AB, Industrigatan 8, 503 38 Borås, Sweden, info@nordvik.test",
          "eu_responsible": "Nordvik Textil AB, Industrigatan 8, 503 38 Borås, Sweden, info@nordvik.test",
          "safety_info": "Wash at 30 °C. Keep away from open flames."}


async def make_product(name: str | None = None, *, price: int = 29_900, variants: dict[str, int] | None = None,
                       status: str = "active", category: int | None = None, summary: str = "Made by the community",
                       description: str = "Funded by backers and made to last.") -> dict:
    """A product with variants {name: stock}; returns {"id", "slug", "variants": {name: id}}."""
    n = next(_counter)
    name = name or f"Test product {n}"
    slug = f"{name.lower().replace(' ', '-')}-{n}"
    rows = await Product.insert(Product(
        slug=slug, name=name, summary=summary, description=description, price=price, status=status, category=category,
        published_at=utcnow() if status == "active" else None,
    )).returning(Product.id)
    product_id = rows[0]["id"]
    ids = {}
    for position, (variant, stock) in enumerate((variants or {"One size": 10}).items()):
        made = await ProductVariant.insert(ProductVariant(product=product_id, name=variant, position=position,
                                                          stock=stock)).returning(ProductVariant.id)
        ids[variant] = made[0]["id"]
    return {"id": product_id, "slug": slug, "name": name, "variants": ids}
