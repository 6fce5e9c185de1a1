"""No GET changes the database (issue 7): every GET route of the route table, filled with real
ids, is requested by a visitor, a member and staff; a snapshot of every table before and after
must be identical, and no answer may be a 5xx."""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import httpx
from litestar.routes import HTTPRoute

from app.accounts import service as accounts
from app.asgi import create_app
from app.community import service as community
from app.db import raw
from app.experiments import service as experiments
from app.moderation import service as moderation
from app.shop import collections
from app.tables import ALL_TABLES
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order

# Streams and files: not pages (server-sent-event streams, every path ending in /live, never
# end; static files and the schema are served by the framework).
SKIP = ("/static/", "/schema", "/media/", "/dev/mailbox/{")
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
                   and not route.path.startswith(SKIP) and not route.path.endswith("/live")})  # /live: endless streams


@dataclass
class World:
    staff: Any
    buyer: Any
    other: Any
    number: str
    paths: dict[str, str]  # route template -> a filled path (owned by the buyer where owned)


async def build_world() -> World:
    staff = await make_member("Get Staff", staff=True)
    buyer = await make_member("Get Buyer")
    other = await make_member("Other Member")
    idea_id = await make_idea(buyer, title="Foldable kayak", status="draft")
    campaign_id, campaign = await make_campaign(goal=5, staff=staff)
    pledge_id = await pledge_with_card(buyer, campaign_id, campaign["variants"][0]["id"])
    product = await make_product("Get-safe tote")
    order_id = await make_order(buyer, [product], status="paid")
    number = (await raw("SELECT number FROM shop_order WHERE id = {}", order_id))[0]["number"]
    collection_id = await collections.create_collection(staff, collections.CollectionInput(
        title="Rainy days", slug="rainy-days", body="For the wet weeks.", published=True, featured=True))
    await raw("UPDATE member SET wishlist_public = {} WHERE id = {}", True, buyer.id)
    key = await experiments.create_experiment(staff, experiments.ExperimentInput(
        key="pledge_button", title="Pledge button text", goal="pledge",
        variants=[("control", "50"), ("back-it", "50")]))
    # A removal of the buyer's comment: their statement of reasons has a page (and an appeal form).
    comment_id = await community.add_comment(buyer, await make_idea(other, title="Get-safe idea"), "Moderate me")
    decision = await moderation.decide(staff, "comment", comment_id, action="remove", ground="rules",
                                       statement="Removed for the GET-safety test.")
    values = {"kind": "collection", "target": collection_id, "decision_id": decision["id"], "key": key, "idea_id": idea_id, "campaign_id": campaign_id, "pledge_id": pledge_id, "product_id": product["id"],
              "number": number, "handle": buyer.handle, "collection_id": collection_id}
    paths = {}
    for route in get_routes():
        slug = "rainy-days" if "collection" in route else "terms" if route.startswith("/staff/pages") else product["slug"]
        filled = route.replace("{slug:str}", slug)
        for name, value in values.items():
            filled = re.sub(r"\{" + name + r"(:[a-z]+)?\}", str(value), filled)
        paths[route] = filled
    assert not [p for p in paths.values() if "{" in p], "a path parameter without a value"
    return World(staff, buyer, other, number, paths)


@contextlib.asynccontextmanager
async def _browser(app, who):  # noqa: ANN001
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50010)),
                                 base_url="http://testserver.local") as browser:
        if who is not None:
            await login(browser, who.email)
            # Pages read the session cookie, the API only a Bearer token: send both.
            browser.headers["Authorization"] = f"Bearer {await accounts.create_api_token(who.id)}"
        yield browser


async def test_no_get_route_changes_the_database(client, stripe):
    world = await build_world()
    staff, buyer = world.staff, world.buyer
    number = world.number
    paths = list(world.paths.values())
    failures = []
    app = create_app(run_jobs=False, manage_database=False)
    for who in (None, buyer, staff):
        async with _browser(app, who) as browser:
            statuses = {}
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


# Routes whose id names something a member owns: another member must not learn it exists.
OWNED = ("/orders/{number:str}", "/orders/{number:str}/cancel", "/checkout/{number:str}/pay",
         "/checkout/{number:str}/done", "/pledges/{pledge_id:int}/card", "/pledges/{pledge_id:int}/fix",
         "/api/v1/orders/{number:str}", "/ideas/{idea_id:int}", "/ideas/{idea_id:int}/edit",
         "/api/v1/ideas/{idea_id:int}")


async def test_access_matrix_for_every_route_with_an_id(client, stripe):
    """Visitor / owner / another member / staff on every GET route with an id, plus every staff
    route: owned things are 404 to others, staff pages 403 to members, sign-in first for visitors."""
    world = await build_world()
    app = create_app(run_jobs=False, manage_database=False)
    answers: dict[str, dict[str, int]] = {}
    for label, who in (("visitor", None), ("owner", world.buyer), ("other", world.other), ("staff", world.staff)):
        async with _browser(app, who) as browser:
            for route, path in world.paths.items():
                if "{" in route or route.startswith(("/staff", "/api/v1/staff")):
                    answers.setdefault(route, {})[label] = (await browser.get(path)).status_code
    wrong = []
    for route, got in answers.items():
        api = route.startswith("/api/")
        if route.startswith(("/staff", "/api/v1/staff")):
            checks = {"visitor": lambda c: c == (401 if api else 303), "owner": lambda c: c == 403,
                      "other": lambda c: c == 403, "staff": lambda c: c == 200}
        elif route in OWNED:
            public_page = route in ("/ideas/{idea_id:int}", "/api/v1/ideas/{idea_id:int}")
            checks = {
                # a visitor is asked to sign in (or told 401 by the API); a draft idea is simply not found
                "visitor": lambda c, public_page=public_page: c == (404 if public_page else 401 if api else 303),
                "owner": lambda c: c < 400,  # their own thing (a paid order's pay page redirects)
                "other": lambda c: c == 404,  # never "forbidden": that would confirm it exists
                "staff": lambda c: c < 500,
            }
        else:
            checks = {label: (lambda c: c < 500) for label in got}
        for label, ok in checks.items():
            if not ok(got[label]):
                wrong.append((route, label, got[label]))
    assert not wrong
