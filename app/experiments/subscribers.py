"""Experiment goals reached elsewhere (app/events.py): inline, so a conversion is recorded with
the change that reached it and a rolled-back change converts nothing. Each costs no query
unless a running experiment counts that goal."""

from __future__ import annotations

from app.accounts.events import MemberSignedUp
from app.campaigns.events import PledgeConfirmed
from app.events import subscribe
from app.experiments import service as experiments
from app.ideas.events import IdeaVoted
from app.shop.events import AddedToCart, ShopOrderPaid


@subscribe(MemberSignedUp)
async def signup_goal(event: MemberSignedUp) -> None:
    await experiments.record_goal("signup", subject=event.ab_subject or f"m:{event.member_id}")


@subscribe(IdeaVoted)
async def vote_goal(event: IdeaVoted) -> None:
    await experiments.record_goal("vote", member_id=event.member_id)


@subscribe(PledgeConfirmed)
async def pledge_goal(event: PledgeConfirmed) -> None:
    await experiments.record_goal("pledge", member_id=event.member_id)


@subscribe(AddedToCart)
async def add_to_cart_goal(event: AddedToCart) -> None:
    await experiments.record_goal("add_to_cart", member_id=event.member_id, subject=event.ab_subject)


@subscribe(ShopOrderPaid)
async def order_paid_goal(event: ShopOrderPaid) -> None:
    await experiments.record_goal("order_paid", member_id=event.member_id)
