"""HTML pages and fragments for ideas: drafts, voting, staff review, media. The home page, the
ideas list and the idea page show other domains' parts too, so they are composed in app/pages."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from app.errors import Conflict, Forbidden, FormError
from app.i18n import N_, gettext
from app.ideas import service
from app.ideas.service import IdeaInput
from app.media.storage import storage
from app.web.guards import requires_member, requires_staff
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
    idea_new,
    idea_create,
    idea_edit,
    idea_update,
    idea_submit,
    idea_vote,
    idea_unvote,
    media,
    staff_review_queue,
    staff_review,
]
