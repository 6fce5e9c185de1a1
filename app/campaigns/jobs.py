"""Scheduled and background work for campaigns and settlement (all safe to run twice)."""

from typing import Any

from app.campaigns import service, settlement
from app.campaigns.tables import Campaign
from app.db import utcnow
from app.jobs.service import job_handler


@job_handler("campaign_tick")
async def campaign_tick(payload: dict[str, Any]) -> None:
    await service.advance_campaign(int(payload["campaign_id"]))


@job_handler("sweep_campaigns", every_seconds=60)
async def sweep_campaigns(payload: dict[str, Any]) -> None:
    """Safety net behind the per-campaign jobs: advance every campaign that has a move due."""
    now = utcnow()
    due = await Campaign.select(Campaign.id).where(
        (Campaign.status.is_in(["scheduled", "early_access", "live"]))
        & ((Campaign.starts_at <= now) | (Campaign.ends_at <= now))
    )
    for row in due:
        await service.advance_campaign(row["id"], now=now)


@job_handler("expire_pending_pledge")
async def expire_pending_pledge(payload: dict[str, Any]) -> None:
    await service.expire_pending_pledge(int(payload["pledge_id"]))


@job_handler("settle_campaign")
async def settle_campaign(payload: dict[str, Any]) -> None:
    await settlement.settle_campaign(int(payload["campaign_id"]))


@job_handler("release_campaign")
async def release_campaign(payload: dict[str, Any]) -> None:
    await service.release_campaign(int(payload["campaign_id"]))


@job_handler("charge_pledge")
async def charge_pledge(payload: dict[str, Any]) -> None:
    await settlement.charge_pledge(int(payload["pledge_id"]), int(payload["attempt"]))


@job_handler("refund_stray_payment")
async def refund_stray_payment(payload: dict[str, Any]) -> None:
    await settlement.refund_stray_payment(payload["payment_intent"], int(payload["amount"]), int(payload["pledge_id"]))


@job_handler("sweep_payment_failures", every_seconds=600)
async def sweep_payment_failures(payload: dict[str, Any]) -> None:
    await settlement.sweep_payment_failures()
