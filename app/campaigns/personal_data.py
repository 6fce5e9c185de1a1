"""Campaigns' part of a member's personal data (app/accounts/personal_data.py): their pledges
with history; a pledge being charged (or waiting for a fixed card, or about to be charged)
blocks a deletion; open pledges are cancelled first, each exactly once."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Part, register, without
from app.campaigns import service as campaigns
from app.campaigns.service import OPEN_STATUSES, PledgeStatus
from app.campaigns.tables import Campaign, Pledge, PledgeEvent
from app.db import as_aware, utcnow
from app.i18n import gettext

CANCELLABLE = [PledgeStatus.PENDING.value, PledgeStatus.ACTIVE.value]
OPEN_CAMPAIGN = ["early_access", "live"]


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    pledges = await Pledge.select(
        Pledge.id, Pledge.campaign, Pledge.campaign.idea.title, Pledge.campaign.currency, Pledge.variant.name,
        Pledge.quantity, Pledge.amount, Pledge.status, Pledge.consent_version, Pledge.consent_text, Pledge.consent_at,
        Pledge.failure_message, Pledge.created_at, Pledge.updated_at,
    ).where(Pledge.member == member_id).order_by(Pledge.id)
    events = await PledgeEvent.select(PledgeEvent.pledge, PledgeEvent.from_status, PledgeEvent.to_status,
                                      PledgeEvent.message, PledgeEvent.created_at).where(
        PledgeEvent.pledge.is_in([p["id"] for p in pledges] or [0])).order_by(PledgeEvent.id)
    for pledge in pledges:
        pledge["history"] = without([e for e in events if e["pledge"] == pledge["id"]], "pledge")
    return {"pledges": pledges}


async def blockers(member_id: int) -> list[str]:
    open_campaign = {s.value for s in OPEN_STATUSES}
    reasons: list[str] = []
    pledges = await Pledge.select(Pledge.status, Pledge.campaign.status, Pledge.campaign.ends_at,
                                  Pledge.campaign.idea.title).where(
        (Pledge.member == member_id)
        & Pledge.status.is_in([PledgeStatus.ACTIVE.value, PledgeStatus.CHARGING.value,
                               PledgeStatus.PAYMENT_FAILED.value]))
    now = utcnow()
    for p in pledges:
        title = p["campaign.idea.title"]
        if p["status"] == PledgeStatus.CHARGING:
            reasons.append(gettext("The payment for your pledge to \u201c%(title)s\u201d is in progress. "
                                   "You can delete your account once it is settled.", title=title))
        elif p["status"] == PledgeStatus.PAYMENT_FAILED:
            reasons.append(gettext("The payment for your pledge to \u201c%(title)s\u201d failed and is waiting for "
                                   "your card. Fix it or wait until the pledge is dropped, then delete your account.",
                                   title=title))
        elif p["campaign.status"] not in open_campaign or as_aware(p["campaign.ends_at"]) <= now:
            reasons.append(gettext("\u201c%(title)s\u201d has ended and your pledge is about to be charged. "
                                   "You can delete your account once the payment is settled.", title=title))
    return reasons


async def pending(member_id: int) -> list[dict[str, Any]]:
    """The pledges a deletion cancels (shown on the confirmation page)."""
    return await Pledge.select(Pledge.id, Pledge.campaign.idea.title, Pledge.quantity).where(
        (Pledge.member == member_id) & Pledge.status.is_in(CANCELLABLE) & Pledge.campaign.status.is_in(OPEN_CAMPAIGN))


async def prepare(member: Any) -> int:
    cancelled = 0
    for pledge in await Pledge.select(Pledge.id).where(
            (Pledge.member == member.id) & Pledge.status.is_in(CANCELLABLE)
            & Pledge.campaign.status.is_in(OPEN_CAMPAIGN)):
        await campaigns.cancel_pledge(member, pledge["id"])  # exactly once each; a repeat is a no-op
        cancelled += 1
    return cancelled


async def claims_idea(idea_id: int, member_id: int) -> bool:
    return await Campaign.exists().where(Campaign.idea == idea_id)


register(Part("campaigns", order=40, export=export, blockers=blockers, pending=pending, prepare=prepare,
              claims_idea=claims_idea))
