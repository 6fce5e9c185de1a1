"""Ideas' part of a member's personal data (app/accounts/personal_data.py): their ideas with
history and images, their votes; on deletion with "remove my content", the ideas nobody else
took part in."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Erasure, Part, idea_claimed, register, without
from app.ideas.service import PUBLIC_STATUSES
from app.ideas.tables import Idea, IdeaEvent, IdeaImage, Vote
from app.settings import get_settings


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    ideas = await Idea.select(
        Idea.id, Idea.title, Idea.summary, Idea.description, Idea.category.name, Idea.status, Idea.status_message,
        Idea.vote_count, Idea.created_at, Idea.updated_at, Idea.submitted_at, Idea.voting_starts_at,
        Idea.voting_ends_at).where(Idea.author == member_id).order_by(Idea.id)
    idea_ids = [i["id"] for i in ideas] or [0]
    events = await IdeaEvent.select(IdeaEvent.idea, IdeaEvent.from_status, IdeaEvent.to_status, IdeaEvent.message,
                                    IdeaEvent.created_at).where(IdeaEvent.idea.is_in(idea_ids)).order_by(IdeaEvent.id)
    images = await IdeaImage.select(IdeaImage.idea, IdeaImage.key, IdeaImage.width, IdeaImage.height).where(
        IdeaImage.idea.is_in(idea_ids)).order_by(IdeaImage.position)
    base = get_settings().base_url
    for idea in ideas:
        idea["category"] = idea.pop("category.name")
        idea["history"] = without([e for e in events if e["idea"] == idea["id"]], "idea")
        idea["images"] = [f"{base}/media/{im['key']}" for im in images if im["idea"] == idea["id"]]
    votes = await Vote.select(Vote.idea, Vote.idea.title, Vote.created_at).where(
        Vote.member == member_id).order_by(Vote.id)
    return {"ideas": ideas, "votes": votes}


async def erase(erasure: Erasure) -> None:
    """Unpublished ideas go; a public idea goes only when nobody else took part in it (no votes,
    and no other domain claims it: a campaign, a product, another member's comment). The rest
    stays under "Deleted member". Followers of a removed idea are the community's to drop."""
    if not erasure.remove_content:
        return
    member_id = erasure.member_id
    public = {s.value for s in PUBLIC_STATUSES}
    for idea in await Idea.select(Idea.id, Idea.status, Idea.vote_count).where(Idea.author == member_id):
        if idea["status"] in public and (idea["vote_count"] > 0 or await idea_claimed(idea["id"], member_id)):
            continue
        images = await IdeaImage.select(IdeaImage.key, IdeaImage.thumb_key).where(IdeaImage.idea == idea["id"])
        erasure.image_keys += [k for im in images for k in (im["key"], im["thumb_key"]) if k]
        await Idea.delete().where(Idea.id == idea["id"])
        erasure.removed_ideas += 1


register(Part("ideas", order=20, export=export, erase=erase))
