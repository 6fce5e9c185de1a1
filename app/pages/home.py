"""The front page: featured collections, new in the shop, campaigns ending soon, the activity feed."""

from __future__ import annotations

from litestar import Request, Response, get

from app.campaigns.service import list_campaigns
from app.community.activity import recent_activity
from app.ideas import service
from app.ideas.service import IdeaQuery
from app.shop import collections
from app.shop.catalog import new_in_shop
from app.shop.wishlist import hearted_idea_ids, hearted_product_ids
from app.web.responses import current_member, render


@get("/", name="home")
async def home(request: Request) -> Response:
    """The front page: featured collections, new in the shop, campaigns ending soon, trending ideas."""
    viewer = current_member(request)
    trending = await service.list_ideas(viewer, IdeaQuery(status="voting", sort="hot", limit=8))
    newest = await service.list_ideas(viewer, IdeaQuery(status="voting", sort="new", limit=4))
    idea_ids = [i["id"] for i in trending.items + newest.items]
    campaigns = await list_campaigns(sort="ending", limit=4)
    campaign_ideas = [{"id": c["idea"]} for c in campaigns]
    await service.attach_thumbnails(campaign_ideas)
    products, product_card = await _new_in_shop(8)
    return render(
        request,
        "home.html",
        {
            "featured": await collections.featured_collections(limit=3, preview_items=4),
            "activity": await recent_activity(),
            "products": products,
            "product_card": product_card,
            "hearts": await hearted_product_ids(viewer, [p["id"] for p in products]),
            "campaigns": campaigns,
            "thumbs": {c["id"]: c.get("thumb_key") for c in campaign_ideas},
            "trending": trending.items,
            "newest": newest.items,
            "voted": await service.voted_ids(viewer, idea_ids),
            "hearted": await hearted_idea_ids(viewer, idea_ids),
            "categories": await service.list_categories(),
            "status_label": service.status_label,
        },
    )


async def _new_in_shop(limit: int) -> tuple[list[dict], str]:
    """The newest active products and the card template their rows fit."""
    return list(await new_in_shop(limit)), "shop/_product_card.html"


ROUTES = [home]
