"""HTML pages and fragments for ideas: home, list, idea page, drafts, voting, staff review."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, UploadFile

from app.community import views
from app.errors import Conflict, Forbidden, FormError
from app.i18n import N_, gettext
from app.ideas import service
from app.ideas.service import IdeaInput, IdeaQuery
from app.media.storage import storage
from app.web import page_cache
from app.web.guards import requires_member, requires_staff
from app.web.middleware import SESSION_COOKIE
from app.web.responses import current_member, is_htmx, redirect, render

PAGE_SIZE = 12


async def _idea_form(request: Request) -> tuple[IdeaInput, dict[str, str], list[int]]:
    form = await request.form()
    uploads: list[tuple[str, bytes]] = []
    for item in form.getall("images") if "images" in form else []:
        if isinstance(item, UploadFile) and item.filename:
            uploads.append((item.filename, await item.read()))
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    remove = [int(v) for v in form.getall("remove_image") if isinstance(v, str) and v.isdecimal()] if "remove_image" in form else []
    data = IdeaInput(
        title=text.get("title", ""),
        summary=text.get("summary", ""),
        description=text.get("description", ""),
        category=text.get("category", ""),
        uploads=uploads,
    )
    return data, text, remove


@get("/", name="home")
async def home(request: Request) -> Response:
    """The front page: featured collections, new in the shop, campaigns ending soon, trending ideas."""
    from app.campaigns.service import list_campaigns
    from app.community.activity import recent_activity
    from app.shop import collections
    from app.shop.wishlist import hearted_idea_ids, hearted_product_ids

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
    """The newest active products and the card template that fits their rows: the catalog's own
    `new_in_shop` and product card when they exist, else a direct query and the compact tile."""
    try:
        from app.shop.catalog import new_in_shop
    except ImportError:
        new_in_shop = None
    if new_in_shop is not None:
        return list(await new_in_shop(limit)), "shop/_product_card.html"
    from app.shop.tables import Product
    from app.shop.wishlist import product_thumbs

    rows = await Product.select(
        Product.id, Product.slug, Product.name, Product.summary, Product.price, Product.currency,
        Product.rating_avg, Product.rating_count,
    ).where(Product.status == "active").order_by(Product.published_at, Product.id, ascending=False).limit(limit)
    thumbs = await product_thumbs([r["id"] for r in rows])
    for row in rows:
        row["thumb_key"] = thumbs.get(row["id"])
    return rows, "shop/_product_tile.html"


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


@get("/ideas", name="ideas")
async def idea_list(request: Request) -> Response:
    viewer = current_member(request)
    query = _query_from(request)
    if (query.mine or query.my_votes) and viewer is None:
        return redirect(f"/login?next=/ideas?{'mine=1' if query.mine else 'my_votes=1'}")
    try:
        page = await service.list_ideas(viewer, query)
    except FormError:
        page = await service.list_ideas(viewer, IdeaQuery(q=query.q, limit=PAGE_SIZE))
    voted = await service.voted_ids(viewer, [i["id"] for i in page.items])
    from app.shop.wishlist import hearted_idea_ids

    hearted = await hearted_idea_ids(viewer, [i["id"] for i in page.items])
    categories = await service.list_categories()
    follow: dict = {"follow_target": None}
    chosen = next((c for c in categories if c["slug"] == query.category), None)
    if chosen and viewer and not is_htmx(request):
        from app.community.service import is_following

        follow = {"follow_kind": "category", "follow_target": chosen["id"], "next": f"/ideas?category={chosen['slug']}",
                  "following": await is_following(viewer, "category", chosen["id"])}
    return render(
        request,
        "ideas/list.html",
        {
            "page": page,
            "voted": voted,
            "hearted": hearted,
            "categories": categories,
            "statuses": service.PUBLIC_STATUSES,
            "all_statuses": list(service.IdeaStatus),
            "status_label": service.status_label,
            "params": dict(request.query_params),
            **follow,
        },
        fragment="ideas/_results.html",
    )


@get("/ideas/new", guards=[requires_member])
async def idea_new(request: Request) -> Response:
    return render(
        request,
        "ideas/form.html",
        {"idea": None, "values": {}, "errors": {}, "categories": await service.list_categories()},
    )


@post("/ideas", guards=[requires_member], request_max_body_size=40 * 1024 * 1024)
async def idea_create(request: Request) -> Response:
    member = current_member(request)
    data, text, _ = await _idea_form(request)
    try:
        idea_id = await service.create_draft(member, data, for_submit=text.get("action") == "submit")
    except FormError as error:
        return render(
            request,
            "ideas/form.html",
            {"idea": None, "values": text, "errors": error.errors, "categories": await service.list_categories()},
            status_code=400,
        )
    if text.get("action") == "submit":
        try:
            await service.submit(member, idea_id)
        except FormError as error:
            return redirect(f"/ideas/{idea_id}/edit", flash=("error", " ".join(error.errors.values())))
        return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Your idea is submitted. Our team reviews new ideas within a few days.")))
    return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Your draft is saved. Submit it when you're ready.")))


@get("/ideas/{idea_id:int}", name="idea")
async def idea_page(request: Request, idea_id: int) -> Response:
    viewer = current_member(request)
    idea = await service.get_idea(idea_id, viewer)
    context = {"idea": idea, "status_label": service.status_label, "campaign": None}
    if is_htmx(request):  # the vote fragment needs nothing more
        return render(request, "ideas/detail.html", context, fragment="ideas/_vote_button.html")
    from app.community import routes as community_routes
    from app.community import service as community

    if idea["status"] == service.IdeaStatus.CAMPAIGN:
        from app.campaigns import routes as campaign_routes
        from app.campaigns import service as campaigns

        campaign = await campaigns.get_campaign(idea_id=idea_id)
        context.update(await campaign_routes.panel_context(campaign, viewer))
        context["updates"] = await community.updates_for(campaign["id"], viewer)
        context["also_backed"] = await campaigns.also_backed(campaign["id"])
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


@get("/ideas/{idea_id:int}/edit", guards=[requires_member])
async def idea_edit(request: Request, idea_id: int) -> Response:
    idea = await service.get_idea(idea_id, current_member(request))
    if not idea["is_author"]:
        return render(request, "errors/error.html", {"status": 404, "title": gettext("Page not found"), "message": gettext("We couldn't find that page.")}, status_code=404)
    if not idea["editable"]:
        return redirect(f"/ideas/{idea_id}", flash=("error", gettext("This idea can't be edited any more.")))
    values = {"title": idea["title"], "summary": idea["summary"], "description": idea["description"],
              "category": idea["category.slug"] or ""}
    return render(
        request,
        "ideas/form.html",
        {"idea": idea, "values": values, "errors": {}, "categories": await service.list_categories()},
    )


@post("/ideas/{idea_id:int}/edit", guards=[requires_member], request_max_body_size=40 * 1024 * 1024)
async def idea_update(request: Request, idea_id: int) -> Response:
    member = current_member(request)
    data, text, remove = await _idea_form(request)
    try:
        await service.update_draft(member, idea_id, data, remove_images=remove)
        if text.get("action") == "submit":
            await service.submit(member, idea_id)
            return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Your idea is submitted for review.")))
    except FormError as error:
        idea = await service.get_idea(idea_id, member)
        return render(
            request,
            "ideas/form.html",
            {"idea": idea, "values": text, "errors": error.errors, "categories": await service.list_categories()},
            status_code=400,
        )
    return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Your changes are saved.")))


@post("/ideas/{idea_id:int}/submit", guards=[requires_member])
async def idea_submit(request: Request, idea_id: int) -> Response:
    try:
        await service.submit(current_member(request), idea_id)
    except FormError as error:
        return redirect(f"/ideas/{idea_id}/edit", flash=("error", " ".join(error.errors.values())))
    return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Your idea is submitted for review.")))


async def _vote_response(request: Request, idea_id: int, action) -> Response:  # noqa: ANN001
    member = current_member(request)
    error_message = None
    try:
        await action(member, idea_id)
    except (Forbidden, Conflict) as error:
        error_message = error.message
    if is_htmx(request):
        idea = await service.get_idea(idea_id, member)
        return render(request, "ideas/_vote_button.html", {"idea": idea, "vote_error": error_message},
                      status_code=200)
    if error_message:
        return redirect(f"/ideas/{idea_id}", flash=("error", error_message))
    return redirect(f"/ideas/{idea_id}")


@post("/ideas/{idea_id:int}/vote", guards=[requires_member])
async def idea_vote(request: Request, idea_id: int) -> Response:
    return await _vote_response(request, idea_id, service.vote)


@post("/ideas/{idea_id:int}/unvote", guards=[requires_member])
async def idea_unvote(request: Request, idea_id: int) -> Response:
    return await _vote_response(request, idea_id, service.withdraw_vote)


@get("/media/{key:str}", cache=False)
async def media(key: str) -> Response:
    data = storage().open(key)
    if data is None:
        return Response(content=b"Not found", status_code=404, media_type="text/plain")
    return Response(
        content=data,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
        },
    )


@get("/staff/review", guards=[requires_staff])
async def staff_review_queue(request: Request) -> Response:
    return render(request, "staff/review.html", {"queue": await service.review_queue()})


REVIEWED = {
    "voting": N_("Idea #%(id)s was approved and open for votes. The author was emailed."),
    "rejected": N_("Idea #%(id)s was rejected. The author was emailed."),
    "changes_requested": N_("Idea #%(id)s was sent back for changes. The author was emailed."),
}


@post("/staff/ideas/{idea_id:int}/review", guards=[requires_staff])
async def staff_review(request: Request, idea_id: int) -> Response:
    form = await request.form()
    action = str(form.get("action", ""))
    message = str(form.get("message", ""))
    try:
        target = await service.review(current_member(request), idea_id, action, message)
    except FormError as error:
        return redirect(f"/ideas/{idea_id}", flash=("error", " ".join(error.errors.values())))
    except Conflict as error:
        return redirect(f"/ideas/{idea_id}", flash=("error", error.message))
    return redirect("/staff/review", flash=("success", gettext(REVIEWED[target.value], id=idea_id)))


ROUTES = [
    home,
    idea_list,
    idea_new,
    idea_create,
    idea_page,
    idea_edit,
    idea_update,
    idea_submit,
    idea_vote,
    idea_unvote,
    media,
    staff_review_queue,
    staff_review,
]
