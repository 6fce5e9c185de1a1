"""A job worker SIGKILLed in the middle of a job (issue 7): the job stays claimed until its lease
runs out, then another worker runs it, and its effect happens exactly once: one email in the
mailbox, one charge in Stripe. Real `crowdmade worker` processes on this run's database (SQLite
or PostgreSQL), with JOB_LEASE_SECONDS=2; the slow step is a mail server that takes its time
answering and a Stripe whose answer is held back until the worker is dead."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections import Counter

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from app.campaigns import service as campaigns
from app.campaigns.tables import ChargeAttempt, Pledge
from app.db import as_aware, write_transaction
from app.jobs.tables import Job
from app.mail import service as mail
from app.mail.tables import EmailMessage
from app.orders.tables import Order
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.campaigns.test_settlement import payment_intents_by_pledge
from tests.factories import make_member
from tests.support.audit import assert_audit_clean
from tests.support.processes import AppProcess, eventually, free_port, start_process, stop_processes

pytestmark = [pytest.mark.serial, pytest.mark.timeout_sensitive]

LEASE_SECONDS = 2


def _worker(name: str, **env: str) -> AppProcess:
    return start_process(name, ["-m", "app.cli", "worker", "--concurrency", "2"], {
        **os.environ, "JOB_LEASE_SECONDS": str(LEASE_SECONDS), "PYTHONUNBUFFERED": "1", **env})


def _kill(worker: AppProcess) -> None:
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)


class SlowInbox:
    """A mail server that answers the first recipient only when told to (the worker dies first)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str]]] = []
        self.first_rcpt = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook)
        if not self.first_rcpt.is_set():
            self.first_rcpt.set()
            await asyncio.to_thread(self.release.wait, 120)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


async def test_an_email_job_whose_worker_was_killed_is_delivered_once_after_the_lease(database):
    inbox = SlowInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    workers: list[AppProcess] = []
    try:
        async with write_transaction():
            assert await mail.queue_email(kind="worker_kill", subject_ref="worker-kill:1", to="killed.worker@example.com",
                                          subject="Exactly once", template="verify_email",
                                          context={"name": "Fan", "link": "http://x/verify?token=t", "hours": 72})
        smtp = {"SMTP_URL": f"smtp://127.0.0.1:{port}"}
        workers.append(_worker("worker-a", **smtp))
        assert await asyncio.to_thread(inbox.first_rcpt.wait, 60), workers[0].log_tail()
        claimed = await Job.select().where(Job.kind == "deliver_email").first()
        assert (claimed["status"], claimed["attempts"]) == ("running", 1)
        _kill(workers[0])  # in the middle of the SMTP conversation
        assert await EmailMessage.count().where(EmailMessage.status == "sent") == 0

        workers.append(_worker("worker-b", **smtp))

        async def done():
            job = await Job.select(Job.status).where(Job.kind == "deliver_email").first()
            return job["status"] == "done"

        await eventually(done, within=60, what="the second worker to deliver the email", processes=workers)
        email = await EmailMessage.select().where(EmailMessage.status == "sent").first()
        assert as_aware(email["sent_at"]) >= as_aware(claimed["locked_until"])  # not before the lease ran out
        job = await Job.select().where(Job.kind == "deliver_email").first()
        assert (job["status"], job["attempts"]) == ("done", 2)  # claimed again only after the lease
        assert [rcpt for _, rcpt in inbox.messages] == [["killed.worker@example.com"]]
        await asyncio.sleep(LEASE_SECONDS + 1)  # nothing else is due: no second delivery later
        assert len(inbox.messages) == 1
    finally:
        inbox.release.set()
        stop_processes(workers)
        controller.stop()


class HeldStripe:
    """A proxy in front of localstripe that forwards everything, but holds back Stripe's answer
    to the first PaymentIntent until released: the charge happened, its worker never hears it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.charged = asyncio.Event()
        self.release = asyncio.Event()
        self.held = False
        self.http = httpx.AsyncClient(base_url=upstream, timeout=30)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = await self.http.request(request.method, request.path_qs, content=body, headers=headers)
        if request.method == "POST" and request.path == "/v1/payment_intents" and not self.held:
            self.held = True
            self.charged.set()
            await self.release.wait()  # the worker is SIGKILLed meanwhile
        return web.Response(status=upstream.status_code, body=upstream.content,
                            content_type=upstream.headers.get("content-type", "application/json").split(";")[0])


async def test_a_charge_whose_worker_was_killed_is_found_after_the_lease_not_repeated(stripe):
    campaign_id, campaign = await make_campaign(goal=1)
    backer = await make_member("Killed Worker Backer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    proxy = HeldStripe(stripe)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    workers: list[AppProcess] = []
    try:
        assert await campaigns.close_campaign(campaign_id, early=True) == "funded"
        through_proxy = {"STRIPE_API_BASE": f"http://127.0.0.1:{port}"}
        workers.append(_worker("worker-a", **through_proxy))
        try:
            await asyncio.wait_for(proxy.charged.wait(), timeout=60)
        except TimeoutError:
            raise AssertionError("the first worker never charged\n" + workers[0].log_tail()) from None
        _kill(workers[0])  # Stripe has charged; the worker never learns it
        proxy.release.set()
        assert await payment_intents_by_pledge() == Counter({pledge_id: 1})
        attempt = await ChargeAttempt.select().where(ChargeAttempt.pledge == pledge_id).first()
        assert (attempt["status"], attempt["payment_intent_id"]) == ("charging", "")
        assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "charging"

        workers.append(_worker("worker-b", **through_proxy))

        async def paid():
            row = await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first()
            job = await Job.select(Job.status).where(Job.kind == "charge_pledge").first()
            return row["status"] == "paid" and job["status"] == "done"

        await eventually(paid, within=60, what="the second worker to settle the pledge", processes=workers)
        finished = await ChargeAttempt.select().where(ChargeAttempt.pledge == pledge_id)
        assert [(a["attempt"], a["status"]) for a in finished] == [(1, "paid")]
        assert as_aware(finished[0]["finished_at"]) >= as_aware(attempt["claimed_until"])  # after the lease
        job = await Job.select().where(Job.kind == "charge_pledge").first()
        # Claimed again once, after the lease: the attempt's lease ends with the job's (it once
        # ended a moment later, and a second worker arriving in that moment retried once more).
        assert (job["status"], job["attempts"]) == ("done", 2)
        log_b = workers[1].log_path.read_text(errors="replace")
        assert log_b.count("found an earlier PaymentIntent") == 1
    finally:
        proxy.release.set()
        stop_processes(workers)
        await runner.cleanup()
        await proxy.http.aclose()
    assert await payment_intents_by_pledge() == Counter({pledge_id: 1})
    assert await Order.count().where(Order.pledge_id == pledge_id) == 1
    await assert_audit_clean(stripe=True)
