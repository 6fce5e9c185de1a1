"""The home page's activity feed: new ideas open for votes, greenlights, campaigns going live,
funded campaigns and campaigns reaching their goal, newest first, live across processes.

Built from the rows that already record these moments (idea and campaign events, the goal
timestamp) with one query per kind, so nothing is written twice; the state machines call
`announce()` after their commit so open home pages re-read it.
"""

from __future__ import annotations

from typing import Any

from app.campaigns import live
from app.campaigns.tables import Campaign, CampaignEvent
from app.db import after_commit
from app.i18n import N_
from app.ideas.service import PUBLIC_STATUSES
from app.ideas.tables import IdeaEvent

# What happened, after the idea's title; the feed template translates it.
IDEA_MOMENTS = {"voting": N_("is open for votes"), "greenlit": N_("was greenlit")}
CAMPAIGN_MOMENTS = {"live": N_("is live for pre-orders"), "funded": N_("was funded"), "charging": N_("was funded")}
GOAL_REACHED = N_("reached its goal")


def announce() -> None:
    """Tell open home pages the feed changed, once the current transaction commits."""

    after_commit(live.publish_activity)


async def recent_activity(limit: int = 8) -> list[dict[str, Any]]:
    # Only ideas still shown (a removed one leaves the feed), and never a removal's reversal.
    ideas = await IdeaEvent.select(IdeaEvent.idea, IdeaEvent.idea.title, IdeaEvent.to_status,
                                   IdeaEvent.created_at).where(
        IdeaEvent.to_status.is_in(list(IDEA_MOMENTS)) & (IdeaEvent.from_status != "removed")
        & IdeaEvent.idea.status.is_in(list(PUBLIC_STATUSES))).order_by(IdeaEvent.id, ascending=False).limit(limit)
    campaigns = await CampaignEvent.select(CampaignEvent.campaign.idea, CampaignEvent.campaign.idea.title,
                                           CampaignEvent.to_status, CampaignEvent.created_at).where(
        CampaignEvent.to_status.is_in(["live", "funded"])).order_by(CampaignEvent.id, ascending=False).limit(limit)
    goals = await Campaign.select(Campaign.idea, Campaign.idea.title, Campaign.goal_reached_at).where(
        Campaign.goal_reached_at.is_not_null()).order_by(Campaign.goal_reached_at, ascending=False).limit(limit)
    items = [{"idea": r["idea"], "title": r["idea.title"], "what": IDEA_MOMENTS[r["to_status"]], "kind": r["to_status"],
              "at": r["created_at"]} for r in ideas]
    items += [{"idea": r["campaign.idea"], "title": r["campaign.idea.title"], "what": CAMPAIGN_MOMENTS[r["to_status"]],
               "kind": r["to_status"], "at": r["created_at"]} for r in campaigns]
    items += [{"idea": r["idea"], "title": r["idea.title"], "what": GOAL_REACHED, "kind": "goal",
               "at": r["goal_reached_at"]} for r in goals]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]
