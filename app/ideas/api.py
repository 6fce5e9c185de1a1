"""JSON API for ideas and voting (DESIGN section 9)."""

from __future__ import annotations

from litestar import Request, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from app.errors import FormError
from app.i18n import gettext
from app.ideas import service
from app.ideas.schemas import (
    CategoryOut,
    IdeaIn,
    IdeaList,
    IdeaOut,
    IdeaPatch,
    IdeaSummaryOut,
    ImageOut,
    ReviewIn,
    VoteOut,
)
from app.ideas.service import IdeaInput, IdeaQuery
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member


def _media(key: str | None) -> str | None:
    return f"/media/{key}" if key else None


def summary_out(row: dict) -> IdeaSummaryOut:
    return IdeaSummaryOut(
        id=row["id"], title=row["title"], summary=row["summary"], status=row["status"],
        vote_count=row["vote_count"], category=row["category.slug"], author_handle=row["author.handle"],
        voting_ends_at=row["voting_ends_at"], thumb_url=_media(row.get("thumb_key")), url=f"/ideas/{row['id']}",
    )


def idea_out(row: dict) -> IdeaOut:
    return IdeaOut(
        id=row["id"], title=row["title"], summary=row["summary"], description=row["description"],
        status=row["status"], status_message=row["status_message"] if row["is_author"] else "",
        vote_count=row["vote_count"], voted=row["voted"], ready_for_review=row["ready_for_review"],
        category=row["category.slug"], author_handle=row["author.handle"], author_name=row["author.display_name"],
        created_at=row["created_at"], voting_ends_at=row["voting_ends_at"],
        images=[ImageOut(id=i["id"], url=_media(i["key"]), thumb_url=_media(i["thumb_key"]), width=i["width"],
                         height=i["height"]) for i in row["images"]],
        url=f"/ideas/{row['id']}",
    )


@get("/ideas", summary="List ideas: filters, search and sorts, cursor-paginated")
async def api_list_ideas(
    request: Request,
    status: str = "",
    category: str = "",
    q: str = "",
    sort: str = "",
    mine: bool = False,
    my_votes: bool = False,
    cursor: str | None = None,
    limit: int = Parameter(default=24, ge=1, le=100),
) -> IdeaList:
    offset = service.decode_cursor(cursor) if cursor else 0
    page = await service.list_ideas(
        current_member(request),
        IdeaQuery(status=status, category=category, q=q[:200], sort=sort, mine=mine, my_votes=my_votes,
                  offset=offset, limit=limit),
    )
    return IdeaList(
        items=[summary_out(r) for r in page.items],
        total=page.total,
        next_cursor=service.encode_cursor(page.next_offset) if page.next_offset is not None else None,
    )


@post("/ideas", guards=[requires_member], summary="Create a draft idea")
async def api_create_idea(request: Request, data: IdeaIn) -> IdeaOut:
    member = current_member(request)
    idea_id = await service.create_draft(
        member, IdeaInput(title=data.title, summary=data.summary, description=data.description, category=data.category)
    )
    return idea_out(await service.get_idea(idea_id, member))


@get("/ideas/{idea_id:int}", summary="Read an idea (drafts only by their author or staff)")
async def api_get_idea(request: Request, idea_id: int) -> IdeaOut:
    return idea_out(await service.get_idea(idea_id, current_member(request)))


@patch("/ideas/{idea_id:int}", guards=[requires_member], summary="Edit a draft or an idea with requested changes")
async def api_patch_idea(request: Request, idea_id: int, data: IdeaPatch) -> IdeaOut:
    member = current_member(request)
    current = await service.get_idea(idea_id, member)
    if not current["is_author"]:
        raise service.NotFound(gettext("Idea not found"))
    await service.update_draft(
        member,
        idea_id,
        IdeaInput(
            title=current["title"] if data.title is None else data.title,
            summary=current["summary"] if data.summary is None else data.summary,
            description=current["description"] if data.description is None else data.description,
            category=(current["category.slug"] or "") if data.category is None else data.category,
        ),
    )
    return idea_out(await service.get_idea(idea_id, member))


@post("/ideas/{idea_id:int}/images", guards=[requires_member], request_max_body_size=40 * 1024 * 1024,
      summary="Add images to a draft (multipart field `images`)")
async def api_add_images(request: Request, idea_id: int) -> IdeaOut:
    member = current_member(request)
    current = await service.get_idea(idea_id, member)
    if not current["is_author"]:
        raise service.NotFound(gettext("Idea not found"))
    form = await request.form()
    uploads = [(f.filename, await f.read()) for f in (form.getall("images") if "images" in form else [])
               if isinstance(f, UploadFile)]
    if not uploads:
        raise FormError({"images": gettext("Attach at least one image in the multipart field `images`.")})
    await service.update_draft(
        member, idea_id,
        IdeaInput(title=current["title"], summary=current["summary"], description=current["description"],
                  category=current["category.slug"] or "", uploads=uploads),
    )
    return idea_out(await service.get_idea(idea_id, member))


@post("/ideas/{idea_id:int}/submit", status_code=200, guards=[requires_member], summary="Submit for staff review")
async def api_submit_idea(request: Request, idea_id: int) -> IdeaOut:
    member = current_member(request)
    await service.submit(member, idea_id)
    return idea_out(await service.get_idea(idea_id, member))


@put("/ideas/{idea_id:int}/vote", guards=[requires_member], summary="Vote (idempotent)")
async def api_vote(request: Request, idea_id: int) -> VoteOut:
    state = await service.vote(current_member(request), idea_id)
    return VoteOut(idea_id=idea_id, voted=state.voted, vote_count=state.vote_count)


@delete("/ideas/{idea_id:int}/vote", status_code=200, guards=[requires_member], summary="Withdraw a vote (idempotent)")
async def api_unvote(request: Request, idea_id: int) -> VoteOut:
    state = await service.withdraw_vote(current_member(request), idea_id)
    return VoteOut(idea_id=idea_id, voted=state.voted, vote_count=state.vote_count)


@post("/staff/ideas/{idea_id:int}/review", status_code=200, guards=[requires_staff],
      summary="Staff: approve, reject or request changes")
async def api_review(request: Request, idea_id: int, data: ReviewIn) -> IdeaOut:
    member = current_member(request)
    await service.review(member, idea_id, data.action, data.message)
    return idea_out(await service.get_idea(idea_id, member))


@get("/categories", summary="Idea and product categories")
async def api_categories() -> list[CategoryOut]:
    return [CategoryOut(slug=c["slug"], name=c["name"], description=c["description"])
            for c in await service.list_categories()]


ROUTES = [api_list_ideas, api_create_idea, api_get_idea, api_patch_idea, api_add_images, api_submit_idea,
          api_vote, api_unvote, api_review, api_categories]
