"""All-or-nothing settlement: the close happens once, every pledge is charged exactly once,
failures are fixable, failed campaigns charge nothing, webhooks apply once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter

import httpx
import pytest

from app.campaigns import service as campaigns
from app.campaigns import settlement
from app.campaigns.tables import Campaign, ChargeAttempt, Pledge
from app.db import utcnow
from app.jobs import service as jobs
from app.mail.tables import EmailMessage
from app.orders.tables import Order
from app.payments.gateway import PaymentOutcome, gateway, sign_webhook_payload
from app.payments.service import handle_event
from app.payments.tables import StripeEvent
from app.points.tables import PointsEntry
from tests.campaigns.helpers import CARD_AUTH_LATER, CARD_DECLINED_LATER, make_campaign, pledge_with_card
from tests.factories import make_member
from tests.support.audit import assert_audit_clean


async def payment_intents_by_pledge() -> Counter:
    """Every PaymentIntent localstripe holds, counted per pledge id in its metadata."""
    counts: Counter = Counter()
    params: dict = {"limit": 100}
    while True:
        page = (await gateway().client.v1.payment_intents.list_async(params=params)).to_dict()
        for intent in page["data"]:
            counts[int(intent["metadata"]["pledge_id"])] += 1
        if not page.get("has_more") or not page["data"]:
            return counts
        params["starting_after"] = page["data"][-1]["id"]


async def test_close_happens_once_and_funded_campaign_charges_each_pledge_once(stripe):
    campaign_id, campaign = await make_campaign(goal=3)
    variant = campaign["variants"][0]["id"]
    backers = [await make_member(f"Backer {n}") for n in range(4)]
    pledges = await asyncio.gather(*(pledge_with_card(b, campaign_id, variant) for b in backers))
    results = await asyncio.gather(*(campaigns.close_campaign(campaign_id, early=True) for _ in range(10)))
    assert [r for r in results if r is not None] == ["funded"]
    # two workers run the settlement at once
    await asyncio.gather(settlement.settle_campaign(campaign_id), settlement.settle_campaign(campaign_id))
    outcomes = await asyncio.gather(*(settlement.charge_pledge(p, 1) for p in pledges for _ in range(3)),
                                    return_exceptions=True)
    # A worker that finds the attempt leased by another backs off (its job retries later).
    unexpected = [repr(o) for o in outcomes if isinstance(o, Exception) and not isinstance(o, settlement.ChargeBusy)]
    assert unexpected == []
    await jobs.drain()
    assert await payment_intents_by_pledge() == Counter({p: 1 for p in pledges})
    statuses = {r["status"] for r in await Pledge.select(Pledge.status)}
    assert statuses == {"paid"}
    assert await Order.count() == 4
    assert await EmailMessage.count().where(EmailMessage.kind == "campaign_funded") == 4
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_paid") == 4
    points = await PointsEntry.count().where(PointsEntry.reason == "pledge_paid")
    assert points == 4
    await assert_audit_clean(stripe=True)


async def test_failed_campaign_creates_no_payment_intent(stripe):
    campaign_id, campaign = await make_campaign(goal=50)
    backers = [await make_member(f"Hopeful {n}") for n in range(3)]
    for backer in backers:
        await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    await Campaign.update({Campaign.ends_at: utcnow() - dt.timedelta(seconds=1)}).where(Campaign.id == campaign_id)
    await campaigns.advance_campaign(campaign_id)
    await jobs.drain()
    campaign = await campaigns.get_campaign(campaign_id)
    assert campaign["status"] == "failed"
    assert await payment_intents_by_pledge() == Counter()
    assert {r["status"] for r in await Pledge.select(Pledge.status)} == {"released"}
    assert await EmailMessage.count().where(EmailMessage.kind == "campaign_failed") == 3


async def test_declined_card_can_be_fixed_with_a_new_card_and_drops_after_seven_days(stripe):
    campaign_id, campaign = await make_campaign(goal=1)
    variant = campaign["variants"][0]["id"]
    fixer = await make_member("Fixer")
    dropper = await make_member("Dropper")
    fixer_pledge = await pledge_with_card(fixer, campaign_id, variant, number=CARD_DECLINED_LATER)
    dropper_pledge = await pledge_with_card(dropper, campaign_id, variant, number=CARD_DECLINED_LATER)
    await campaigns.close_campaign(campaign_id, early=True)
    await jobs.drain()
    rows = {r["id"]: r for r in await Pledge.select()}
    assert rows[fixer_pledge]["status"] == rows[dropper_pledge]["status"] == "payment_failed"
    email = await EmailMessage.select().where((EmailMessage.kind == "payment_failed") & (EmailMessage.recipient == fixer.email)).first()
    assert f"/pledges/{fixer_pledge}/fix" in email["text_body"]
    # the fixer enters a good card
    from app.payments import cards
    from tests.campaigns.helpers import save_card

    setup = await cards.start_card_setup(fixer, metadata={"pledge_id": str(fixer_pledge), "purpose": "fix"})
    await save_card(setup.client_secret)
    result = await settlement.pay_with_new_card(fixer, fixer_pledge, setup.id)
    assert result.outcome is PaymentOutcome.PAID
    assert (await Pledge.select(Pledge.status).where(Pledge.id == fixer_pledge).first())["status"] == "paid"
    # time passes for the other one: reminders, one automatic retry, then the drop
    failed_at = (await Pledge.select(Pledge.failed_at).where(Pledge.id == dropper_pledge).first())["failed_at"]
    failed_at = failed_at if failed_at.tzinfo else failed_at.replace(tzinfo=dt.UTC)
    counts = await settlement.sweep_payment_failures(now=failed_at + dt.timedelta(hours=49))
    assert counts == {"reminded": 1, "retried": 1, "dropped": 0}
    await jobs.drain()
    assert await ChargeAttempt.count().where(ChargeAttempt.pledge == dropper_pledge) == 2
    counts = await settlement.sweep_payment_failures(now=failed_at + dt.timedelta(hours=50))
    assert counts == {"reminded": 0, "retried": 0, "dropped": 0}
    counts = await settlement.sweep_payment_failures(now=failed_at + dt.timedelta(days=7, minutes=1))
    assert counts["dropped"] == 1
    assert (await Pledge.select(Pledge.status).where(Pledge.id == dropper_pledge).first())["status"] == "dropped"
    assert (await campaigns.get_campaign(campaign_id))["status"] == "charging"  # stays funded
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_dropped") == 1
    await assert_audit_clean()


async def test_authentication_required_then_completed(stripe):
    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Authenticator")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], number=CARD_AUTH_LATER)
    await campaigns.close_campaign(campaign_id, early=True)
    await jobs.drain()
    attempt = await settlement.last_attempt(pledge_id)
    assert attempt["status"] == "needs_authentication" and attempt["client_secret"]
    # the browser runs confirmCardPayment on the same PaymentIntent; localstripe's fake 3-D Secure:
    from app.settings import get_settings

    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{get_settings().stripe_api_base}/v1/payment_intents/{attempt['payment_intent_id']}/_authenticate",
            params={"success": "true"},
            data={"key": get_settings().stripe_publishable_key, "client_secret": attempt["client_secret"]},
        )
        assert response.status_code == 200, response.text
    result = await settlement.complete_authentication(backer, pledge_id)
    assert result.outcome is PaymentOutcome.PAID
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "paid"
    assert await Order.count().where(Order.pledge_id == pledge_id) == 1


def _event(event_id: str, intent: dict, kind: str = "payment_intent.succeeded") -> str:
    return json.dumps({"id": event_id, "type": kind, "data": {"object": intent}})


async def test_webhook_signature_timestamps_and_exactly_once(client, stripe):
    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Webhook Backer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], number=CARD_AUTH_LATER)
    await campaigns.close_campaign(campaign_id, early=True)
    await jobs.drain()
    attempt = await settlement.last_attempt(pledge_id)
    intent = {"id": attempt["payment_intent_id"], "object": "payment_intent", "status": "succeeded", "amount": 50000,
              "metadata": {"pledge_id": str(pledge_id), "attempt": "1"}}
    payload = _event("evt_auth_done", intent)
    secret = "whsec_test_crowdmade"
    bad = await client.post("/webhooks/stripe", content=payload, headers={"stripe-signature": "t=1,v1=deadbeef"})
    assert bad.status_code == 400
    for skew in (-400, 400):  # too old, and from the future
        stale = sign_webhook_payload(payload, secret, int(time.time()) + skew)
        response = await client.post("/webhooks/stripe", content=payload, headers={"stripe-signature": stale})
        assert response.status_code == 400
    signature = sign_webhook_payload(payload, secret)
    responses = await asyncio.gather(*(client.post("/webhooks/stripe", content=payload,
                                                   headers={"stripe-signature": signature}) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    outcomes = Counter(r.json()["outcome"] for r in responses)
    assert outcomes["paid"] == 1 and outcomes["duplicate"] == 9
    assert await StripeEvent.count() == 1
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "paid"
    assert await Order.count() == 1
    unknown = _event("evt_unknown", {"id": "x"}, kind="charge.dispute.created")
    response = await client.post("/webhooks/stripe", content=unknown,
                                 headers={"stripe-signature": sign_webhook_payload(unknown, secret)})
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


async def test_webhook_payment_failed_event_is_recorded(stripe):
    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Failing Backer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    await campaigns.close_campaign(campaign_id, early=True)
    await settlement.settle_campaign(campaign_id)
    # the attempt row exists (written before Stripe is called) but the answer never arrived
    await ChargeAttempt.insert(ChargeAttempt(pledge=pledge_id, attempt=1, idempotency_key=settlement.attempt_key(pledge_id, 1),
                                             amount=50000, status="charging"))
    intent = {"id": "pi_lost_answer", "status": "requires_payment_method", "amount": 50000,
              "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
              "metadata": {"pledge_id": str(pledge_id), "attempt": "1"}}
    assert await handle_event(json.loads(_event("evt_failed", intent, "payment_intent.payment_failed"))) == "declined"
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "payment_failed"


@pytest.mark.timeout_sensitive
@pytest.mark.serial
async def test_settlement_survives_a_killed_worker_without_double_charges(stripe, tmp_path):
    """120 charges; the worker process is SIGKILLed mid-way and restarted (tests/faults/
    test_worker_killed.py kills one in the middle of a single charge)."""
    total = 120
    import os
    import signal
    import subprocess
    import sys

    campaign_id, campaign = await make_campaign(goal=10)
    variant = campaign["variants"][0]["id"]
    backers = [await make_member(f"Killtest {n}") for n in range(total)]
    pledges = []
    for chunk in range(0, total, 20):
        pledges += await asyncio.gather(*(pledge_with_card(b, campaign_id, variant) for b in backers[chunk:chunk + 20]))
    await campaigns.close_campaign(campaign_id, early=True)
    env = {**os.environ, "JOB_LEASE_SECONDS": "3"}

    def start_worker():
        return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--concurrency", "8"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    worker = start_worker()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            paid = await ChargeAttempt.count().where(ChargeAttempt.status == "paid")
            if paid >= 30:
                break
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = await ChargeAttempt.count().where(ChargeAttempt.status == "paid")
        assert 30 <= killed_at < total, killed_at
        worker = start_worker()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if await Pledge.count().where((Pledge.campaign == campaign_id) & (Pledge.status == "paid")) == total:
                break
            await asyncio.sleep(0.25)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert await Pledge.count().where((Pledge.campaign == campaign_id) & (Pledge.status == "paid")) == total
    assert await payment_intents_by_pledge() == Counter({p: 1 for p in pledges})
    assert await Order.count() == total
    await assert_audit_clean(stripe=True)


async def test_production_moves_after_settlement(stripe):
    from app.campaigns.service import CampaignStatus
    from app.errors import Conflict

    campaign_id, campaign = await make_campaign(goal=1)
    staff = await make_member("Production Staff", staff=True)
    backer = await make_member("Produced Backer")
    await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    await campaigns.close_campaign(campaign_id, early=True)
    await settlement.settle_campaign(campaign_id)
    with pytest.raises(Conflict, match="still being charged"):
        await campaigns.mark_production(staff, campaign_id, CampaignStatus.IN_PRODUCTION)
    await jobs.drain()
    await campaigns.mark_production(staff, campaign_id, CampaignStatus.IN_PRODUCTION)
    with pytest.raises(campaigns.IllegalMove):
        await campaigns.mark_production(staff, campaign_id, CampaignStatus.IN_PRODUCTION)
    await campaigns.mark_production(staff, campaign_id, CampaignStatus.DELIVERED)
    assert (await campaigns.get_campaign(campaign_id))["status"] == "delivered"


async def test_a_new_card_cancels_the_payment_waiting_for_authentication(stripe):
    from app.payments import cards
    from app.settings import get_settings
    from tests.campaigns.helpers import save_card

    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Two Paths")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], number=CARD_AUTH_LATER)
    await campaigns.close_campaign(campaign_id, early=True)
    await jobs.drain()
    waiting = await settlement.last_attempt(pledge_id)
    assert waiting["status"] == "needs_authentication"
    setup = await cards.start_card_setup(backer, metadata={"pledge_id": str(pledge_id), "purpose": "fix"})
    await save_card(setup.client_secret)
    assert (await settlement.pay_with_new_card(backer, pledge_id, setup.id)).outcome is PaymentOutcome.PAID
    old = await gateway().client.v1.payment_intents.retrieve_async(waiting["payment_intent_id"])
    assert old.status == "canceled"  # the first payment can no longer be completed on top
    async with httpx.AsyncClient() as http:
        await http.post(f"{get_settings().stripe_api_base}/v1/payment_intents/{waiting['payment_intent_id']}/_authenticate",
                        params={"success": "true"},
                        data={"key": get_settings().stripe_publishable_key, "client_secret": waiting["client_secret"]})
    intents = (await gateway().client.v1.payment_intents.list_async(params={"limit": 100})).to_dict()["data"]
    succeeded = [i for i in intents if i["metadata"].get("pledge_id") == str(pledge_id) and i["status"] == "succeeded"]
    assert len(succeeded) == 1


async def test_a_charge_run_by_a_job_is_leased_until_the_job_lease_ends(stripe, monkeypatch):
    """The worker that claims a charge job after a crash does so once the job's lease has ended;
    the charge attempt's lease ends at that same moment, so that worker finds the attempt free
    (not still leased for the moment between the two claims, which cost a retry)."""
    from app.db import as_aware

    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Leased Backer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    assert await campaigns.close_campaign(campaign_id, early=True) == "funded"
    leased_until = []
    gateway_class = type(gateway())
    real_charge = gateway_class.charge

    async def charge(self, **kwargs):
        row = await ChargeAttempt.select(ChargeAttempt.claimed_until).where(ChargeAttempt.pledge == pledge_id).first()
        leased_until.append(as_aware(row["claimed_until"]))
        return await real_charge(self, **kwargs)

    monkeypatch.setattr(gateway_class, "charge", charge)
    charge_leases = []
    for _ in range(10):
        claimed = await jobs.claim_jobs(20)
        if not claimed:
            break
        for job in claimed:
            if job.kind == "charge_pledge":
                charge_leases.append(job.lease)
            await jobs.run_job(job)
    assert len(charge_leases) == 1 and leased_until == charge_leases
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "paid"
    assert jobs.current_lease() is None  # outside a job again
