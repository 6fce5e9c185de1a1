"""The catalog: the staff editor over HTTP, publishing a funded campaign, the shop list (filters,
sorts, search, pages), product pages, questions and answers, the API, and exact writes under
concurrency (run with SQLite and with PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from PIL import Image

from app.campaigns.tables import Campaign
from app.errors import Conflict, FormError
from app.ideas.tables import Category, IdeaImage
from app.media.images import store_image
from app.shop import catalog
from app.shop.catalog import ProductInput, VariantInput
from app.shop.tables import (
    BoughtTogether,
    Product,
    ProductImage,
    ProductQuestion,
    ProductVariant,
    WishlistItem,
)
from tests.campaigns.helpers import make_campaign
from tests.factories import PASSWORD, csrf_from, login, make_idea, make_member
from tests.shop.helpers import SAFETY, make_product


def png_bytes(size=(64, 48), color=(200, 80, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


async def _token(client, path="/shop") -> str:
    return csrf_from((await client.get(path)).text)


async def _bearer(client, member) -> dict:
    token = (await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def _category_id(slug: str) -> int:
    return (await Category.select(Category.id).where(Category.slug == slug).first())["id"]


def _card_names(html: str) -> list[str]:
    return re.findall(r'<h3 class="card-title"><a href="/shop/[^"]+">([^<]+)</a>', html)


def _product_form(**overrides) -> dict:
    data = {"name": "Merino hiking socks", "summary": "Warm, soft, no itch", "description": "Knitted in Portugal.",
            "details": "70% merino\n30% nylon", "category": "accessories", "price": "149.50", "ships_in_days": "2",
            "status": "draft", "variant_name_0": "S", "variant_sku_0": "SOCK-S", "variant_stock_0": "4",
            "variant_name_1": "M", "variant_stock_1": "0", "variant_price_1": "159",
            "variant_name_2": "", "variant_stock_2": "", **SAFETY}
    data.update(overrides)
    return data


# ---- the staff editor ---------------------------------------------------------------------


async def test_staff_creates_edits_hides_and_archives_a_product_over_http(client):
    staff = await make_member("Catalog Staff", staff=True)
    member = await make_member("Curious Carl")
    await login(client, staff.email)
    new_page = await client.get("/staff/products/new")
    assert new_page.status_code == 200 and "New product" in new_page.text
    token = csrf_from(new_page.text)
    created = await client.post("/staff/products", data={**_product_form(), "_csrf_token": token},
                                files=[("images", ("sock.png", png_bytes(), "image/png"))])
    assert created.status_code == 303, created.text[:500]
    product = await Product.select().where(Product.name == "Merino hiking socks").first()
    assert product["slug"] == "merino-hiking-socks" and product["price"] == 14950 and product["status"] == "draft"
    assert product["ships_in_days"] == 2 and product["details"] == "70% merino\n30% nylon"
    variants = await ProductVariant.select().where(ProductVariant.product == product["id"]).order_by(ProductVariant.position)
    assert [(v["name"], v["sku"], v["stock"], v["price"]) for v in variants] == [("S", "SOCK-S", 4, None), ("M", "", 0, 15900)]
    image = await ProductImage.select().where(ProductImage.product == product["id"]).first()
    assert (await client.get(f"/media/{image['key']}")).status_code == 200
    # same name again: a unique slug
    again = await client.post("/staff/products", data={**_product_form(), "_csrf_token": token})
    assert again.status_code == 303
    assert await Product.count().where(Product.slug == "merino-hiking-socks-2") == 1

    # a draft is invisible to members and visitors, visible to staff with a banner
    staff_view = await client.get("/shop/merino-hiking-socks")
    assert staff_view.status_code == 200 and "members can't see this product" in staff_view.text
    edit_url = f"/staff/products/{product['id']}/edit"
    published = await client.post(f"/staff/products/{product['id']}/status", data={"status": "active", "_csrf_token": token})
    assert published.status_code == 303
    assert (await Product.select(Product.published_at).where(Product.id == product["id"]).first())["published_at"]
    edited = await client.post(edit_url, data={
        **_product_form(name="Merino trail socks", price="139"), "variant_id_0": str(variants[0]["id"]),
        "variant_id_1": str(variants[1]["id"]), "variant_remove_1": "1", "variant_name_2": "L",
        "variant_stock_2": "7", "_csrf_token": token})
    assert edited.status_code == 303, edited.text[:800]
    page = await client.get("/shop/merino-hiking-socks")  # the slug stays: shared links keep working
    assert page.status_code == 200 and "Merino trail socks" in page.text and "139,00" in page.text
    assert "members can't see" not in page.text
    assert [v["name"] for v in (await catalog.get_product("merino-hiking-socks", None))["variants"]] == ["S", "L"]
    assert (await ProductVariant.select(ProductVariant.stock).where(ProductVariant.id == variants[0]["id"]).first())["stock"] == 4

    await client.post("/logout", data={"_csrf_token": token})
    visitor_page = await client.get("/shop/merino-hiking-socks")
    assert visitor_page.status_code == 200
    await login(client, member.email)
    member_token = await _token(client)
    assert (await client.get("/staff/products")).status_code == 403
    assert (await client.get(edit_url)).status_code == 403
    refused = await client.post("/staff/products", data={**_product_form(name="Sneaky"), "_csrf_token": member_token})
    assert refused.status_code == 403 and await Product.count().where(Product.name == "Sneaky") == 0
    hide_attempt = await client.post(f"/staff/products/{product['id']}/status", data={"status": "hidden", "_csrf_token": member_token})
    assert hide_attempt.status_code == 403

    for status in ("hidden", "archived"):
        await catalog.set_status(staff, product["id"], status)
        assert (await client.get("/shop/merino-hiking-socks")).status_code == 404
        assert (await client.get(f"/api/v1/products/{product['id']}")).status_code == 404
        assert "Merino trail socks" not in (await client.get("/shop")).text
    await client.post("/logout", data={"_csrf_token": member_token})
    await login(client, staff.email)
    banner = await client.get("/shop/merino-hiking-socks")
    assert banner.status_code == 200 and "Archived:" in banner.text
    listing = await client.get("/staff/products?status=archived")
    assert "Merino trail socks" in listing.text and "Merino hiking socks" not in listing.text


async def test_bad_form_input_shows_field_messages_and_writes_nothing(client):
    staff = await make_member("Picky Staff", staff=True)
    await login(client, staff.email)
    token = await _token(client, "/staff/products/new")
    response = await client.post("/staff/products", data={
        **_product_form(name="", price="ten", ships_in_days="-4", category="spaceships", variant_stock_0="-1",
                        variant_name_1="S"), "_csrf_token": token},
        files=[("images", ("notes.png", b"not really a png", "image/png"))])
    assert response.status_code == 400
    text = response.text
    assert "Give the product a name" in text and "Write the price as a number" in text
    assert "Ships within how many days" in text and "Choose one of the listed categories" in text
    assert "Variant 1: stock must be a whole number" in text and "Each variant needs a different name" in text
    assert "not an image we can read" in text
    assert 'value="Warm, soft, no itch"' in text  # the rest of the form is kept
    assert await Product.count() == 0 and await ProductVariant.count() == 0 and await ProductImage.count() == 0
    no_variants = await client.post("/staff/products", data={
        **_product_form(variant_name_0="", variant_sku_0="", variant_stock_0="", variant_name_1="", variant_price_1="",
                        variant_stock_1=""), "_csrf_token": token})
    assert no_variants.status_code == 400 and "Add at least one variant" in no_variants.text
    assert await Product.count() == 0


async def test_staff_stock_edits_over_http_and_never_negative(client):
    staff = await make_member("Stock Staff", staff=True)
    made = await make_product("Canvas tote", variants={"Natural": 5})
    variant_id = made["variants"]["Natural"]
    await login(client, staff.email)
    page = await client.get(f"/staff/products/{made['id']}/edit")
    token = csrf_from(page.text)
    assert 'id="stock"' in page.text
    url = f"/staff/products/{made['id']}/variants/{variant_id}/stock"
    ok = await client.post(url, data={"stock": "12", "expected": "5", "_csrf_token": token})
    assert ok.status_code == 303
    stale = await client.post(url, data={"stock": "3", "expected": "5", "_csrf_token": token},
                              headers={"HX-Request": "true"})
    assert stale.status_code == 200 and "changed to 12 while you were editing" in stale.text and "<html" not in stale.text
    adjusted = await client.post(url, data={"stock": "+8", "_csrf_token": token}, headers={"HX-Request": "true"})
    assert "Natural: 20 in stock." in adjusted.text
    below = await client.post(url, data={"stock": "-21", "_csrf_token": token}, headers={"HX-Request": "true"})
    assert "can&#39;t go below zero" in below.text or "can't go below zero" in below.text
    negative = await client.post(url, data={"stock": "-1x", "_csrf_token": token}, headers={"HX-Request": "true"})
    assert "Write the stock as a whole number" in negative.text
    other = await make_product("Other product")
    wrong_product = await client.post(f"/staff/products/{other['id']}/variants/{variant_id}/stock",
                                      data={"stock": "1", "_csrf_token": token})
    assert wrong_product.status_code == 404
    assert (await ProductVariant.select(ProductVariant.stock).where(ProductVariant.id == variant_id).first())["stock"] == 20


async def test_concurrent_stock_adjustments_are_exact_and_never_negative():
    staff = await make_member("Racing Staff", staff=True)
    made = await make_product("Enamel mug", variants={"Blue": 10})
    variant_id = made["variants"]["Blue"]
    results = await asyncio.gather(*(catalog.set_stock(staff, variant_id, "-1") for _ in range(25)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, dict)) == 10
    assert all(isinstance(r, FormError) for r in results if not isinstance(r, dict))
    assert (await ProductVariant.select(ProductVariant.stock).where(ProductVariant.id == variant_id).first())["stock"] == 0
    # absolute sets against the same seen value: exactly one wins
    results = await asyncio.gather(*(catalog.set_stock(staff, variant_id, str(n), expected=0) for n in range(1, 9)),
                                   return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, dict)) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))


async def test_concurrent_creates_with_one_name_get_distinct_slugs():
    staff = await make_member("Slug Staff", staff=True)
    data = {"name": "Rain jacket", "price": "999", "status": "active", "variants": [{"name": "M", "stock": 3}], **SAFETY}
    results = await asyncio.gather(*(catalog.create_product(staff, data) for _ in range(6)))
    slugs = sorted(r["slug"] for r in results)
    assert len(set(slugs)) == 6 and "rain-jacket" in slugs
    assert await Product.count() == 6 and await ProductVariant.count() == 6


# ---- publishing a funded campaign -----------------------------------------------------------


async def _funded_campaign_with_images(stripe_fixture=None) -> tuple[int, dict, list[dict]]:
    staff = await make_member("Publisher", staff=True)
    campaign_id, campaign = await make_campaign(staff=staff, price="450")
    images = []
    for index, color in enumerate(((10, 120, 200), (200, 120, 10))):
        stored = store_image(png_bytes(color=color), filename=f"idea-{index}.png", max_bytes=5 * 1024 * 1024)
        await IdeaImage.insert(IdeaImage(idea=campaign["idea"], position=index, key=stored.key, thumb_key=stored.thumb_key,
                                         width=stored.width, height=stored.height))
        images.append({"key": stored.key, "thumb_key": stored.thumb_key})
    return campaign_id, campaign, images


async def test_publish_a_funded_campaign_copies_variants_and_images_once(client):
    campaign_id, campaign, images = await _funded_campaign_with_images()
    staff = await make_member("Shop Staff", staff=True)
    await login(client, staff.email)
    live = await client.get(f"/staff/products/new?campaign={campaign_id}")
    assert "Only funded campaigns can be published" in live.text
    with pytest.raises(Conflict):
        await catalog.publish_from_campaign(staff, campaign_id, stock={})
    await Campaign.update({Campaign.status: "funded"}).where(Campaign.id == campaign_id)

    listing = await client.get("/staff/products")
    assert f"/staff/products/new?campaign={campaign_id}" in listing.text
    form = await client.get(f"/staff/products/new?campaign={campaign_id}")
    assert form.status_code == 200
    assert f'value="{campaign["idea.title"]}"' in form.text and 'value="450"' in form.text
    assert 'name="variant_name_0" value="M"' in form.text and 'name="variant_name_1" value="L"' in form.text
    assert images[0]["thumb_key"] in form.text
    # the brand is prefilled as manufacturer and responsible person; the warnings are staff's to write
    assert "Götgatan 14" in form.text and 'name="safety_info"' in form.text
    token = csrf_from(form.text)
    posted = await client.post("/staff/products", data={
        "campaign": str(campaign_id), "name": campaign["idea.title"], "summary": "From the community",
        "description": "Funded by backers.", "category": "bags", "price": "450", "ships_in_days": "5", "status": "active",
        "variant_name_0": "M", "variant_stock_0": "12", "variant_name_1": "L", "variant_stock_1": "3", "_csrf_token": token,
        **SAFETY})
    assert posted.status_code == 303, posted.text[:500]
    product = await Product.select().where(Product.campaign == campaign_id).first()
    assert product["idea"] == campaign["idea"] and product["price"] == 45000 and product["status"] == "active"
    variants = await ProductVariant.select(ProductVariant.name, ProductVariant.stock).where(
        ProductVariant.product == product["id"]).order_by(ProductVariant.position)
    assert [(v["name"], v["stock"]) for v in variants] == [("M", 12), ("L", 3)]
    copied = await ProductImage.select(ProductImage.key, ProductImage.thumb_key).where(
        ProductImage.product == product["id"]).order_by(ProductImage.position)
    assert [(i["key"], i["thumb_key"]) for i in copied] == [(i["key"], i["thumb_key"]) for i in images]
    page = await client.get(f"/shop/{product['slug']}")
    assert "Born on Crowdmade" in page.text and f'href="/ideas/{campaign["idea"]}"' in page.text
    assert f'<meta property="og:image" content="http://testserver.local/media/{images[0]["key"]}">' in page.text

    second = await client.post("/staff/products", data={
        "campaign": str(campaign_id), "name": "Again", "price": "450", "variant_name_0": "M", "variant_stock_0": "1",
        "_csrf_token": token})
    assert second.status_code == 303
    flashed = await client.get(second.headers["location"])
    assert "This campaign is already in the shop" in flashed.text
    assert await Product.count().where(Product.campaign == campaign_id) == 1
    assert f"/staff/products/new?campaign={campaign_id}" not in flashed.text


async def test_concurrent_publishes_of_one_campaign_make_one_product():
    campaign_id, campaign, _ = await _funded_campaign_with_images()
    await Campaign.update({Campaign.status: "in_production"}).where(Campaign.id == campaign_id)
    staff = await make_member("Twin Staff", staff=True)
    variant_ids = [v["id"] for v in campaign["variants"]]
    results = await asyncio.gather(*(
        catalog.publish_from_campaign(staff, campaign_id, stock={variant_ids[0]: 5, variant_ids[1]: 2}, price=39900,
                                      safety_info="No special warnings.")
        for _ in range(6)), return_exceptions=True)
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1 and all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))
    assert made[0]["price"] == 39900 and [(v["name"], v["stock"]) for v in made[0]["variants"]] == [("M", 5), ("L", 2)]
    assert await Product.count() == 1 and await ProductImage.count() == 2


# ---- the shop list ----------------------------------------------------------------------------


async def test_shop_list_filters_sorts_and_search(client):
    bags, accessories = await _category_id("bags"), await _category_id("accessories")
    candy = await make_product("Cotton candy maker", price=59_900, category=None, summary="Spin sugar at home",
                               variants={"One size": 2})
    socks = await make_product("Cotton socks", price=9_900, category=accessories, summary="Organic cotton everyday socks",
                               variants={"S": 0, "M": 0})
    pack = await make_product("Roll-top backpack", price=129_900, category=bags, variants={"One size": 30})
    tote = await make_product("Canvas tote", price=29_900, category=bags, variants={"One size": 3})
    await make_product("Secret draft bag", status="draft", category=bags)
    await make_product("Hidden bag", status="hidden", category=bags)
    await Product.update({Product.rating_avg: 4.6, Product.rating_count: 5, Product.sold_count: 40}).where(Product.id == pack["id"])
    await Product.update({Product.rating_avg: 3.4, Product.rating_count: 2, Product.sold_count: 90}).where(Product.id == tote["id"])
    await Product.update({Product.rating_avg: 2.0, Product.rating_count: 1, Product.sold_count: 5}).where(Product.id == candy["id"])

    everything = await client.get("/shop")
    assert everything.status_code == 200 and "4 products" in everything.text
    names = _card_names(everything.text)
    assert names == ["Canvas tote", "Roll-top backpack", "Cotton candy maker", "Cotton socks"]  # popular first
    assert "Secret draft bag" not in everything.text and "Hidden bag" not in everything.text
    assert "Only 3 left" in everything.text and "Sold out" in everything.text
    assert _card_names((await client.get("/shop?category=bags")).text) == ["Canvas tote", "Roll-top backpack"]
    assert _card_names((await client.get("/shop?sort=price_asc")).text) == [
        "Cotton socks", "Canvas tote", "Cotton candy maker", "Roll-top backpack"]
    assert _card_names((await client.get("/shop?sort=price_desc")).text)[0] == "Roll-top backpack"
    assert _card_names((await client.get("/shop?sort=rating")).text)[:3] == ["Roll-top backpack", "Canvas tote", "Cotton candy maker"]
    assert _card_names((await client.get("/shop?min_price=200&max_price=700")).text) == ["Canvas tote", "Cotton candy maker"]
    assert _card_names((await client.get("/shop?rating=4")).text) == ["Roll-top backpack"]
    assert _card_names((await client.get("/shop?rating=3")).text) == ["Canvas tote", "Roll-top backpack"]
    assert "Cotton socks" not in _card_names((await client.get("/shop?in_stock=1")).text)
    search = await client.get("/shop?q=cotton+socks")
    assert _card_names(search.text)[0] == "Cotton socks" and "Cotton candy maker" not in _card_names(search.text)
    assert _card_names((await client.get("/shop?q=sugar")).text) == ["Cotton candy maker"]
    assert (await client.get('/shop?q="unterminated AND (')).status_code == 200
    bad = await client.get("/shop?min_price=abc&rating=9&sort=sideways")
    assert bad.status_code == 200 and "Write a price as a number" in bad.text and "4 products" in bad.text
    assert "Choose 4 stars" in bad.text
    fragment = await client.get("/shop?category=bags", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and "Roll-top backpack" in fragment.text and "HX-Request" in fragment.headers["vary"]
    assert socks["slug"] in everything.text


async def test_shop_pagination_shows_24_per_page(client):
    for n in range(30):
        await make_product(f"Poster number {n:02d}", price=10_000 + n)
    first = await client.get("/shop?sort=price_asc")
    assert len(_card_names(first.text)) == 24 and "30 products" in first.text
    assert _card_names(first.text)[0] == "Poster number 00"
    assert 'aria-current="page">1</span>' in first.text and "page=2" in first.text
    second = await client.get("/shop?sort=price_asc&page=2")
    assert _card_names(second.text) == [f"Poster number {n}" for n in range(24, 30)]
    beyond = await client.get("/shop?page=99")
    assert beyond.status_code == 200 and _card_names(beyond.text) == []
    assert (await client.get("/shop?page=abc")).status_code == 200


async def test_shop_list_query_count_does_not_grow_with_page_size(client, monkeypatch):
    engine_class = type(Product._meta.db)
    original = engine_class.run_querystring
    counted = []

    async def counting(self, querystring, *args, **kwargs):
        counted.append(str(querystring)[:80])
        return await original(self, querystring, *args, **kwargs)

    monkeypatch.setattr(engine_class, "run_querystring", counting)
    bags = await _category_id("bags")
    for n in range(2):
        await make_product(f"Linen poster {n}", variants={"S": 1, "M": 2}, category=bags)
    await client.get("/shop")  # warm up
    counted.clear()
    await client.get("/shop?q=linen+poster&in_stock=1")
    few = len(counted)
    for n in range(22):
        await make_product(f"Linen poster extra {n}", variants={"S": 1, "M": 2, "L": 0}, category=bags)
    counted.clear()
    many_page = await client.get("/shop?q=linen+poster&in_stock=1")
    assert len(_card_names(many_page.text)) == 24
    assert len(counted) == few, counted


# ---- the product page ------------------------------------------------------------------------


async def test_product_page_stock_delivery_and_alternatives(client):
    product = await make_product("Wool beanie", price=24_900, variants={"Grey": 3, "Black": 0, "Navy": 40})
    await Product.update({Product.ships_in_days: 2}).where(Product.id == product["id"])
    gloves = await make_product("Wool gloves")
    scarf = await make_product("Wool scarf")
    retired = await make_product("Old mittens", status="archived")
    await BoughtTogether.insert(
        BoughtTogether(product=product["id"], other=gloves["id"], orders=5),
        BoughtTogether(product=product["id"], other=retired["id"], orders=9))
    fans = [await make_member(f"Fan {n}") for n in range(3)]
    for fan in fans:
        await WishlistItem.insert(WishlistItem(member=fan.id, product=product["id"]))
    await WishlistItem.insert(WishlistItem(member=fans[0].id, product=scarf["id"]),
                              WishlistItem(member=fans[1].id, product=scarf["id"]),
                              WishlistItem(member=fans[2].id, product=gloves["id"]),
                              WishlistItem(member=fans[2].id, product=retired["id"]))
    page = await client.get(f"/shop/{product['slug']}")
    text = page.text
    assert page.status_code == 200
    assert text.index("<h1") < text.index('class="product-gallery"') < text.index("About this product")
    assert "Only 3 left" in text and "Ships within 2 days" in text
    black, grey = product["variants"]["Black"], product["variants"]["Grey"]
    assert re.search(rf'<input type="radio" name="variant_id" value="{black}" disabled', text)
    assert re.search(rf'value="{grey}"\s+checked', text)
    assert 'action="/cart/lines"' in text and 'hx-post="/cart/lines"' in text and 'hx-target="#cart-badge"' in text
    assert 'name="quantity"' in text and 'name="_csrf_token"' in text
    assert '<meta property="og:title" content="Wool beanie">' in text
    together = text.split('id="row-together"')[1].split("</section>")[0]
    assert "Wool gloves" in together and "Old mittens" not in together
    liked = text.split('id="row-liked"')[1].split("</section>")[0]
    assert _card_names(liked) == ["Wool scarf", "Wool gloves"]
    assert "Recently viewed" not in text
    # the recently viewed list lives in a signed cookie
    cookie = page.cookies.get(catalog.RECENT_COOKIE)
    assert cookie and catalog.read_recent(cookie) == [product["id"]]
    second = await client.get(f"/shop/{gloves['slug']}")
    recent = second.text.split('id="row-recent"')[1].split("</section>")[0]
    assert _card_names(recent) == ["Wool beanie"]
    client.cookies.set(catalog.RECENT_COOKIE, f"{scarf['id']}-{product['id']}.forged")
    tampered = await client.get(f"/shop/{gloves['slug']}")
    assert tampered.status_code == 200 and 'id="row-recent"' not in tampered.text
    assert catalog.read_recent("garbage") == [] and catalog.read_recent(None) == []
    missing = await client.get("/shop/no-such-product")
    assert missing.status_code == 404 and "Page not found" in missing.text


async def test_sold_out_product_cannot_be_added(client):
    product = await make_product("Limited print", variants={"A3": 0})
    page = await client.get(f"/shop/{product['slug']}")
    assert "Sold out" in page.text and 'type="button" disabled>Sold out' in page.text


async def test_script_in_product_text_is_shown_as_text(client):
    product = await make_product("<img src=x onerror=alert(1)> mug")
    page = await client.get(f"/shop/{product['slug']}")
    assert page.status_code == 200
    assert "<img src=x onerror" not in page.text and "&lt;img src=x onerror=alert(1)&gt; mug" in page.text
    assert "<img src=x onerror" not in (await client.get("/shop")).text


# ---- questions and answers -----------------------------------------------------------------


async def test_questions_and_answers(client, stripe):
    campaign_id, campaign, _ = await _funded_campaign_with_images()
    await Campaign.update({Campaign.status: "funded"}).where(Campaign.id == campaign_id)
    staff = await make_member("Answer Staff", staff=True)
    published = await catalog.publish_from_campaign(staff, campaign_id, stock={v["id"]: 5 for v in campaign["variants"]},
                                                    safety_info="Wash at 30 °C.")
    slug = published["slug"]
    from app.ideas.tables import Idea

    author_id = (await Idea.select(Idea.author).where(Idea.id == campaign["idea"]).first())["author"]
    from app.accounts import service as accounts

    author = await accounts.get_member(author_id)
    asker = await make_member("Asking Anna")
    bystander = await make_member("Bystander Bo")

    await login(client, asker.email)
    token = await _token(client, f"/shop/{slug}")
    empty = await client.post(f"/shop/{slug}/questions", data={"question": " ", "_csrf_token": token})
    assert empty.status_code == 400 and "Write your question" in empty.text
    assert await ProductQuestion.count() == 0
    asked = await client.post(f"/shop/{slug}/questions", data={"question": "Does it fit a 15 inch laptop?",
                                                                "_csrf_token": token})
    assert asked.status_code == 303
    question = await ProductQuestion.select().first()
    htmx = await client.post(f"/shop/{slug}/questions", data={"question": "Is it waterproof?"},
                             headers={"HX-Request": "true", "x-csrftoken": token})
    assert htmx.status_code == 200 and "<html" not in htmx.text and "Is it waterproof?" in htmx.text
    assert "Thanks! Your question is posted" in htmx.text
    cannot = await client.post(f"/shop/{slug}/questions/{question['id']}/answer", data={"answer": "Yes", "_csrf_token": token})
    assert cannot.status_code == 403
    await client.post("/logout", data={"_csrf_token": token})

    await login(client, bystander.email)
    token = await _token(client, f"/shop/{slug}")
    page = await client.get(f"/shop/{slug}")
    assert "Does it fit a 15 inch laptop?" in page.text and "Answer this question" not in page.text
    assert (await client.post(f"/shop/{slug}/questions/{question['id']}/answer",
                              data={"answer": "Sure", "_csrf_token": token})).status_code == 403
    await client.post("/logout", data={"_csrf_token": token})

    await login(client, author.email)  # the idea's creator answers
    token = await _token(client, f"/shop/{slug}")
    assert "Answer this question" in (await client.get(f"/shop/{slug}")).text
    blank = await client.post(f"/shop/{slug}/questions/{question['id']}/answer", data={"answer": "", "_csrf_token": token},
                              headers={"HX-Request": "true"})
    assert "Write the answer first" in blank.text
    answered = await client.post(f"/shop/{slug}/questions/{question['id']}/answer",
                                 data={"answer": "Yes, up to 16 inches.", "_csrf_token": token})
    assert answered.status_code == 303
    row = await ProductQuestion.select().where(ProductQuestion.id == question["id"]).first()
    assert row["answer"] == "Yes, up to 16 inches." and row["answered_by"] == author.id
    from app.notifications.tables import Notification

    assert await Notification.count().where((Notification.member == asker.id) & Notification.key.like("product_answer:%")) == 1
    assert await Notification.count().where((Notification.member == author.id) & Notification.key.like("product_question:%")) == 2
    await client.post("/logout", data={"_csrf_token": token})

    await login(client, staff.email)
    token = await _token(client, f"/shop/{slug}")
    hidden = await client.post(f"/shop/{slug}/questions/{question['id']}/hide", data={"_csrf_token": token})
    assert hidden.status_code == 303
    await client.post("/logout", data={"_csrf_token": token})
    visitor = await client.get(f"/shop/{slug}")
    assert "Does it fit a 15 inch laptop?" not in visitor.text and "Is it waterproof?" in visitor.text
    assert "Log in</a> to ask a question" in visitor.text


async def test_unverified_members_cannot_ask(client):
    product = await make_product("Bike bell")
    member = await make_member("Unverified Uwe", verified=False)
    await login(client, member.email)
    token = await _token(client, f"/shop/{product['slug']}")
    response = await client.post(f"/shop/{product['slug']}/questions", data={"question": "Is it loud enough?",
                                                                               "_csrf_token": token})
    assert response.status_code == 303 and await ProductQuestion.count() == 0


# ---- functions other areas call ---------------------------------------------------------------


async def test_functions_for_cart_home_and_wishlist():
    product = await make_product("Desk lamp", price=49_900, variants={"White": 4, "Black": 0})
    await ProductVariant.update({ProductVariant.price: 52_900}).where(ProductVariant.id == product["variants"]["Black"])
    draft = await make_product("Draft lamp", status="draft")
    white = await catalog.get_active_variant(product["variants"]["White"])
    assert white["price"] == 49_900 and white["stock"] == 4 and white["product_slug"] == product["slug"]
    assert white["product_name"] == "Desk lamp" and white["currency"] == "SEK" and white["product_status"] == "active"
    assert (await catalog.get_active_variant(product["variants"]["Black"]))["price"] == 52_900
    assert await catalog.get_active_variant(draft["variants"]["One size"]) is None
    assert await catalog.get_active_variant(2**40) is None
    cards = await catalog.product_cards([draft["id"], product["id"], 999_999])
    assert [c["name"] for c in cards] == ["Desk lamp"] and cards[0]["min_price"] == 49_900 and cards[0]["max_price"] == 52_900
    newer = await make_product("Newer lamp")
    assert [c["name"] for c in await catalog.new_in_shop(limit=8)] == ["Newer lamp", "Desk lamp"]
    assert newer["id"] in [c["id"] for c in await catalog.product_cards([newer["id"]])]


async def test_create_product_for_the_demo_loader():
    staff = await make_member("Demo Staff", staff=True)
    member = await make_member("Not Staff")
    data = ProductInput(name="Field notebook", price="89", status="active", category="home", **SAFETY,
                        variants=[VariantInput(name="Dotted", stock=20), VariantInput(name="Lined", stock=5, price="99")])
    made = await catalog.create_product(staff, data)
    assert made["status"] == "active" and made["published_at"] is not None and made["slug"] == "field-notebook"
    assert [(v["name"], v["effective_price"]) for v in made["variants"]] == [("Dotted", 8900), ("Lined", 9900)]
    from app.errors import Forbidden

    with pytest.raises(Forbidden):
        await catalog.create_product(member, data)


# ---- API --------------------------------------------------------------------------------------


async def test_api_products_list_detail_and_cursor(client):
    bags = await _category_id("bags")
    for n in range(5):
        await make_product(f"Api bag {n}", price=10_000 * (n + 1), category=bags, variants={"One size": n})
    hidden = await make_product("Api hidden", status="hidden")
    seen = []
    url = "/api/v1/products?sort=price_asc&limit=2"
    while url:
        body = (await client.get(url)).json()
        assert body["total"] == 5
        seen += [item["name"] for item in body["items"]]
        url = f"/api/v1/products?sort=price_asc&limit=2&cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert seen == [f"Api bag {n}" for n in range(5)]
    first = (await client.get("/api/v1/products?sort=price_asc&limit=1")).json()["items"][0]
    assert first["sold_out"] is True and first["price"] == 10_000 and first["url"].startswith("/shop/")
    detail = await client.get(f"/api/v1/products/{first['id']}")
    assert detail.status_code == 200
    body = detail.json()
    assert body["variants"][0]["stock"] == 0 and body["rating_count"] == 0 and body["category"] == "bags"
    assert (await client.get(f"/api/v1/products/{hidden['id']}")).status_code == 404
    assert (await client.get("/api/v1/products/99999999999")).status_code == 404
    assert (await client.get("/api/v1/products?sort=sideways")).status_code == 400
    assert (await client.get("/api/v1/products?limit=1000")).status_code == 400
    assert (await client.get("/api/v1/products?cursor=!!!")).status_code == 400
    searched = (await client.get("/api/v1/products?q=bag&category=bags&in_stock=true")).json()
    assert searched["total"] == 4
    staff = await make_member("Api Staff", staff=True)
    assert (await client.get(f"/api/v1/products/{hidden['id']}", headers=await _bearer(client, staff))).status_code == 200
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/products" in schema["paths"] and "/api/v1/products/{product_id}" in schema["paths"]


async def test_idea_author_of_a_different_product_cannot_answer(client):
    author = await make_member("Other Author")
    await make_idea(author, title="Unrelated idea")
    product = await make_product("Plain tee")
    asker = await make_member("Tee Asker")
    await ProductQuestion.insert(ProductQuestion(product=product["id"], member=asker.id, body="Cotton?"))
    question = await ProductQuestion.select(ProductQuestion.id).first()
    await login(client, author.email)
    token = await _token(client, f"/shop/{product['slug']}")
    response = await client.post(f"/shop/{product['slug']}/questions/{question['id']}/answer",
                                 data={"answer": "Yes", "_csrf_token": token})
    assert response.status_code == 403
    assert (await ProductQuestion.select(ProductQuestion.answer).first())["answer"] == ""
