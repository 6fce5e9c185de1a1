"""The front page: featured collections, new in the shop, campaigns ending soon, the activity feed."""

from __future__ import annotations

from litestar import Request, Response, get

from app import i18n
from app.campaigns.service import list_campaigns
from app.community.activity import recent_activity
from app.ideas import service
from app.ideas.service import IdeaQuery
from app.shop import collections
from app.shop.catalog import new_in_shop
from app.shop.wishlist import hearted_idea_ids, hearted_product_ids
from app.web import shared
from app.web.responses import current_member, render


@get("/", name="home")
async def home(request: Request) -> Response:
    """The front page: featured collections, new in the shop, campaigns ending soon, trending ideas."""
    viewer = current_member(request)
    if shared.shares(request):
        return await _shared_home(request, viewer)
    context = await _home_context(viewer)
    ids = context.pop("ids")
    return render(request, "home.html", {
        **context,
        "hearts": await hearted_product_ids(viewer, ids["products"]),
        "voted": await service.voted_ids(viewer, ids["ideas"]),
        "hearted": await hearted_idea_ids(viewer, ids["ideas"]),
    })


async def _home_context(viewer) -> dict:  # noqa: ANN001
    trending = await service.list_ideas(viewer, IdeaQuery(status="voting", sort="hot", limit=8))
    newest = await service.list_ideas(viewer, IdeaQuery(status="voting", sort="new", limit=4))
    campaigns = await list_campaigns(sort="ending", limit=4)
    campaign_ideas = [{"id": c["idea"]} for c in campaigns]
    await service.attach_thumbnails(campaign_ideas)
    products, product_card = await _new_in_shop(8)
    return {
        "featured": await collections.featured_collections(limit=3, preview_items=4),
        "activity": await recent_activity(),
        "products": products,
        "product_card": product_card,
        "campaigns": campaigns,
        "thumbs": {c["id"]: c.get("thumb_key") for c in campaign_ideas},
        "trending": trending.items,
        "newest": newest.items,
        "categories": await service.list_categories(),
        "status_label": service.status_label,
        "ids": {"ideas": [i["id"] for i in trending.items + newest.items], "products": [p["id"] for p in products]},
    }


async def _shared_home(request: Request, viewer) -> Response:  # noqa: ANN001
    """A member's front page: the page every member sees (app/web/shared.py), with their votes
    and hearts written in."""

    async def render_home() -> shared.SharedPage:
        context = await _home_context(None)
        ids = context.pop("ids")
        slots = shared.Slots()
        return shared.render_shared("home.html", {**shared.shared_context(request, slots), **context,
                                                  "hearts": set(), "voted": set(), "hearted": set()}, slots, ids)

    page = await shared.shared_layer().page(("home", i18n.get_locale()), render_home)
    ideas, products = page.data["ideas"], page.data["products"]
    on = {f"voted:{i}" for i in await service.voted_ids(viewer, ideas)}
    on |= {f"heart:idea:{i}" for i in await hearted_idea_ids(viewer, ideas)}
    on |= {f"heart:product:{i}" for i in await hearted_product_ids(viewer, products)}
    return shared.respond(request, page, {}, on)


async def _new_in_shop(limit: int) -> tuple[list[dict], str]:
    """The newest active products and the card template their rows fit."""
    return list(await new_in_shop(limit)), "shop/_product_card.html"


ROUTES = [home]
