"""Durable jobs: atomic with the change, deduplicated, claimed once, retried with backoff."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

import app.handlers  # noqa: F401  (registers the periodic jobs)
from app.db import utcnow, write_transaction
from app.jobs import service as jobs
from app.jobs.tables import Job
from app.mail import service as mail
from app.mail.tables import EmailMessage

CALLS: list[dict] = []


@jobs.job_handler("test_record")
async def record(payload):
    CALLS.append(payload)


@jobs.job_handler("test_fail")
async def fail(payload):
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()


async def test_job_enqueued_in_a_rolled_back_transaction_does_not_exist():
    with pytest.raises(RuntimeError):
        async with write_transaction():
            await jobs.enqueue("test_record", {"n": 1})
            raise RuntimeError("the change failed")
    assert await Job.count() == 0


async def test_unique_key_deduplicates():
    assert await jobs.enqueue("test_record", {"n": 1}, unique_key="only-once")
    assert not await jobs.enqueue("test_record", {"n": 2}, unique_key="only-once")
    assert await Job.count() == 1


async def test_concurrent_workers_claim_each_job_once():
    for n in range(40):
        await jobs.enqueue("test_record", {"n": n})
    claims = await asyncio.gather(*(jobs.claim_jobs(7) for _ in range(10)))
    claimed = [job.id for batch in claims for job in batch]
    assert len(claimed) == len(set(claimed)) == 40


async def test_scheduled_job_waits_for_its_time():
    await jobs.enqueue("test_record", {"n": 1}, run_at=utcnow() + dt.timedelta(hours=1))
    assert await jobs.run_due_jobs() == 0
    await Job.update({Job.run_at: utcnow() - dt.timedelta(seconds=1)}).where(Job.kind == "test_record")
    assert await jobs.run_due_jobs() == 1
    assert CALLS == [{"n": 1}]


async def test_failures_retry_with_backoff_then_fail():
    await jobs.enqueue("test_fail", {}, max_attempts=2)
    assert await jobs.run_due_jobs() == 1
    job = await Job.select().first()
    assert job["status"] == "queued" and job["attempts"] == 1 and "boom" in job["last_error"]
    assert job["run_at"].timestamp() > utcnow().timestamp()  # backed off
    await Job.update({Job.run_at: utcnow() - dt.timedelta(seconds=1)}, force=True)
    await jobs.run_due_jobs()
    job = await Job.select().first()
    assert job["status"] == "failed" and job["attempts"] == 2


async def test_a_crashed_workers_job_is_claimed_again_after_its_lease():
    await jobs.enqueue("test_record", {"n": 1})
    [job] = await jobs.claim_jobs(5)
    assert await jobs.claim_jobs(5) == []  # leased
    await Job.update({Job.locked_until: utcnow() - dt.timedelta(seconds=1)}).where(Job.id == job.id)
    [again] = await jobs.claim_jobs(5)
    assert again.id == job.id and again.attempts == 2


async def test_email_outbox_sends_each_email_once():
    args = dict(kind="verify_email", subject_ref="email_token:1", to="Fan@Example.com", subject="Hi",
                template="verify_email", context={"name": "Fan", "link": "http://x/verify?token=t", "hours": 72})
    results = await asyncio.gather(*(mail.queue_email(**args) for _ in range(10)))
    assert results.count(True) == 1
    assert await EmailMessage.count() == 1
    email = await EmailMessage.select().first()
    assert email["recipient"] == "fan@example.com"
    assert "http://x/verify?token=t" in email["text_body"] and "Confirm my email" in email["html_body"]
    await jobs.drain()
    await mail.deliver_email({"id": email["id"]})  # a retried job does not send again
    email = await EmailMessage.select().first()
    assert email["status"] == "sent"


async def test_email_goes_over_smtp_when_configured(monkeypatch):
    from app.settings import get_settings

    sent = []

    async def fake_send(message, smtp_url):
        sent.append((message, smtp_url))

    monkeypatch.setattr(mail, "_send_smtp", fake_send)
    monkeypatch.setattr(get_settings(), "smtp_url", "smtp://user:pw@mail.example.com:587")
    await mail.queue_email(kind="password_reset", subject_ref="email_token:9", to="a@example.com", subject="Reset",
                           template="password_reset", context={"name": "A", "link": "http://x/r", "hours": 2})
    await jobs.drain()
    assert len(sent) == 1
    message = sent[0][0]
    assert message["To"] == "a@example.com"
    parts = [part.get_content_type() for part in message.walk()]
    assert "text/plain" in parts and "text/html" in parts


async def test_periodic_jobs_enqueue_once_per_interval():
    now = utcnow()
    await asyncio.gather(*(jobs.enqueue_periodic(now) for _ in range(5)))
    kinds = [row["kind"] for row in await Job.select(Job.kind)]
    assert sorted(kinds) == sorted(set(kinds)) and "sweep_voting_windows" in kinds


async def test_no_email_to_a_deleted_members_address():
    sent = await mail.queue_email(kind="campaign_launched", subject_ref="campaign:1", to="deleted-7@invalid",
                                  subject="Hi", template="verify_email",
                                  context={"name": "x", "link": "http://x/verify?token=t", "hours": 72})
    assert sent is False and await EmailMessage.count() == 0
