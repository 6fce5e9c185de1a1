"""SMTP down for a while (issue 7): emails stay queued while the server is unreachable, are
delivered once it is back, and never twice (aiosmtpd plays the mail server)."""

from __future__ import annotations

import datetime as dt

from aiosmtpd.controller import Controller

import app.handlers  # noqa: F401  (the delivery job)
from app.db import utcnow
from app.jobs import service as jobs
from app.jobs.tables import Job
from app.mail import service as mail
from app.mail.tables import EmailMessage
from app.settings import get_settings
from tests.support.processes import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


async def _retry_now() -> None:
    await Job.update({Job.run_at: utcnow() - dt.timedelta(seconds=1)}).where(Job.status == "queued")


async def test_emails_wait_for_smtp_and_go_exactly_once(monkeypatch):
    port = free_port()
    monkeypatch.setattr(get_settings(), "smtp_url", f"smtp://127.0.0.1:{port}")
    for n in range(3):
        assert await mail.queue_email(kind="verify_email", subject_ref=f"email_token:{n}", to=f"fan{n}@example.com",
                                      subject="Confirm your email", template="verify_email",
                                      context={"name": "Fan", "link": "http://x/verify?token=t", "hours": 72})
    # The server is down: every delivery fails, is kept and retried later (nothing lost, nothing sent).
    assert await jobs.run_due_jobs() == 3
    assert await EmailMessage.count().where(EmailMessage.status == "queued") == 3
    queued = await Job.select(Job.status, Job.attempts, Job.last_error).where(Job.kind == "deliver_email")
    assert all(j["status"] == "queued" and j["attempts"] == 1 and j["last_error"] for j in queued)
    await _retry_now()
    await jobs.run_due_jobs()  # still down: a second failed attempt, still queued
    assert await EmailMessage.count().where(EmailMessage.status == "queued") == 3

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await _retry_now()
        await jobs.drain()
        assert await EmailMessage.count().where(EmailMessage.status == "sent") == 3
        assert sorted(rcpt[0] for _, rcpt, _ in inbox.messages) == [f"fan{n}@example.com" for n in range(3)]
        # a retried job or a second worker after delivery sends nothing more
        for email in await EmailMessage.select(EmailMessage.id):
            await mail.deliver_email({"id": email["id"]})
        await _retry_now()
        await jobs.drain()
        assert len(inbox.messages) == 3
    finally:
        controller.stop()
