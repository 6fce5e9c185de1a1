"""No GET changes the database (issue 7): every GET route of the route table, filled with real
ids, is requested by a visitor, a member and staff; a snapshot of every table before and after
must be identical, and no answer may be a 5xx."""

from __future__ import annotations

import hashlib
import re

import httpx
from litestar.routes import HTTPRoute

from app.accounts import service as accounts
from app.asgi import create_app
from app.campaigns import service as campaigns
from app.db import raw
from app.shop import collections
from app.tables import ALL_TABLES
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order

# Streams and files: not pages (the SSE stream never ends; static files and the schema are
# served by the framework).
SKIP = ("/campaigns/{campaign_id:int}/live", "/static/", "/schema", "/media/", "/dev/mailbox/{")
# Sessions record when they were last seen; that is the one write a GET may make.
VOLATILE = {"member_session": ("last_seen_at",)}


async def snapshot() -> dict[str, str]:
    found = {}
    for table in ALL_TABLES:
        name = table._meta.tablename
        rows = [dict(row) for row in await raw(f'SELECT * FROM "{name}" ORDER BY id')]
        for row in rows:
            for column in VOLATILE.get(name, ()):
                row.pop(column, None)
        found[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return found


def get_routes() -> list[str]:
    app = create_app(run_jobs=False, manage_database=False)
    return sorted({route.path for route in app.routes if isinstance(route, HTTPRoute) and "GET" in route.methods
                   and not route.path.startswith(SKIP)})


async def test_no_get_route_changes_the_database(client, stripe):
    staff = await make_member("Get Staff", staff=True)
    buyer = await make_member("Get Buyer")
    idea_id = await make_idea(buyer, title="Foldable kayak")
    campaign_id, campaign = await make_campaign(goal=5, staff=staff)
    pledge_id = await pledge_with_card(buyer, campaign_id, campaign["variants"][0]["id"])
    waiting = await campaigns.start_pledge(await make_member("Card Pending"), campaign_id,
                                           variant_id=campaign["variants"][1]["id"], quantity=1, consent=True)
    product = await make_product("Get-safe tote")
    order_id = await make_order(buyer, [product], status="shipped")
    number = (await raw("SELECT number FROM shop_order WHERE id = {}", order_id))[0]["number"]
    collection_id = await collections.create_collection(staff, collections.CollectionInput(
        title="Rainy days", slug="rainy-days", body="For the wet weeks.", published=True, featured=True))
    await raw("UPDATE member SET wishlist_public = {} WHERE id = {}", True, buyer.id)
    values = {"idea_id": idea_id, "campaign_id": campaign_id, "pledge_id": pledge_id, "product_id": product["id"],
              "number": number, "handle": buyer.handle, "collection_id": collection_id}

    def fill(path: str) -> list[str]:
        if "{slug:str}" in path:
            return [path.replace("{slug:str}", "rainy-days" if "collection" in path else product["slug"])]
        filled = path
        for name, value in values.items():
            filled = re.sub(r"\{" + name + r"(:[a-z]+)?\}", str(value), filled)
        extra = [filled.replace(str(pledge_id), str(waiting.pledge_id))] if "{pledge_id" in path else []
        return [filled, *extra]

    paths = [p for route in get_routes() for p in fill(route)]
    assert not [p for p in paths if "{" in p], "a path parameter without a value"
    before = await snapshot()
    failures = []
    app = create_app(run_jobs=False, manage_database=False)
    for who in (None, buyer, staff):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50010)),
                                     base_url="http://testserver.local") as browser:
            statuses = {}
            if who is not None:
                await login(browser, who.email)
                # Pages read the session cookie, the API only a Bearer token: send both.
                browser.headers["Authorization"] = f"Bearer {await accounts.create_api_token(who.id)}"
            before = await snapshot()  # the login itself writes a session
            for path in paths:
                response = await browser.get(path)
                statuses[path] = response.status_code
                if response.status_code >= 500:
                    failures.append((who and who.display_name, path, response.status_code))
            after = await snapshot()
            changed = [name for name in before if before[name] != after[name]]
            assert not changed, f"GET requests as {who and who.display_name} changed {changed}"
            if who is staff:  # the walk reaches real pages, not only refusals
                assert statuses[f"/staff/orders/{number}"] == 200 and statuses[f"/api/v1/orders/{number}"] == 200
            if who is buyer:
                assert statuses[f"/orders/{number}"] == 200 and statuses["/api/v1/me/orders"] == 200
    assert not failures
    assert len(paths) > 60
