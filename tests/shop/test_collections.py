"""Collections: the staff editor (staff only), ordering, public pages, the API, and the home page."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from app.shop import collections
from app.shop.collections import CollectionInput
from app.shop.tables import Collection, CollectionItem
from tests.campaigns.helpers import make_campaign
from tests.factories import login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import htmx, token_of


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 90, 40)).save(buffer, "PNG")
    return buffer.getvalue()


async def _titles(slug: str) -> list[str]:
    return [i["title"] for i in (await collections.get_collection(slug))["items"]]


async def test_editor_is_for_staff_only(client):
    assert (await client.get("/staff/collections")).status_code == 303  # visitors log in first
    member = await make_member("Just A Member")
    await login(client, member.email)
    assert (await client.get("/staff/collections")).status_code == 403
    token = await token_of(client)
    response = await client.post("/staff/collections", data={"title": "Mine", "_csrf_token": token})
    assert response.status_code == 403
    assert await Collection.count() == 0


async def test_staff_builds_orders_and_publishes_a_collection(client):
    staff = await make_member("Curator", staff=True)
    jacket = await make_product("Storm jacket", price=129_900)
    socks = await make_product("Wool socks", price=19_900)
    author = await make_member("Idea Person")
    idea_id = await make_idea(author, title="Insulated dog bowl")
    await login(client, staff.email)
    page = await client.get("/staff/collections")
    assert page.status_code == 200 and "New collection" in page.text
    token = await token_of(client, "/staff/collections")
    bad = await client.post("/staff/collections", files={"cover": ("notes.txt", b"not an image", "text/plain")},
                            data={"title": "", "slug": "Bad Slug!", "home_position": "x", "_csrf_token": token})
    assert bad.status_code == 400
    assert "Give the collection a title." in bad.text and "lowercase letters, digits and dashes" in bad.text
    assert await Collection.count() == 0
    created = await client.post("/staff/collections", files={"cover": ("cover.png", _png(), "image/png")}, data={
        "title": "Winter essentials", "body": "Stay warm.", "published": "1", "featured": "1", "home_position": "2",
        "_csrf_token": token})
    assert created.status_code == 303
    row = await Collection.select().first()
    assert row["slug"] == "winter-essentials" and row["cover_key"].endswith(".jpg") and row["featured"]
    edit_url = created.headers["location"]
    base = f"/staff/collections/{row['id']}"
    assert edit_url == base
    # add items: a product by slug, an idea by its link; mistakes get a message next to the field
    missing = await client.post(f"{base}/items", data={"kind": "product", "ref": "no-such-thing", "_csrf_token": token})
    assert missing.status_code == 400 and "No product has the address" in missing.text
    for kind, ref in (("product", jacket["slug"]), ("idea", f"http://x/ideas/{idea_id}"), ("product", socks["slug"])):
        response = await client.post(f"{base}/items", data={"kind": kind, "ref": ref, "note": "", "_csrf_token": token})
        assert response.status_code == 303
    duplicate = await client.post(f"{base}/items", headers=htmx(), data={"kind": "product", "ref": jacket["slug"], "_csrf_token": token})
    assert "already in this collection" in duplicate.text and "<html" not in duplicate.text
    assert await _titles("winter-essentials") == ["Storm jacket", "Insulated dog bowl", "Wool socks"]
    items = {i["title"]: i["item_id"] for i in (await collections.get_collection("winter-essentials"))["items"]}
    # reorder without JS: socks up twice, then jacket down once
    for _ in range(2):
        await client.post(f"{base}/items/{items['Wool socks']}/move", data={"direction": "up", "_csrf_token": token})
    assert await _titles("winter-essentials") == ["Wool socks", "Storm jacket", "Insulated dog bowl"]
    moved = await client.post(f"{base}/items/{items['Storm jacket']}/move", headers=htmx(),
                              data={"direction": "down", "_csrf_token": token})
    assert moved.status_code == 200 and 'id="items"' in moved.text
    assert await _titles("winter-essentials") == ["Wool socks", "Insulated dog bowl", "Storm jacket"]
    # moving the first item up changes nothing
    await client.post(f"{base}/items/{items['Wool socks']}/move", data={"direction": "up", "_csrf_token": token})
    assert await _titles("winter-essentials") == ["Wool socks", "Insulated dog bowl", "Storm jacket"]
    await client.post(f"{base}/items/{items['Storm jacket']}/note", data={"note": "Our warmest", "_csrf_token": token})
    await client.post(f"{base}/items/{items['Insulated dog bowl']}/remove", data={"_csrf_token": token})
    assert await _titles("winter-essentials") == ["Wool socks", "Storm jacket"]
    # the public page shows the items in order with price and note
    client.cookies.clear()
    public = await client.get("/collections/winter-essentials")
    assert public.status_code == 200
    text = public.text
    assert text.index("Wool socks") < text.index("Storm jacket") and "Our warmest" in text
    assert "Stay warm." in text and "1\u00a0299,00\u00a0kr" in text
    listing = await client.get("/collections")
    assert "Winter essentials" in listing.text


async def test_unpublished_collection_is_hidden_from_the_public(client):
    staff = await make_member("Draft Curator", staff=True)
    await collections.create_collection(staff, CollectionInput(title="Coming soon"))
    assert (await client.get("/collections/coming-soon")).status_code == 404
    assert "Coming soon" not in (await client.get("/collections")).text
    assert (await client.get("/api/v1/collections/coming-soon")).status_code == 404
    await login(client, staff.email)
    preview = await client.get("/collections/coming-soon")
    assert preview.status_code == 200 and "only staff can see this collection" in preview.text


async def test_api_lists_featured_first_by_home_position_and_shows_items(client):
    staff = await make_member("API Curator", staff=True)
    product = await make_product("Field notebook", price=14_900)
    author = await make_member("API Author")
    idea_id = await make_idea(author, title="Waxed canvas apron")
    await collections.create_collection(staff, CollectionInput(title="Plain list", published=True))
    second = await collections.create_collection(staff, CollectionInput(title="Second on home", published=True,
                                                                        featured=True, home_position=5))
    await collections.create_collection(staff, CollectionInput(title="First on home", published=True, featured=True,
                                                               home_position=1))
    await collections.create_collection(staff, CollectionInput(title="Draft one", featured=True))
    await collections.add_item(staff, second, kind="product", ref=product["slug"], note="Pocket size")
    await collections.add_item(staff, second, kind="idea", ref=str(idea_id))
    listing = (await client.get("/api/v1/collections")).json()
    assert [c["title"] for c in listing["items"]] == ["First on home", "Second on home", "Plain list"]
    assert listing["next_cursor"] is None
    page = (await client.get("/api/v1/collections?limit=2")).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await client.get(f"/api/v1/collections?limit=2&cursor={page['next_cursor']}")).json()
    assert [c["title"] for c in rest["items"]] == ["Plain list"]
    detail = (await client.get("/api/v1/collections/second-on-home")).json()
    assert detail["items"][0] == {
        "kind": "product", "id": product["id"], "title": "Field notebook", "url": f"/shop/{product['slug']}",
        "note": "Pocket size", "position": 0, "price": 14_900, "currency": "SEK", "votes": None, "image_url": None}
    assert detail["items"][1]["kind"] == "idea" and detail["items"][1]["votes"] == 0
    assert detail["items"][1]["url"] == f"/ideas/{idea_id}" and detail["items"][1]["price"] is None


async def test_concurrent_adds_get_distinct_positions():
    staff = await make_member("Busy Curator", staff=True)
    collection_id = await collections.create_collection(staff, CollectionInput(title="Crowded", published=True))
    products = [await make_product(f"Gadget {n}") for n in range(8)]
    await asyncio.gather(*(collections.add_item(staff, collection_id, kind="product", ref=p["slug"]) for p in products))
    positions = [r["position"] for r in await CollectionItem.select(CollectionItem.position).where(
        CollectionItem.collection == collection_id)]
    assert sorted(positions) == list(range(8))
    # the same product added twice at once lands once
    extra = await make_product("Only once")
    results = await asyncio.gather(*(collections.add_item(staff, collection_id, kind="product", ref=extra["slug"])
                                     for _ in range(5)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, int)) == 1
    assert await CollectionItem.count().where(CollectionItem.collection == collection_id) == 9


async def test_home_page_shows_featured_collection_live_campaign_and_new_product(client):
    staff = await make_member("Home Curator", staff=True)
    await make_product("Brand new lantern")
    collection_id = await collections.create_collection(staff, CollectionInput(
        title="Gifts for hikers", body="Trail-tested picks.", published=True, featured=True))
    hidden = await collections.create_collection(staff, CollectionInput(title="Not featured", published=True))
    assert collection_id and hidden
    campaign_id, campaign = await make_campaign(goal=5)
    response = await client.get("/")
    assert response.status_code == 200
    text = response.text
    assert "Featured collections" in text and "Gifts for hikers" in text and "Not featured" not in text
    assert "New in the shop" in text and "Brand new lantern" in text
    assert "Pre-orders ending soon" in text and campaign["idea.title"] in text
    assert text.index("Gifts for hikers") < text.index("Brand new lantern")


async def test_home_and_collection_pages_do_not_grow_with_collections(client):
    from tests.support.queries import count_queries

    staff = await make_member("Counting Curator", staff=True)
    viewer = await make_member("Counting Viewer")
    author = await make_member("Counting Author")
    await login(client, viewer.email)

    async def fill(title: str, n: int) -> None:
        collection_id = await collections.create_collection(staff, CollectionInput(title=title, published=True,
                                                                                  featured=True))
        for k in range(n):
            product = await make_product(f"{title} product {k}")
            await collections.add_item(staff, collection_id, kind="product", ref=product["slug"])
            idea_id = await make_idea(author, staff=staff, title=f"{title} idea {k}")
            await collections.add_item(staff, collection_id, kind="idea", ref=str(idea_id))

    async def queries(path: str) -> int:
        await client.get(path)
        with count_queries() as counter:
            response = await client.get(path)
        assert response.status_code == 200, path
        return counter.count

    await fill("Small", 1)
    from app.shop import wishlist

    first = (await collections.get_collection("small"))["items"]
    for item in first:  # one product and one idea hearted: the wishlist page reads both kinds
        await wishlist.set_heart(await _member(viewer), item["kind"], item["id"], True)
    paths = ("/", "/collections", "/collections/small", "/wishlist")
    small = {path: await queries(path) for path in paths}
    await fill("Second", 3)
    await fill("Third", 4)
    for product_id in [r["id"] for r in (await collections.get_collection("third"))["items"] if r["kind"] == "product"]:
        await wishlist.set_heart(await _member(viewer), "product", product_id, True)
    for k in range(3):
        await collections.add_item(staff, (await collections.get_collection("small"))["id"], kind="product",
                                   ref=(await make_product(f"Later {k}"))["slug"])
    large = {path: await queries(path) for path in paths}
    assert large == small


async def _member(member):
    from app.accounts import service as accounts

    return await accounts.get_member(member.id)
