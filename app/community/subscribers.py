"""What the community hears of elsewhere (app/events.py): followers of an idea are told of its
public moves, and open home pages of the moments their activity feed shows. Inline: a
notification is written with the change (keyed by its event, so never twice), and the feed's
announcement waits for the commit (`activity.announce`)."""

from __future__ import annotations

from app.campaigns.events import CampaignGoalReached, CampaignMoved
from app.community import activity
from app.community.service import notify_idea_followers
from app.events import subscribe
from app.ideas.events import IdeaMoved
from app.ideas.service import FOLLOWER_TITLES, IdeaStatus

FEED_IDEA_MOVES = frozenset({"voting", "greenlit"})
FEED_CAMPAIGN_MOVES = frozenset({"live", "funded"})


@subscribe(IdeaMoved)
async def idea_moved(event: IdeaMoved) -> None:
    if event.public:
        await notify_idea_followers(event.idea_id, key=f"idea_event:{event.event_id}", exclude={event.author_id},
                                    title=FOLLOWER_TITLES[IdeaStatus(event.to_status)],
                                    title_args={"title": event.title}, link=f"/ideas/{event.idea_id}")
    if event.to_status in FEED_IDEA_MOVES or event.to_status == "removed":  # a removed idea leaves the feed
        activity.announce()


@subscribe(CampaignMoved)
async def campaign_moved(event: CampaignMoved) -> None:
    if event.to_status in FEED_CAMPAIGN_MOVES:
        activity.announce()


@subscribe(CampaignGoalReached)
async def goal_reached(event: CampaignGoalReached) -> None:
    activity.announce()
