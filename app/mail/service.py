"""The email outbox: render, store once, deliver by a job (SMTP, or the console + dev mailbox)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage as MimeMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app import i18n
from app.db import utcnow
from app.jobs.service import enqueue, job_handler
from app.mail.tables import EmailMessage
from app.settings import get_settings
from app.web.templating import render_text

log = logging.getLogger("crowdmade.mail")


# The stored language of the member an address belongs to: registered by accounts (mail sits
# below every domain and knows no member).
_recipient_locale: Callable[[str], Awaitable[str | None]] | None = None


def provide_recipient_locale(lookup: Callable[[str], Awaitable[str | None]]) -> None:
    global _recipient_locale  # noqa: PLW0603 (one registration, at import)
    _recipient_locale = lookup


async def queue_email(
    *, kind: str, subject_ref: str, to: str, subject: str, template: str, context: dict[str, Any],
    subject_args: dict[str, Any] | None = None, locale: str | None = None,
) -> bool:
    """Store one email and schedule its delivery. At most once per (kind, subject_ref, recipient).

    The email is written in the recipient's language (`locale`, else the member with that address,
    else the current request's): pass `subject` as an `N_`-marked message with `subject_args` for
    its %(name)s placeholders, and it is translated with the body.
    Call it inside the transaction of the change that causes the email.
    """
    if to.lower().endswith(".invalid") or to.lower().endswith("@invalid"):
        return False  # a deleted member's pseudonymised address (RFC 2606 reserves .invalid): never sent
    settings = get_settings()
    locale = locale or (await _recipient_locale(to) if _recipient_locale else None) or i18n.get_locale()
    with i18n.use_locale(locale):
        if subject_args is not None:
            subject = i18n.gettext(subject, **{"site": settings.site_name, **subject_args})
        ctx = {"site_name": settings.site_name, "base_url": settings.base_url, "subject": subject, **context}
        text_body = render_text(f"emails/{template}.txt", ctx)
        html_body = render_text(f"emails/{template}.html", ctx)
    rows = await EmailMessage.insert(
        EmailMessage(
            kind=kind,
            subject_ref=subject_ref,
            recipient=to.lower(),
            subject=subject,
            text_body=text_body,
            html_body=html_body,
        )
    ).on_conflict(
        target=(EmailMessage.kind, EmailMessage.subject_ref, EmailMessage.recipient), action="DO NOTHING"
    ).returning(EmailMessage.id)
    if not rows:
        return False
    email_id = rows[0]["id"]
    await enqueue("deliver_email", {"id": email_id}, unique_key=f"deliver_email:{email_id}")
    return True


def build_mime(row: dict[str, Any]) -> MimeMessage:
    settings = get_settings()
    message = MimeMessage()
    message["From"] = settings.mail_from
    message["To"] = row["recipient"]
    message["Subject"] = row["subject"]
    message.set_content(row["text_body"])
    message.add_alternative(row["html_body"], subtype="html")
    return message


async def _send_smtp(message: MimeMessage, smtp_url: str) -> None:
    parts = urlsplit(smtp_url)
    await aiosmtplib.send(
        message,
        hostname=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=parts.scheme == "smtps",
        start_tls=None,
        timeout=30,
    )


@job_handler("deliver_email")
async def deliver_email(payload: dict[str, Any]) -> None:
    row = await EmailMessage.select().where(EmailMessage.id == payload["id"]).first()
    if row is None or row["status"] == "sent":
        return  # already delivered by an earlier run of this job
    settings = get_settings()
    if settings.smtp_url:
        await _send_smtp(build_mime(row), settings.smtp_url)
    else:
        # Development only (production requires SMTP_URL): bodies carry sign-in links, so the
        # console shows only who and what; the dev mailbox shows the rest on this machine.
        log.info("email to %s: %s (see /dev/mailbox)", row["recipient"], row["subject"])
    await EmailMessage.update({EmailMessage.status: "sent", EmailMessage.sent_at: utcnow()}).where(
        EmailMessage.id == row["id"]
    )
