"""What happens to campaigns and pledges that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdeaGreenlit:
    """Staff turned an idea into a scheduled pre-order campaign."""

    idea_id: int
    author_id: int
    campaign_id: int


@dataclass(frozen=True)
class CampaignMoved:
    campaign_id: int
    from_status: str
    to_status: str


@dataclass(frozen=True)
class CampaignGoalReached:
    campaign_id: int


@dataclass(frozen=True)
class StretchGoalReached:
    """A pledge took the campaign past a stretch goal (once: the goal's conditional unlock).
    `title` is the goal's, as staff wrote it."""

    campaign_id: int
    goal_id: int
    title: str


@dataclass(frozen=True)
class DeliveryPosted:
    """Staff posted on a campaign's delivery timeline: a milestone, a new estimated delivery date
    or a shipping wave (`kind`)."""

    campaign_id: int
    update_id: int
    kind: str


@dataclass(frozen=True)
class CampaignFunded:
    """The deadline passed with the goal reached (charging follows)."""

    campaign_id: int
    idea_id: int
    author_id: int


@dataclass(frozen=True)
class PledgeConfirmed:
    """A backer's card was saved and the pledge counts. `backers_before`: the campaign's backers
    before this pledge, as counted under its lock; `campaign_status` as it was then."""

    member_id: int
    campaign_id: int
    pledge_id: int
    backers_before: int
    campaign_status: str


@dataclass(frozen=True)
class BackerNotice:
    """A backer is emailed about their pledge (failed payment, reminder, dropped...); the bell shows
    it too. `title` is already in the backer's language; `key` makes it once."""

    member_id: int
    pledge_id: int
    kind: str
    key: str
    title: str
    link: str


@dataclass(frozen=True)
class PledgePaid:
    """A funded campaign's charge for this pledge succeeded (once: the pledge's move to paid).
    Orders writes the pre-order's order inline, in the same transaction."""

    pledge_id: int
    member_id: int
    quantity: int
    payment_intent_id: str = ""
