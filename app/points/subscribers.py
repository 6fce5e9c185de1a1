"""Points and badges earned for what happens elsewhere: inline subscribers (app/events.py), so
each award commits or rolls back with the change that earned it. Each award is keyed, so a
subscriber run twice for one change awards once."""

from __future__ import annotations

import datetime as dt

from app.accounts.events import EmailVerified, ProfileCompleted
from app.campaigns.events import CampaignFunded, IdeaGreenlit, PledgeConfirmed, PledgePaid
from app.campaigns.service import CampaignStatus, PledgeStatus
from app.campaigns.tables import Pledge
from app.events import subscribe
from app.ideas.events import IdeaAccepted, IdeaVoted
from app.ideas.service import VOTE_CAP_REASONS, VoteRewards, reward_votes_with
from app.orders.events import OrderReleased
from app.points import badges
from app.points import service as points
from app.shop.events import ReviewHidden, ReviewSaved, ShopOrderPaid

COUNTING = [PledgeStatus.ACTIVE.value, PledgeStatus.CHARGING.value, PledgeStatus.PAID.value]


@subscribe(EmailVerified)
async def award_signup_verified(event: EmailVerified) -> None:
    await points.award(event.member_id, "signup_verified", key=f"signup_verified:{event.member_id}")


@subscribe(ProfileCompleted)
async def award_profile_complete(event: ProfileCompleted) -> None:
    await points.award(event.member_id, "profile_complete", key=f"profile_complete:{event.member_id}")
    await badges.award_badge(event.member_id, "profile_complete")


@subscribe(IdeaAccepted)
async def award_idea_accepted(event: IdeaAccepted) -> None:
    await points.award(event.author_id, "idea_accepted", key=f"idea_accepted:{event.idea_id}",
                       reference=f"idea:{event.idea_id}")
    await badges.award_badge(event.author_id, "first_idea")


@subscribe(IdeaVoted)
async def award_vote_badges(event: IdeaVoted) -> None:
    """The vote's own points are the vote's (its database function on PostgreSQL writes them
    with the vote, for speed): the badges follow here."""
    if not event.has_first_vote:
        await badges.award_badge(event.member_id, "first_vote")
    if event.member_votes >= 100 and not event.has_hundred_votes:
        await badges.award_badge(event.member_id, "hundred_votes")


@subscribe(IdeaGreenlit)
async def award_idea_greenlit(event: IdeaGreenlit) -> None:
    await points.award(event.author_id, "idea_greenlit", key=f"idea_greenlit:{event.idea_id}",
                       reference=f"idea:{event.idea_id}")
    await badges.award_badge(event.author_id, "idea_greenlit")


@subscribe(CampaignFunded)
async def award_idea_funded(event: CampaignFunded) -> None:
    await points.award(event.author_id, "idea_funded", key=f"idea_funded:{event.idea_id}",
                       reference=f"campaign:{event.campaign_id}")
    await badges.award_badge(event.author_id, "funded_creator")


@subscribe(PledgeConfirmed)
async def award_pledge_badges(event: PledgeConfirmed) -> None:
    member_id, campaign_id = event.member_id, event.campaign_id
    if event.backers_before == 0 and not await Pledge.exists().where(
            (Pledge.campaign == campaign_id) & (Pledge.member != member_id) & Pledge.status.is_in(COUNTING)):
        await badges.award_badge(member_id, "first_backer")
    if event.campaign_status == CampaignStatus.EARLY_ACCESS.value:
        await badges.award_badge(member_id, "early_insider")
    backed = await Pledge.select(Pledge.campaign).where(
        (Pledge.member == member_id) & Pledge.status.is_in(COUNTING)).distinct()
    if len(backed) >= 10:
        await badges.award_badge(member_id, "ten_campaigns")


@subscribe(PledgePaid)
async def award_pledge_paid(event: PledgePaid) -> None:
    await points.award(event.member_id, "pledge_paid", key=f"pledge_paid:{event.pledge_id}",
                       reference=f"pledge:{event.pledge_id}", points=10 * event.quantity)
    await points.reward_referral(event.member_id)


@subscribe(ShopOrderPaid)
async def referral_for_order(event: ShopOrderPaid) -> None:
    await points.reward_referral(event.member_id)


@subscribe(ReviewSaved)
async def award_review(event: ReviewSaved) -> None:
    await points.award(event.member_id, "review", key=f"review:{event.product_id}:{event.member_id}",
                       reference=f"product:{event.product_id}")
    await badges.award_badge(event.member_id, "reviewer")


@subscribe(ReviewHidden)
async def take_back_review_points(event: ReviewHidden) -> None:
    """Its points go, once (showing the review again does not pay them twice)."""
    await points.reverse(event.member_id, original_key=f"review:{event.product_id}:{event.member_id}",
                         reason="review_removed", reference=f"review:{event.review_id}")


@subscribe(OrderReleased)
async def return_voucher(event: OrderReleased) -> None:
    """A voucher spent on an order cancelled before it shipped goes back to the wallet (once)."""
    await points.give_back_voucher(event.order_id)


class PointsForVotes(VoteRewards):
    """The vote rule of the points table, for ideas' vote (app/ideas/service.py, VoteRewards)."""

    def rule(self) -> tuple[int, int | None]:
        rule = points.RULES["vote"]
        return rule.points, rule.daily_cap

    def day_start(self, now: dt.datetime) -> dt.datetime:
        return points.day_start(now)

    async def award(self, member_id: int, idea_id: int, token: str) -> int:
        return await points.award(member_id, "vote", key=f"vote:{token}", reference=f"idea:{idea_id}",
                                  cap_reasons=VOTE_CAP_REASONS)

    async def take_back(self, member_id: int, idea_id: int, token: str) -> int:
        return await points.reverse(member_id, original_key=f"vote:{token}", reason="vote_reversed",
                                    reference=f"idea:{idea_id}")

    def levelled_up(self, lifetime_before: int, lifetime_after: int) -> bool:
        return points.levelled_up(lifetime_before, lifetime_after)

    async def notify_level_up(self, member_id: int, lifetime_before: int, lifetime_after: int) -> None:
        await points.notify_level_up(member_id, lifetime_before, lifetime_after)


reward_votes_with(PointsForVotes())
