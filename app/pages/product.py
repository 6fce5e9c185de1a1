"""The product page and its questions: the product, its reviews, "bought together", "also
liked", the member's recently viewed and hearts, and the community's "viewed also" and viewers
today."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app import i18n
from app.accounts.service import CurrentMember
from app.community import views
from app.errors import Forbidden, FormError
from app.i18n import gettext
from app.settings import get_settings
from app.shop import catalog, prices
from app.shop.reviews import may_review, product_reviews
from app.shop.wishlist import hearted_product_ids
from app.web import shared
from app.web.guards import requires_member, requires_staff
from app.web.middleware import SESSION_COOKIE
from app.web.responses import current_member, form_text, is_htmx, redirect, render

RECENT_MAX_AGE = 90 * 86400


async def _product_context(request: Request, slug: str) -> tuple[dict[str, Any], str]:
    viewer = current_member(request)
    product = await prices.decorate(await catalog.get_product(slug, viewer))
    before, cookie = catalog.remember_view(request.cookies.get(catalog.RECENT_COOKIE), product["id"])
    _count_view(request, viewer, product["id"], before)
    together = await catalog.bought_together(product["id"])
    liked = await catalog.also_liked(product["id"])
    recent = await catalog.product_cards(before)
    viewed = await catalog.product_cards(await views.viewed_also("product", product["id"]))
    ids = [product["id"], *(p["id"] for p in together + liked + recent + viewed)]
    return {
        "product": product,
        "viewers_today": await views.viewers_today("product", product["id"]),
        "viewed_also": viewed,
        "questions": await catalog.questions_for(product["id"]),
        "bought_together": together,
        "also_liked": liked,
        "recently_viewed": recent,
        "reviews": await product_reviews(product["id"], viewer),
        "hearts": set(await hearted_product_ids(viewer, ids)) if viewer else set(),
        "question_errors": {},
        "question_values": {},
        "status_label": catalog.status_label,
    }, cookie


def _count_view(request: Request, viewer: CurrentMember | None, product_id: int, before: list[int]) -> None:
    """Buffered (no write here): a member or a returning visitor counts once a day."""
    session_id = request.state.get("session_id")
    returning = session_id and request.cookies.get(SESSION_COOKIE) == session_id
    views.record_view("product", product_id, views.viewer_key(viewer.id if viewer else None,
                                                              session_id if returning else None), before,
                      source=views.source_of(request),
                      visitor=views.viewer_key(viewer.id if viewer else None, session_id))


def _with_recent_cookie(response: Response, cookie: str) -> Response:
    response.set_cookie(key=catalog.RECENT_COOKIE, value=cookie, path="/", max_age=RECENT_MAX_AGE, httponly=True,
                        samesite="lax", secure=get_settings().is_production)
    return response


@get("/shop/{slug:str}", name="product")
async def product_page(request: Request, slug: str) -> Response:
    flavor = shared.flavor(request)
    if flavor is not None:
        served = await _shared_product_page(request, slug, flavor)
        if served is not None:
            return served
    context, cookie = await _product_context(request, slug)
    return _with_recent_cookie(render(request, "shop/product.html", context), cookie)


async def _shared_product_page(request: Request, slug: str, flavor: str) -> Response | None:
    """The product page as every member (or every visitor) sees it (app/web/shared.py), rendered
    once per product, language and flavor (again only when the product's version moves); the viewer's hearts, recently viewed row, header and
    token written in. None for a viewer whose page is their own: the product's creator (who
    answers questions) and a member with a review or a purchase of it (the review form)."""
    viewer = current_member(request)

    async def render_product() -> shared.SharedPage:
        stand_in = shared.SHARED_MEMBER if flavor == "member" else None
        product = await prices.decorate(await catalog.get_product(slug, stand_in))
        together = await catalog.bought_together(product["id"])
        liked = await catalog.also_liked(product["id"])
        viewed = await catalog.product_cards(await views.viewed_also("product", product["id"]))
        slots = shared.Slots()
        context = {
            **shared.shared_context(request, slots),
            "product": product, "viewers_today": await views.viewers_today("product", product["id"]),
            "viewed_also": viewed, "questions": await catalog.questions_for(product["id"]),
            "bought_together": together, "also_liked": liked, "recently_viewed": [],
            "reviews": await product_reviews(product["id"], stand_in), "hearts": set(),
            "question_errors": {}, "question_values": {}, "status_label": catalog.status_label,
        }
        return shared.render_shared("shop/product.html", context, slots, {
            "id": product["id"], "idea_author": product.get("idea_author"),
            "card_ids": [product["id"], *(p["id"] for p in together + liked + viewed)]})

    # Kept while the product's version stands (checked once a second): a page of 300 products
    # is rendered when one changes, not each second for each product.
    page = await shared.shared_layer().page(("product", slug, i18n.get_locale(), flavor), render_product,
                                            version=lambda: catalog.product_version(slug))
    product_id = page.data["id"]
    if viewer is not None and (viewer.id == page.data["idea_author"] or await may_review(viewer.id, product_id)):
        return None
    before, cookie = catalog.remember_view(request.cookies.get(catalog.RECENT_COOKIE), product_id)
    _count_view(request, viewer, product_id, before)
    recent = await catalog.product_cards(before)
    ids = page.data["card_ids"] + [p["id"] for p in recent]
    hearts = set(await hearted_product_ids(viewer, ids)) if viewer else set()
    values = {"recent": shared.render_part("shop/_product_row.html", request, {
        "title": gettext("Recently viewed"), "slot": "recent", "items": recent, "hearts": hearts}) if recent else ""}
    return _with_recent_cookie(shared.respond(request, page, values, {f"heart:product:{i}" for i in hearts}), cookie)


async def _questions_fragment(request: Request, slug: str, *, errors: dict | None = None, values: dict | None = None,
                              notice: str = "", status_code: int = 200) -> Response:
    viewer = current_member(request)
    product = await catalog.get_product(slug, viewer)
    return render(request, "shop/_questions.html", {
        "product": product, "questions": await catalog.questions_for(product["id"]),
        "question_errors": errors or {}, "question_values": values or {}, "question_notice": notice,
    }, status_code=status_code)


@post("/shop/{slug:str}/questions", guards=[requires_member])
async def ask_question(request: Request, slug: str) -> Response:
    member = current_member(request)
    form = await form_text(request)
    try:
        question_id = await catalog.ask_question(member, slug, form.get("question", ""))
    except FormError as error:
        if is_htmx(request):
            return await _questions_fragment(request, slug, errors=error.errors, values=form)
        context, cookie = await _product_context(request, slug)
        context.update(question_errors=error.errors, question_values=form)
        return render(request, "shop/product.html", context, status_code=400)
    except Forbidden as error:
        if is_htmx(request):
            return await _questions_fragment(request, slug, errors={"question": error.message}, values=form)
        return redirect(f"/shop/{slug}#questions", flash=("error", error.message))
    notice = gettext("Thanks! Your question is posted; we'll let you know when it's answered.")
    if is_htmx(request):
        return await _questions_fragment(request, slug, notice=notice)
    return redirect(f"/shop/{slug}#question-{question_id}", flash=("success", notice))


@post("/shop/{slug:str}/questions/{question_id:int}/answer", guards=[requires_member])
async def answer_question(request: Request, slug: str, question_id: int) -> Response:
    form = await form_text(request)
    try:
        await catalog.answer_question(current_member(request), slug, question_id, form.get("answer", ""))
    except FormError as error:
        if is_htmx(request):
            return await _questions_fragment(request, slug, errors={f"answer_{question_id}": error.errors["answer"]})
        return redirect(f"/shop/{slug}#question-{question_id}", flash=("error", error.errors["answer"]))
    if is_htmx(request):
        return await _questions_fragment(request, slug, notice=gettext("Answer posted."))
    return redirect(f"/shop/{slug}#question-{question_id}", flash=("success", gettext("Answer posted.")))


@post("/shop/{slug:str}/questions/{question_id:int}/hide", guards=[requires_staff])
async def hide_question(request: Request, slug: str, question_id: int) -> Response:
    await catalog.hide_question(current_member(request), slug, question_id)
    return redirect(f"/shop/{slug}#questions", flash=("info", gettext("The question is hidden.")))


ROUTES = [product_page, ask_question, answer_question, hide_question]
