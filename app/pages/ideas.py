"""The ideas list and the idea page: the idea's own data with its campaign box, creator updates,
comments, follow state, hearts and "viewed also"."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.datastructures import Cookie

from app import i18n
from app.campaigns import delivery
from app.campaigns import routes as campaign_routes
from app.campaigns import service as campaigns
from app.community import routes as community_routes
from app.community import service as community
from app.community import views
from app.errors import FormError
from app.ideas import service
from app.ideas.service import IdeaQuery
from app.shop.wishlist import hearted_idea_ids
from app.web import page_cache, shared
from app.web.middleware import SESSION_COOKIE
from app.web.responses import current_member, is_htmx, redirect, render

PAGE_SIZE = 12


def _query_from(request: Request) -> IdeaQuery:
    params = request.query_params
    try:
        page = min(10_000, max(1, int(params.get("page") or 1)))
    except ValueError:
        page = 1
    return IdeaQuery(
        status=params.get("status", ""),
        category=params.get("category", ""),
        q=params.get("q", "")[:200],
        sort=params.get("sort", ""),
        mine=params.get("mine") == "1",
        my_votes=params.get("my_votes") == "1",
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )


def _list_context(request: Request, page, categories: list, query: IdeaQuery) -> dict:  # noqa: ANN001
    return {
        "page": page,
        "categories": categories,
        "statuses": service.PUBLIC_STATUSES,
        "all_statuses": list(service.IdeaStatus),
        "status_label": service.status_label,
        "params": dict(request.query_params),
    }


async def _list_page(viewer, query: IdeaQuery):  # noqa: ANN001, ANN202
    try:
        return await service.list_ideas(viewer, query)
    except FormError:
        return await service.list_ideas(viewer, IdeaQuery(q=query.q, limit=PAGE_SIZE))


def _chosen_category(categories: list, query: IdeaQuery) -> dict | None:
    return next((c for c in categories if c["slug"] == query.category), None)


@get("/ideas", name="ideas")
async def idea_list(request: Request) -> Response:
    viewer = current_member(request)
    query = _query_from(request)
    if (query.mine or query.my_votes) and viewer is None:
        return redirect(f"/login?next=/ideas?{'mine=1' if query.mine else 'my_votes=1'}")
    if shared.shares(request) and not (query.mine or query.my_votes):
        return await _shared_idea_list(request, viewer, query)
    page = await _list_page(viewer, query)
    voted = await service.voted_ids(viewer, [i["id"] for i in page.items])
    hearted = await hearted_idea_ids(viewer, [i["id"] for i in page.items])
    categories = await service.list_categories()
    follow: dict = {"follow_target": None}
    chosen = _chosen_category(categories, query)
    if chosen and viewer and not is_htmx(request):
        follow = {"follow_kind": "category", "follow_target": chosen["id"], "next": f"/ideas?category={chosen['slug']}",
                  "following": await community.is_following(viewer, "category", chosen["id"])}
    return render(request, "ideas/list.html",
                  {**_list_context(request, page, categories, query), "voted": voted, "hearted": hearted, **follow},
                  fragment="ideas/_results.html")


async def _shared_idea_list(request: Request, viewer, query: IdeaQuery) -> Response:  # noqa: ANN001
    """A member's ideas list: the list as every member sees it (app/web/shared.py), rendered once
    per query and language, with this member's votes, hearts and follow written in."""
    fragment = is_htmx(request)

    async def render_list() -> shared.SharedPage:
        page = await _list_page(None, query)
        categories = await service.list_categories()
        chosen = _chosen_category(categories, query)
        follow: dict = {"follow_target": None}
        if chosen and not fragment:
            follow = {"follow_kind": "category", "follow_target": chosen["id"],
                      "next": f"/ideas?category={chosen['slug']}"}
        slots = shared.Slots()
        context = {**shared.shared_context(request, slots), **_list_context(request, page, categories, query),
                   "voted": set(), "hearted": set(), **follow}
        return shared.render_shared("ideas/_results.html" if fragment else "ideas/list.html", context, slots,
                                    {"ids": [i["id"] for i in page.items], "category": follow["follow_target"]})

    key = ("ideas", request.url.query, i18n.get_locale(), fragment)
    layer = await shared.shared_layer().page(key, render_list)
    ids = layer.data["ids"]
    on = {f"voted:{i}" for i in await service.voted_ids(viewer, ids)}
    on |= {f"heart:idea:{i}" for i in await hearted_idea_ids(viewer, ids)}
    if layer.data["category"] and await community.is_following(viewer, "category", layer.data["category"]):
        on.add("follow")
    return shared.respond(request, layer, {}, on)


@get("/ideas/{idea_id:int}", name="idea")
async def idea_page(request: Request, idea_id: int) -> Response:
    viewer = current_member(request)
    idea = await service.get_idea(idea_id, viewer)
    context = {"idea": idea, "status_label": service.status_label, "campaign": None}
    if is_htmx(request):  # the vote fragment needs nothing more
        return render(request, "ideas/detail.html", context, fragment="ideas/_vote_button.html")
    if idea["status"] == service.IdeaStatus.CAMPAIGN:
        campaign = await campaigns.get_campaign(idea_id=idea_id)
        context.update(await campaign_routes.panel_context(campaign, viewer))
        context["updates"] = await community.updates_for(campaign["id"], viewer)
        context["also_backed"] = await campaigns.also_backed(campaign["id"])
        context["delivery"] = await delivery.timeline(campaign)
        context["first_estimate"] = delivery.first_estimate(context["delivery"])
        context["can_post_update"] = bool(viewer and (viewer.is_staff or viewer.id == idea["author"]))
    seen_cookie = None
    if idea["status"] in service.PUBLIC_STATUSES:
        context.update(await community_routes.comments_context(idea_id, viewer))
        context.update(follow_kind="idea", follow_target=idea_id, next=f"/ideas/{idea_id}",
                       following=await community.is_following(viewer, "idea", idea_id))
        context.update(await _view_context(request, viewer, idea_id))
        seen_cookie = context.pop("seen_cookie")
    page = render(request, "ideas/detail.html", context, fragment="ideas/_vote_button.html")
    if seen_cookie:
        page.cookies.append(_seen_cookie(seen_cookie))
    return page


def _seen_cookie(value: str) -> Cookie:
    return Cookie(key=views.RECENT_COOKIE, value=value, path="/", httponly=True, samesite="lax", max_age=30 * 86400)


def _record_visit(request: Request, viewer, idea_id: int) -> str:  # noqa: ANN001
    """Count this view (buffered, no write here); the visitor's new recently-viewed cookie."""
    before, seen_cookie = views.remember(request.cookies.get(views.RECENT_COOKIE), idea_id)
    session_id = request.state.get("session_id")
    returning = session_id and request.cookies.get(SESSION_COOKIE) == session_id  # not a cookie-less bot
    views.record_view("idea", idea_id, views.viewer_key(viewer.id if viewer else None,
                                                        session_id if returning else None), before,
                      source=views.source_of(request),
                      visitor=views.viewer_key(viewer.id if viewer else None, session_id))
    return seen_cookie


def _visit_from_cache(scope, match) -> list[bytes]:  # noqa: ANN001
    """A visitor served the shared copy of an idea page (app/web/page_cache.py): their own view
    and recently-viewed cookie, as a rendered page would have done."""
    seen_cookie = _record_visit(Request(scope), None, int(match.group(1)))
    return [_seen_cookie(seen_cookie).to_encoded_header()[1]]


page_cache.visitor_page(r"/ideas/(\d+)", {views.RECENT_COOKIE}, _visit_from_cache)


async def _view_context(request: Request, viewer, idea_id: int) -> dict:  # noqa: ANN001
    """Count this view (none for a copy the page cache renders with nobody visiting) and what
    other viewers looked at."""
    seen_cookie = None if request.state.get("page_cache_render") else _record_visit(request, viewer, idea_id)
    also_ids = await views.viewed_also("idea", idea_id)
    also = await service.public_idea_cards(also_ids) if also_ids else []
    return {"viewers_today": await views.viewers_today("idea", idea_id), "viewed_also": also,
            "seen_cookie": seen_cookie}


ROUTES = [idea_list, idea_page]
