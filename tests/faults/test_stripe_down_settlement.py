"""Stripe unreachable while a funded campaign is charged (issue 7): the charge jobs fail, keep
their place and retry later; no pledge is marked paid or failed, nothing is half-written; when
Stripe is back the jobs drain and each pledge is charged exactly once. And the nastier case:
Stripe charged the card but the answer never arrived: the retry finds that PaymentIntent and
does not charge again."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from app.campaigns import service as campaigns
from app.campaigns.tables import ChargeAttempt, Pledge
from app.db import utcnow
from app.jobs import service as jobs
from app.jobs.tables import Job
from app.mail.tables import EmailMessage
from app.orders.tables import Order
from app.payments import gateway as gateway_module
from app.payments.gateway import Gateway, GatewayError
from app.settings import get_settings
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.campaigns.test_settlement import payment_intents_by_pledge
from tests.factories import make_member
from tests.support.audit import assert_audit_clean
from tests.support.processes import free_port


async def _funded_campaign(backers: int) -> tuple[int, list[int]]:
    campaign_id, campaign = await make_campaign(goal=2)
    variant = campaign["variants"][0]["id"]
    pledges = [await pledge_with_card(await make_member(f"Patient Backer {n}"), campaign_id, variant)
               for n in range(backers)]
    assert await campaigns.close_campaign(campaign_id, early=True) == "funded"
    return campaign_id, pledges


async def _retry_now() -> None:
    await Job.update({Job.run_at: utcnow() - dt.timedelta(seconds=1)}).where(Job.status == "queued")


async def _nothing_decided_yet(pledges: list[int]) -> None:
    assert {r["status"] for r in await Pledge.select(Pledge.status)} == {"charging"}
    attempts = await ChargeAttempt.select(ChargeAttempt.pledge, ChargeAttempt.status, ChargeAttempt.claimed_until)
    assert sorted(a["pledge"] for a in attempts) == sorted(pledges)
    assert {a["status"] for a in attempts} == {"charging"}  # not paid, not declined
    assert all(a["claimed_until"] is not None and a["claimed_until"] <= utcnow() for a in attempts)  # released
    assert await Order.count() == 0
    assert await EmailMessage.count().where(EmailMessage.kind.is_in(["pledge_paid", "payment_failed"])) == 0


async def test_charges_wait_while_stripe_is_unreachable_then_charge_each_pledge_once(stripe, monkeypatch):
    campaign_id, pledges = await _funded_campaign(3)
    monkeypatch.setattr(get_settings(), "stripe_api_base", f"http://127.0.0.1:{free_port()}")  # nothing listens
    gateway_module.gateway.cache_clear()
    try:
        assert await jobs.run_due_jobs() >= 1  # the settlement: pledges move to charging, one charge job each
        before = utcnow()
        await jobs.run_due_jobs()  # every charge fails to reach Stripe
        charges = await Job.select().where(Job.kind == "charge_pledge")
        assert len(charges) == 3
        for job in charges:
            assert (job["status"], job["attempts"]) == ("queued", 1)
            assert "connect" in job["last_error"].lower() or "network" in job["last_error"].lower(), job["last_error"]
            run_at = job["run_at"] if job["run_at"].tzinfo else job["run_at"].replace(tzinfo=dt.UTC)
            assert run_at > before  # retried later, with backoff
        await _nothing_decided_yet(pledges)
        await _retry_now()
        await jobs.run_due_jobs()  # still down: a second attempt, still nothing decided
        assert {j["attempts"] for j in await Job.select(Job.attempts).where(Job.kind == "charge_pledge")} == {2}
        await _nothing_decided_yet(pledges)
        await assert_audit_clean()
    finally:
        monkeypatch.undo()
        gateway_module.gateway.cache_clear()

    assert await payment_intents_by_pledge() == Counter()  # Stripe never saw a charge
    await _retry_now()
    await jobs.drain()
    assert {r["status"] for r in await Pledge.select(Pledge.status)} == {"paid"}
    assert await payment_intents_by_pledge() == Counter({p: 1 for p in pledges})
    assert await Order.count().where(Order.campaign_id == campaign_id) == 3
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_paid") == 3
    assert {j["status"] for j in await Job.select(Job.status).where(Job.kind == "charge_pledge")} == {"done"}
    await assert_audit_clean(stripe=True)


async def test_a_charge_whose_answer_was_lost_is_found_not_repeated(stripe, monkeypatch, caplog):
    campaign_id, pledges = await _funded_campaign(2)
    real_charge = Gateway.charge
    calls: Counter = Counter()

    async def charge_then_lose_the_answer(self, **kwargs):
        calls[kwargs["idempotency_key"]] += 1
        await real_charge(self, **kwargs)  # Stripe charges the card...
        raise GatewayError("Connection reset by peer")  # ...and the answer never arrives

    monkeypatch.setattr(Gateway, "charge", charge_then_lose_the_answer)
    caplog.set_level(logging.WARNING, logger="crowdmade.settlement")
    await jobs.run_due_jobs()  # the settlement
    await jobs.run_due_jobs()  # the charges: made in Stripe, answers lost
    assert await payment_intents_by_pledge() == Counter({p: 1 for p in pledges})
    await _nothing_decided_yet(pledges)

    await _retry_now()
    await jobs.drain()
    assert await payment_intents_by_pledge() == Counter({p: 1 for p in pledges})  # not charged again
    assert sorted(calls.values()) == [1, 1]
    assert {r["status"] for r in await Pledge.select(Pledge.status)} == {"paid"}
    assert await Order.count().where(Order.campaign_id == campaign_id) == 2
    assert caplog.text.count("found an earlier PaymentIntent") == 2
    await assert_audit_clean(stripe=True)
