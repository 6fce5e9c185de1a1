"""Reviews, wishlist and collections pages; /api/v1/collections and product reviews in the API."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import Redirect

from app.errors import Forbidden, FormError
from app.i18n import gettext
from app.ideas.service import decode_cursor, encode_cursor
from app.media.images import store_image
from app.settings import get_settings
from app.shop import collections, reviews, wishlist
from app.shop.collections import CollectionInput
from app.shop.social_schemas import (
    CollectionItemOut,
    CollectionList,
    CollectionOut,
    CollectionSummaryOut,
    RatingOut,
    ReviewIn,
    ReviewList,
    ReviewOut,
)
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, is_htmx, redirect, render, safe_next


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _message(error: Exception) -> str:
    if isinstance(error, FormError):
        return " ".join(error.errors.values()) or error.message
    return getattr(error, "message", "") or str(error)


# ---- reviews ------------------------------------------------------------------------------


async def _reviews_response(request: Request, product: dict, *, status_code: int = 200, errors: dict | None = None,
                            values: dict | None = None, notice: str = "", error: str = "") -> Response:
    ctx = {"reviews": await reviews.product_reviews(product["id"], current_member(request)), "product": product,
           "review_errors": errors or {}, "review_values": values or {}, "review_notice": notice,
           "review_error": error}
    return render(request, "shop/reviews.html", ctx, fragment="shop/_reviews.html", status_code=status_code)


@get("/shop/{slug:str}/reviews")
async def reviews_page(request: Request, slug: str, rating: str = "") -> Response:
    """All of a product's reviews and the review form (the review-request email links here)."""
    product = await reviews.product_by_slug(slug)
    values = {"rating": rating} if rating in ("1", "2", "3", "4", "5") else {}
    return await _reviews_response(request, product, values=values)


@post("/shop/{slug:str}/reviews", guards=[requires_member])
async def review_submit(request: Request, slug: str) -> Response:
    product = await reviews.product_by_slug(slug)
    form = await _form(request)
    try:
        review = await reviews.submit_review(current_member(request), product["id"], rating=form.get("rating"),
                                             title=form.get("title", ""), body=form.get("body", ""))
    except FormError as error:
        if is_htmx(request):
            return await _reviews_response(request, product, errors=error.errors, values=form)
        return await _reviews_response(request, product, status_code=400, errors=error.errors, values=form)
    except Forbidden as error:
        if is_htmx(request):
            return await _reviews_response(request, product, error=error.message)
        return redirect(f"/shop/{slug}#reviews", flash=("error", error.message))
    edited = review["created_at"] != review["updated_at"]
    notice = gettext("Your review is updated.") if edited else gettext("Thank you! Your review is published.")
    if is_htmx(request):
        return await _reviews_response(request, product, notice=notice)
    return redirect(f"/shop/{slug}#reviews", flash=("success", notice))


@get("/wishlist", guards=[requires_member])
async def wishlist_page(request: Request) -> Response:
    member = current_member(request)
    items = await wishlist.wishlist_of(member.id)
    public = await wishlist.is_public(member.id)
    return render(request, "shop/wishlist.html", {
        **items, "owner": None, "public": public, "mine": True,
        "share_url": f"{get_settings().base_url}/wishlist/{member.handle}",
        "hearts": {p["id"] for p in items["products"]}, "hearted_ideas": {i["id"] for i in items["ideas"]},
    }, headers={"Cache-Control": "no-store"})


@post("/wishlist", guards=[requires_member])
async def wishlist_share(request: Request) -> Response:
    form = await _form(request)
    public = form.get("public") == "1"
    await wishlist.set_public(current_member(request), public)
    message = (gettext("Your wishlist is shared: anyone with the link can see it.") if public
               else gettext("Your wishlist is private again; the link no longer works."))
    return redirect("/wishlist", flash=("success", message))


@post("/wishlist/{kind:str}/{subject_id:int}")
async def wishlist_heart(request: Request, kind: str, subject_id: int) -> Response:
    """Heart or un-heart; htmx swaps the button, without JS we go back to the page."""
    member = current_member(request)
    form = await _form(request)
    back = safe_next(form.get("next"), "/wishlist")
    if member is None:
        target = f"/login?next={back}"
        if is_htmx(request):
            return Response(content="", status_code=204, headers={"HX-Redirect": target})
        return Redirect(path=target, status_code=303)
    on = {"1": True, "0": False}.get(form.get("on", ""))
    title = await wishlist.subject_title(kind, subject_id, member)
    error = ""
    try:
        hearted = await wishlist.set_heart(member, kind, subject_id, on)
    except FormError as exc:
        error = _message(exc)
        hearted = bool(await (wishlist.hearted_product_ids if kind == "product" else wishlist.hearted_idea_ids)(
            member, [subject_id]))
    if is_htmx(request):
        return render(request, "shop/_heart.html", {"heart_kind": kind, "heart_id": subject_id, "hearted": hearted,
                                                    "heart_title": title, "heart_next": back, "heart_error": error})
    if error:
        return redirect(back, flash=("error", error))
    return redirect(back, flash=("success", gettext("Saved “%(title)s” to your wishlist.", title=title) if hearted
                                 else gettext("Removed “%(title)s” from your wishlist.", title=title)))


@get("/wishlist/{handle:str}")
async def wishlist_public(request: Request, handle: str) -> Response:
    viewer = current_member(request)
    shared = await wishlist.public_wishlist(handle)
    products, ideas = shared["products"], shared["ideas"]
    return render(request, "shop/wishlist.html", {
        "products": products, "ideas": ideas, "owner": shared["owner"],
        "mine": bool(viewer and viewer.id == shared["owner"]["id"]), "public": True,
        "hearts": await wishlist.hearted_product_ids(viewer, [p["id"] for p in products]),
        "hearted_ideas": await wishlist.hearted_idea_ids(viewer, [i["id"] for i in ideas]),
    })


# ---- collections: public --------------------------------------------------------------------


@get("/collections")
async def collection_list(request: Request) -> Response:
    rows = await collections.list_collections(preview_items=4)
    return render(request, "shop/collections.html", {"collections": rows})


@get("/collections/{slug:str}")
async def collection_page(request: Request, slug: str) -> Response:
    viewer = current_member(request)
    collection = await collections.get_collection(slug, viewer)
    items = collection["items"]
    return render(request, "shop/collection.html", {
        "collection": collection,
        "hearts": await wishlist.hearted_product_ids(viewer, [i["id"] for i in items if i["kind"] == "product"]),
        "hearted_ideas": await wishlist.hearted_idea_ids(viewer, [i["id"] for i in items if i["kind"] == "idea"]),
    })


# ---- collections: staff editor ------------------------------------------------------------


async def _collection_form(request: Request, field: str = "cover") -> tuple[CollectionInput, dict[str, str]]:
    form = await request.form()
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    cover_key = None
    upload_errors: dict[str, str] = {}
    upload = form.get("cover")
    if isinstance(upload, UploadFile) and upload.filename:
        try:
            stored = store_image(await upload.read(), filename=upload.filename,
                                 max_bytes=get_settings().upload_max_bytes, field=field)
            cover_key = stored.key
        except FormError as error:
            upload_errors = error.errors
    if text.get("remove_cover") == "1" and cover_key is None:
        cover_key = ""
    data = CollectionInput(title=text.get("title", ""), slug=text.get("slug", ""), body=text.get("body", ""),
                           published=text.get("published") == "1", featured=text.get("featured") == "1",
                           home_position=text.get("home_position", "0"), cover_key=cover_key,
                           upload_errors=upload_errors)
    return data, text


@get("/staff/collections", guards=[requires_staff])
async def staff_collections(request: Request) -> Response:
    return render(request, "staff/collections.html", {"collections": await collections.staff_collections(),
                                                      "values": {"home_position": "0"}, "errors": {}})


@post("/staff/collections", guards=[requires_staff], request_max_body_size=12 * 1024 * 1024)
async def staff_collection_create(request: Request) -> Response:
    data, text = await _collection_form(request)
    try:
        collection_id = await collections.create_collection(current_member(request), data)
    except FormError as error:
        return render(request, "staff/collections.html", {"collections": await collections.staff_collections(),
                                                          "values": text, "errors": error.errors}, status_code=400)
    return redirect(f"/staff/collections/{collection_id}", flash=("success", gettext("Collection created. Now add products and ideas.")))


async def _edit_context(collection_id: int, values: dict | None = None, errors: dict | None = None,
                        item_errors: dict | None = None, item_values: dict | None = None) -> dict[str, Any]:
    collection = await collections.staff_collection(collection_id)
    if values is None:
        values = {k: collection[k] for k in ("title", "slug", "body", "home_position")}
        values.update(published="1" if collection["published"] else "", featured="1" if collection["featured"] else "")
    return {"collection": collection, "values": values, "errors": errors or {}, "item_errors": item_errors or {},
            "item_values": item_values or {"kind": "product"}}


@get("/staff/collections/{collection_id:int}", guards=[requires_staff])
async def staff_collection_edit(request: Request, collection_id: int) -> Response:
    return render(request, "staff/collections_edit.html", await _edit_context(collection_id))


@post("/staff/collections/{collection_id:int}", guards=[requires_staff], request_max_body_size=12 * 1024 * 1024)
async def staff_collection_update(request: Request, collection_id: int) -> Response:
    data, text = await _collection_form(request)
    try:
        await collections.update_collection(current_member(request), collection_id, data)
    except FormError as error:
        return render(request, "staff/collections_edit.html",
                      await _edit_context(collection_id, values=text, errors=error.errors), status_code=400)
    return redirect(f"/staff/collections/{collection_id}", flash=("success", gettext("Collection saved.")))


@post("/staff/collections/{collection_id:int}/delete", guards=[requires_staff])
async def staff_collection_delete(request: Request, collection_id: int) -> Response:
    await collections.delete_collection(current_member(request), collection_id)
    return redirect("/staff/collections", flash=("info", gettext("Collection deleted.")))


@post("/staff/collections/{collection_id:int}/items", guards=[requires_staff])
async def staff_collection_add(request: Request, collection_id: int) -> Response:
    form = await _form(request)
    try:
        await collections.add_item(current_member(request), collection_id, kind=form.get("kind", ""),
                                   ref=form.get("ref", ""), note=form.get("note", ""))
    except FormError as error:
        ctx = await _edit_context(collection_id, item_errors=error.errors, item_values=form)
        return render(request, "staff/collections_edit.html", ctx, fragment="staff/_collections_items.html",
                      status_code=200 if is_htmx(request) else 400)
    if is_htmx(request):
        return render(request, "staff/collections_edit.html", await _edit_context(collection_id),
                      fragment="staff/_collections_items.html")
    return redirect(f"/staff/collections/{collection_id}#items", flash=("success", gettext("Added to the collection.")))


async def _items_changed(request: Request, collection_id: int, message: str) -> Response:
    if is_htmx(request):
        return render(request, "staff/collections_edit.html", await _edit_context(collection_id),
                      fragment="staff/_collections_items.html")
    return redirect(f"/staff/collections/{collection_id}#items", flash=("success", message))


@post("/staff/collections/{collection_id:int}/items/{item_id:int}/move", guards=[requires_staff])
async def staff_collection_move(request: Request, collection_id: int, item_id: int) -> Response:
    form = await _form(request)
    try:
        await collections.move_item(current_member(request), collection_id, item_id, form.get("direction", ""))
    except FormError as error:
        return redirect(f"/staff/collections/{collection_id}#items", flash=("error", _message(error)))
    return await _items_changed(request, collection_id, gettext("Order changed."))


@post("/staff/collections/{collection_id:int}/items/{item_id:int}/note", guards=[requires_staff])
async def staff_collection_note(request: Request, collection_id: int, item_id: int) -> Response:
    form = await _form(request)
    try:
        await collections.update_item_note(current_member(request), collection_id, item_id, form.get("note", ""))
    except FormError as error:
        return redirect(f"/staff/collections/{collection_id}#items", flash=("error", _message(error)))
    return await _items_changed(request, collection_id, gettext("Note saved."))


@post("/staff/collections/{collection_id:int}/items/{item_id:int}/remove", guards=[requires_staff])
async def staff_collection_remove(request: Request, collection_id: int, item_id: int) -> Response:
    await collections.remove_item(current_member(request), collection_id, item_id)
    return await _items_changed(request, collection_id, gettext("Removed from the collection."))


# ---- API --------------------------------------------------------------------------------------


def _media(key: str | None) -> str | None:
    return f"{get_settings().base_url}/media/{key}" if key else None


def _item_out(item: dict) -> CollectionItemOut:
    return CollectionItemOut(kind=item["kind"], id=item["id"], title=item["title"], url=item["url"], note=item["note"],
                             position=item["position"], price=item["price"], currency=item["currency"],
                             votes=item["votes"], image_url=_media(item.get("thumb_key")))


@get("/collections", summary="Published collections: featured first (by home position), cursor-paginated")
async def api_collections(cursor: str | None = None, limit: int = Parameter(default=24, ge=1, le=100)) -> CollectionList:
    offset = decode_cursor(cursor) if cursor else 0
    rows = await collections.list_collections(limit=limit + 1, offset=offset, preview_items=0)
    more = len(rows) > limit
    return CollectionList(
        items=[CollectionSummaryOut(slug=r["slug"], title=r["title"], body=r["body"], featured=r["featured"],
                                    home_position=r["home_position"], cover_url=_media(r["cover_key"]),
                                    item_count=r["item_count"], url=f"/collections/{r['slug']}") for r in rows[:limit]],
        next_cursor=encode_cursor(offset + limit) if more else None,
    )


@get("/collections/{slug:str}", summary="A published collection with its items in order")
async def api_collection(slug: str) -> CollectionOut:
    row = await collections.get_collection(slug)
    return CollectionOut(slug=row["slug"], title=row["title"], body=row["body"], featured=row["featured"],
                         home_position=row["home_position"], cover_url=_media(row["cover_key"]),
                         url=f"/collections/{row['slug']}", items=[_item_out(i) for i in row["items"]])


def _review_out(row: dict) -> ReviewOut:
    return ReviewOut(id=row["id"], product_id=row["product"], rating=row["rating"], title=row["title"], body=row["body"],
                     author_name=row.get("member.display_name", ""), author_handle=row.get("member.handle", ""),
                     created_at=row["created_at"], updated_at=row["updated_at"])


@get("/products/{product_id:int}/reviews", summary="A product's visible reviews (newest first) and its rating")
async def api_reviews(product_id: int, cursor: str | None = None,
                      limit: int = Parameter(default=20, ge=1, le=100)) -> ReviewList:
    await reviews.product_by_id(product_id)
    offset = decode_cursor(cursor) if cursor else 0
    summary = await reviews.product_reviews(product_id, None)
    rows = await reviews.list_reviews(product_id, limit=limit + 1, offset=offset)
    return ReviewList(
        rating=RatingOut(average=summary["average"], count=summary["count"],
                         distribution={str(d["stars"]): d["count"] for d in summary["distribution"]}),
        items=[_review_out(r) for r in rows[:limit]],
        next_cursor=encode_cursor(offset + limit) if len(rows) > limit else None,
    )


@post("/products/{product_id:int}/reviews", status_code=200, guards=[requires_member],
      summary="Write or edit your review (verified buyers only: 403 otherwise)")
async def api_review_submit(request: Request, product_id: int, data: ReviewIn) -> ReviewOut:
    member = current_member(request)
    await reviews.submit_review(member, product_id, rating=data.rating, title=data.title, body=data.body)
    return _review_out(await reviews.review_of(member.id, product_id))


ROUTES = [reviews_page, review_submit, wishlist_page, wishlist_share,
          wishlist_heart, wishlist_public, collection_list, collection_page, staff_collections, staff_collection_create,
          staff_collection_edit, staff_collection_update, staff_collection_delete, staff_collection_add,
          staff_collection_move, staff_collection_note, staff_collection_remove]
API_ROUTES = [api_collections, api_collection, api_reviews, api_review_submit]
