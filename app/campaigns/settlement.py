"""Charging a funded campaign: one off-session PaymentIntent per pledge, exactly once.

The order of writes is what makes it exact:
1. a unique `ChargeAttempt` row per (pledge, attempt) is written and COMMITTED first;
2. a worker takes a lease on that row (a conditional update) before it talks to Stripe, so
   a second worker or a retried job cannot charge the same attempt at the same time;
3. a worker that finds an expired lease (its predecessor crashed mid-call) first looks in
   Stripe for a PaymentIntent carrying this pledge and attempt in its metadata, and only
   charges when there is none (Stripe's idempotency key covers real Stripe as well);
4. the answer is recorded with conditional updates, so a webhook and the API response can
   both report it and it is applied once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from app.accounts.tables import Member
from app.campaigns import live
from app.campaigns.events import PledgePaid
from app.campaigns.service import (
    CampaignStatus,
    IllegalMove,
    PledgeStatus,
    email_pledge,
    move_campaign,
    move_pledge,
)
from app.campaigns.tables import Campaign, ChargeAttempt, Pledge
from app.db import as_aware, utcnow, write_transaction
from app.errors import Conflict, NotFound
from app.events import emit
from app.i18n import gettext
from app.jobs.service import current_lease, enqueue
from app.payments import cards, intents
from app.payments.gateway import PaymentOutcome, PaymentResult, classify_payment, gateway, metadata_number
from app.settings import get_settings

log = logging.getLogger("crowdmade.settlement")


class ChargeBusy(Exception):
    """Another worker holds this attempt's lease: the job retries after it (with backoff)."""
P = PledgeStatus
FINAL_ATTEMPT_STATES = ("paid", "declined", "needs_authentication")


def attempt_key(pledge_id: int, attempt: int) -> str:
    return f"pledge-{pledge_id}-attempt-{attempt}"


async def settle_campaign(campaign_id: int) -> int:
    """funded -> charging, and one charge job per active pledge (safe to run twice)."""
    try:
        await move_campaign(campaign_id, CampaignStatus.CHARGING, expect=(CampaignStatus.FUNDED,),
                            message="Charging backers")
    except IllegalMove:
        row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
        if row is None or row["status"] != CampaignStatus.CHARGING:
            return 0
    queued = 0
    pledges = await Pledge.select(Pledge.id).where((Pledge.campaign == campaign_id) & (Pledge.status == P.ACTIVE.value))
    for row in pledges:
        async with write_transaction():
            if await move_pledge(row["id"], P.CHARGING, expect=(P.ACTIVE,), message="Campaign funded") is None:
                continue
            await enqueue("charge_pledge", {"pledge_id": row["id"], "attempt": 1},
                          unique_key=f"charge_pledge:{row['id']}:1", max_attempts=20)
            await email_pledge(row["id"], "campaign_funded", "funded")
            queued += 1
    return queued


async def next_attempt(pledge_id: int) -> int:
    rows = await ChargeAttempt.select(ChargeAttempt.attempt).where(ChargeAttempt.pledge == pledge_id).order_by(
        ChargeAttempt.attempt, ascending=False).limit(1)
    return (rows[0]["attempt"] + 1) if rows else 1


async def charge_pledge(pledge_id: int, attempt: int, *, off_session: bool = True) -> PaymentResult | None:
    pledge = await Pledge.select(Pledge.id, Pledge.status, Pledge.amount, Pledge.payment_method_id, Pledge.campaign,
                                 Pledge.member.stripe_customer_id, Pledge.campaign.currency).where(
        Pledge.id == pledge_id).first()
    if pledge is None or pledge["status"] not in (P.CHARGING, P.PAYMENT_FAILED):
        return None
    key = attempt_key(pledge_id, attempt)
    await ChargeAttempt.insert(ChargeAttempt(pledge=pledge_id, attempt=attempt, idempotency_key=key,
                                             amount=pledge["amount"])).on_conflict(action="DO NOTHING")
    # No conflict target: the key and (pledge, attempt) are both unique, and a concurrent insert can
    # hit either first on PostgreSQL; both mean the same row.
    now = utcnow()
    # Leased until the charge job's own claim expires (current_lease), so the worker that claims
    # the job next finds the attempt free rather than still leased for the moment between the
    # job's claim and this one. Outside a job (a member fixing a payment), a lease of its own.
    lease = current_lease() or now + dt.timedelta(seconds=get_settings().job_lease_seconds)
    claimed = await ChargeAttempt.update({ChargeAttempt.status: "charging", ChargeAttempt.claimed_until: lease}).where(
        (ChargeAttempt.idempotency_key == key)
        & ((ChargeAttempt.status == "started")
           | ((ChargeAttempt.status == "charging") & (ChargeAttempt.claimed_until < now)))
    ).returning(ChargeAttempt.id)
    if not claimed:
        row = await ChargeAttempt.select(ChargeAttempt.status).where(ChargeAttempt.idempotency_key == key).first()
        if row and row["status"] == "charging":
            raise ChargeBusy(f"attempt {key} is leased by another worker")
        return None  # it has finished
    customer = pledge["member.stripe_customer_id"]
    metadata = {"pledge_id": str(pledge_id), "attempt": str(attempt)}
    try:
        earlier = await gateway().find_payments(customer=customer, metadata=metadata)
        if earlier:
            log.warning("pledge %s attempt %s: found an earlier PaymentIntent %s; not charging again",
                        pledge_id, attempt, earlier[0].payment_intent_id)
            result = earlier[0]
        else:
            await _cancel_open_attempts(pledge_id, before=attempt)
            result = await gateway().charge(customer=customer, payment_method=pledge["payment_method_id"],
                                            amount=pledge["amount"], currency=pledge["campaign.currency"],
                                            idempotency_key=key, metadata=metadata, off_session=off_session)
    except Exception:
        # Stripe could not be reached, or answered in a way we could not read: let the next run
        # take over at once; it looks for a PaymentIntent of this attempt before charging.
        await ChargeAttempt.update({ChargeAttempt.claimed_until: utcnow()}).where(ChargeAttempt.idempotency_key == key)
        raise
    await record_charge(pledge_id, attempt, result)
    return result


async def _cancel_open_attempts(pledge_id: int, *, before: int | None = None) -> None:
    """A new attempt (or a drop) first cancels earlier PaymentIntents still waiting for
    authentication, so an old one can never be completed on top of a new payment."""
    query = ChargeAttempt.select(ChargeAttempt.payment_intent_id).where(
        (ChargeAttempt.pledge == pledge_id) & (ChargeAttempt.status == "needs_authentication")
        & (ChargeAttempt.payment_intent_id != ""))
    if before is not None:
        query = query.where(ChargeAttempt.attempt < before)
    for row in await query:
        await gateway().cancel_payment(row["payment_intent_id"])


async def record_charge(pledge_id: int, attempt: int, result: PaymentResult) -> None:
    """Apply Stripe's answer once (API response, webhook or authentication, whichever first)."""
    if result.outcome is PaymentOutcome.PROCESSING:
        return
    key = attempt_key(pledge_id, attempt)
    now = utcnow()
    campaign_id = None
    async with write_transaction():
        updated = await ChargeAttempt.update({
            ChargeAttempt.status: result.outcome.value,
            ChargeAttempt.payment_intent_id: result.payment_intent_id or "",
            ChargeAttempt.client_secret: result.client_secret or "",
            ChargeAttempt.message: result.message,
            ChargeAttempt.finished_at: now,
            ChargeAttempt.claimed_until: None,
        }).where((ChargeAttempt.idempotency_key == key) & (ChargeAttempt.status != "paid")).returning(ChargeAttempt.id)
        if not updated:
            return
        pledge = await Pledge.select(Pledge.status, Pledge.campaign, Pledge.member, Pledge.quantity).where(
            Pledge.id == pledge_id).first()
        campaign_id = pledge["campaign"]
        if result.outcome is PaymentOutcome.PAID:
            if await move_pledge(pledge_id, P.PAID, message="Payment succeeded",
                                 data={"payment_intent": result.payment_intent_id}) is not None:
                await emit(PledgePaid(pledge_id, pledge["member"], pledge["quantity"], result.payment_intent_id or ""))
                await email_pledge(pledge_id, "pledge_paid", "paid")
            elif result.payment_intent_id:
                # Already paid by another attempt, or dropped: this money must go back.
                await enqueue("refund_stray_payment", {"payment_intent": result.payment_intent_id,
                                                       "amount": result.amount, "pledge_id": pledge_id},
                              unique_key=f"refund_stray:{result.payment_intent_id}")
        else:
            if pledge["status"] == P.CHARGING:
                await move_pledge(pledge_id, P.PAYMENT_FAILED, expect=(P.CHARGING,), message=result.message,
                                  extra={Pledge.failed_at: now, Pledge.failure_message: result.message})
            elif pledge["status"] == P.PAYMENT_FAILED:
                await Pledge.update({Pledge.failure_message: result.message}).where(Pledge.id == pledge_id)
            else:
                return
            await email_pledge(pledge_id, "payment_failed", f"attempt:{attempt}")
    if campaign_id:
        await live.publish(campaign_id)


async def refund_stray_payment(payment_intent_id: str, amount: int, pledge_id: int) -> None:
    log.error("pledge %s: refunding stray payment %s (%s)", pledge_id, payment_intent_id, amount)
    await gateway().refund(payment_intent_id=payment_intent_id, amount=amount,
                           idempotency_key=f"refund-stray-{payment_intent_id}")


async def apply_payment_intent(payment_intent: dict[str, Any]) -> str:
    """A webhook's PaymentIntent: find our attempt by its id (or metadata) and record it."""

    result = classify_payment(payment_intent)
    row = await ChargeAttempt.select(ChargeAttempt.pledge, ChargeAttempt.attempt).where(
        ChargeAttempt.payment_intent_id == (payment_intent.get("id") or "")).first()
    if row is None:
        meta = payment_intent.get("metadata") or {}
        pledge_id, attempt = metadata_number(meta, "pledge_id"), metadata_number(meta, "attempt")
        if pledge_id is None or attempt is None:
            return "not ours"
        row = {"pledge": pledge_id, "attempt": attempt}
        if not await ChargeAttempt.exists().where(ChargeAttempt.idempotency_key == attempt_key(row["pledge"], row["attempt"])):
            return "unknown attempt"
    await record_charge(row["pledge"], row["attempt"], result)
    return result.outcome.value


# ---- fixing a failed payment ------------------------------------------------------------------


async def last_attempt(pledge_id: int) -> dict[str, Any] | None:
    return await ChargeAttempt.select().where(ChargeAttempt.pledge == pledge_id).order_by(
        ChargeAttempt.attempt, ascending=False).first()


async def complete_authentication(member, pledge_id: int) -> PaymentResult:  # noqa: ANN001
    """After Stripe.js confirmCardPayment: ask Stripe for the PaymentIntent's state."""
    pledge = await _owned_failed(member, pledge_id)
    attempt = await last_attempt(pledge["id"])
    if attempt is None or not attempt["payment_intent_id"]:
        raise Conflict(gettext("There is no payment waiting for authentication."))
    result = await gateway().retrieve_payment(attempt["payment_intent_id"])
    await record_charge(pledge_id, attempt["attempt"], result)
    return result


async def pay_with_new_card(member, pledge_id: int, setup_intent_id: str) -> PaymentResult | None:  # noqa: ANN001

    await _owned_failed(member, pledge_id)
    payment_method = await cards.verified_payment_method(member, setup_intent_id,
                                                         expected={"pledge_id": str(pledge_id), "purpose": "fix"})
    await Pledge.update({Pledge.payment_method_id: payment_method}).where(Pledge.id == pledge_id)
    return await charge_pledge(pledge_id, await next_attempt(pledge_id), off_session=False)


async def _owned_failed(member, pledge_id: int) -> dict[str, Any]:  # noqa: ANN001
    pledge = await Pledge.select().where(Pledge.id == pledge_id).first()
    if pledge is None or pledge["member"] != member.id:
        raise NotFound(gettext("Pledge not found"))
    if pledge["status"] != P.PAYMENT_FAILED:
        raise Conflict(gettext("This pledge has no failed payment to fix."))
    return pledge


async def sweep_payment_failures(now: dt.datetime | None = None) -> dict[str, int]:
    """Reminders every 48 h, one automatic retry, and the drop after 7 days (time injectable)."""
    settings = get_settings()
    now = now or utcnow()
    counts = {"reminded": 0, "retried": 0, "dropped": 0}
    # Pledges left in "charging" (a job that gave up, a lost worker) get their charge job again.
    bucket = int(now.timestamp()) // 600
    for row in await Pledge.select(Pledge.id).where((Pledge.status == P.CHARGING.value) & (Pledge.updated_at < now - dt.timedelta(minutes=10))):
        attempt = max(1, await next_attempt(row["id"]) - 1)
        await enqueue("charge_pledge", {"pledge_id": row["id"], "attempt": attempt},
                      unique_key=f"charge_pledge:{row['id']}:{attempt}:sweep:{bucket}", max_attempts=20)
    failed = await Pledge.select(Pledge.id, Pledge.failed_at, Pledge.retried, Pledge.last_reminder_at,
                                 Pledge.reminders_sent).where(Pledge.status == P.PAYMENT_FAILED.value)
    for pledge in failed:
        failed_at = as_aware(pledge["failed_at"]) or now
        if now >= failed_at + dt.timedelta(days=settings.payment_fix_days):
            async with write_transaction():
                if await move_pledge(pledge["id"], P.DROPPED, expect=(P.PAYMENT_FAILED,),
                                     message=f"Not paid within {settings.payment_fix_days} days") is not None:
                    await email_pledge(pledge["id"], "pledge_dropped", "dropped")
                    counts["dropped"] += 1
            await _cancel_open_attempts(pledge["id"])
            continue
        if not pledge["retried"] and now >= failed_at + dt.timedelta(hours=settings.payment_retry_hours):
            async with write_transaction():
                marked = await Pledge.update({Pledge.retried: True}).where(
                    (Pledge.id == pledge["id"]) & (Pledge.retried == False)  # noqa: E712
                ).returning(Pledge.id)
                if marked:
                    attempt = await next_attempt(pledge["id"])
                    await enqueue("charge_pledge", {"pledge_id": pledge["id"], "attempt": attempt},
                                  unique_key=f"charge_pledge:{pledge['id']}:{attempt}", max_attempts=20)
                    counts["retried"] += 1
        last = as_aware(pledge["last_reminder_at"]) or failed_at
        if now >= last + dt.timedelta(hours=settings.payment_reminder_hours):
            async with write_transaction():
                number = pledge["reminders_sent"] + 1
                marked = await Pledge.update({Pledge.reminders_sent: number, Pledge.last_reminder_at: now}).where(
                    (Pledge.id == pledge["id"]) & (Pledge.reminders_sent == pledge["reminders_sent"])
                ).returning(Pledge.id)
                if marked:
                    await email_pledge(pledge["id"], "payment_reminder", f"reminder:{number}")
                    counts["reminded"] += 1
    return counts


async def settlement_summary(campaign_id: int) -> dict[str, Any]:
    rows = await Pledge.select(Pledge.status, Pledge.quantity, Pledge.amount).where(Pledge.campaign == campaign_id)
    by_status: dict[str, dict[str, int]] = {}
    for row in rows:
        bucket = by_status.setdefault(row["status"], {"pledges": 0, "units": 0, "amount": 0})
        bucket["pledges"] += 1
        bucket["units"] += row["quantity"]
        bucket["amount"] += row["amount"]
    failed = await Pledge.select(Pledge.id, Pledge.amount, Pledge.failure_message, Pledge.failed_at,
                                 Pledge.member.email, Pledge.member.display_name).where(
        (Pledge.campaign == campaign_id) & Pledge.status.is_in([P.PAYMENT_FAILED.value, P.DROPPED.value]))
    charged = sum(v["amount"] for k, v in by_status.items() if k == P.PAID)
    to_charge = sum(v["amount"] for k, v in by_status.items() if k in (P.CHARGING, P.PAID, P.PAYMENT_FAILED))
    return {"by_status": by_status, "failed": failed, "charged": charged, "to_charge": to_charge}


async def member_customer(member_id: int) -> str:
    row = await Member.select(Member.stripe_customer_id).where(Member.id == member_id).first()
    return row["stripe_customer_id"] if row else ""


intents.apply_intents_with("pledge_id", apply_payment_intent, default=True)  # the webhook's pledge charges
