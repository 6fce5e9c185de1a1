"""Notifications: in-site (a bell with an unread count) and by email, with per-kind settings,
a daily digest, and one-click unsubscribe links in every non-essential email."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from app import i18n
from app.accounts.language import member_locale
from app.accounts.tables import Member
from app.campaigns import live
from app.db import after_commit, utcnow
from app.errors import FormError, NotFound
from app.i18n import N_, gettext
from app.jobs.service import job_handler
from app.mail.service import queue_email
from app.notifications.tables import Notification, NotificationSetting
from app.settings import get_settings

KINDS: dict[str, str] = {
    "idea_status": N_("Status changes of ideas you wrote or follow"),
    "reply": N_("Replies and comments on your ideas"),
    "mention": N_("When someone mentions you"),
    "update": N_("Creator updates on campaigns you back or follow"),
    "campaign": N_("Campaigns you back: funded or not funded"),
    "level": N_("Level-ups and badges"),
    "order": N_("Order events"),
}  # labels: translate where shown
MODES = ("immediate", "digest", "off")
DIGEST_SUBJECT_ONE = N_("Your %(site)s day: 1 update")
DIGEST_SUBJECT_MANY = N_("Your %(site)s day: %(count)s updates")


def unsubscribe_token(member_id: int, kind: str) -> str:
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"unsubscribe:{member_id}:{kind}".encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_link(member_id: int, kind: str) -> str:
    token = unsubscribe_token(member_id, kind)
    return f"{get_settings().base_url}/unsubscribe?m={member_id}&k={kind}&t={token}"


async def mode_for(member_id: int, kind: str) -> str:
    row = await NotificationSetting.select(NotificationSetting.mode).where(
        (NotificationSetting.member == member_id) & (NotificationSetting.kind == kind)).first()
    return row["mode"] if row else "immediate"


async def notify(member_id: int, kind: str, *, key: str, title: str, body: str = "", link: str = "",
                 email: bool = True, title_args: dict[str, Any] | None = None) -> bool:
    """One notification per `key` (never twice), plus an email unless the member chose otherwise.

    With `title_args`, `title` is an `N_`-marked message with %(name)s placeholders, stored (and
    emailed) in the recipient's language; without, `title` is stored as given.
    """
    if title_args is not None:
        title = await in_language_of(member_id, title, title_args)
    rows = await Notification.insert(Notification(member=member_id, kind=kind, key=key[:160], title=title[:200],
                                                  body=body, link=link[:300])).on_conflict(
        target=Notification.key, action="DO NOTHING").returning(Notification.id)
    if not rows:
        return False

    after_commit(lambda: live.publish_member(member_id))  # the member's open pages refresh the bell
    if email and await mode_for(member_id, kind) == "immediate":
        member = await Member.select(Member.email, Member.display_name).where(
            (Member.id == member_id) & Member.deleted_at.is_null()).first()
        if member:
            await queue_email(
                kind=f"notify_{kind}", subject_ref=key[:120], to=member["email"], subject=title[:200],
                template="notification",
                context={"name": member["display_name"], "title": title, "body": body,
                         "link": f"{get_settings().base_url}{link}" if link.startswith("/") else link,
                         "unsubscribe": unsubscribe_link(member_id, kind), "kind_label": KINDS.get(kind, kind)},
            )
    return True


async def in_language_of(member_id: int, message: str, args: dict[str, Any]) -> str:
    """`message` translated into the member's stored language, its placeholders filled from `args`."""
    with i18n.use_locale(await member_locale(member_id)):
        return gettext(message, **args)


async def unread_count(member_id: int) -> int:
    return await Notification.count().where((Notification.member == member_id) & Notification.read_at.is_null())


async def recent(member_id: int, limit: int = 50) -> list[dict[str, Any]]:
    return await Notification.select().where(Notification.member == member_id).order_by(
        Notification.id, ascending=False).limit(limit)


async def mark_read(member_id: int, notification_id: int) -> dict[str, Any]:
    rows = await Notification.update({Notification.read_at: utcnow()}).where(
        (Notification.id == notification_id) & (Notification.member == member_id)).returning(Notification.link)
    if not rows:
        raise NotFound(gettext("Notification not found"))
    return rows[0]


async def mark_all_read(member_id: int) -> None:
    await Notification.update({Notification.read_at: utcnow()}).where(
        (Notification.member == member_id) & Notification.read_at.is_null())


async def settings_for(member_id: int) -> dict[str, str]:
    rows = await NotificationSetting.select().where(NotificationSetting.member == member_id)
    chosen = {r["kind"]: r["mode"] for r in rows}
    return {kind: chosen.get(kind, "immediate") for kind in KINDS}


async def set_mode(member_id: int, kind: str, mode: str) -> None:
    if kind not in KINDS or mode not in MODES:
        raise FormError({kind: gettext("Choose immediate, digest or off.")})
    updated = await NotificationSetting.update({NotificationSetting.mode: mode}).where(
        (NotificationSetting.member == member_id) & (NotificationSetting.kind == kind)).returning(NotificationSetting.id)
    if not updated:
        await NotificationSetting.insert(NotificationSetting(member=member_id, kind=kind, mode=mode)).on_conflict(
            target=(NotificationSetting.member, NotificationSetting.kind), action="DO NOTHING")


async def unsubscribe(member_id: int, kind: str, token: str) -> None:
    if kind not in KINDS or not hmac.compare_digest(token or "", unsubscribe_token(member_id, kind)):
        raise FormError({"token": gettext("This unsubscribe link is not valid.")})
    await set_mode(member_id, kind, "off")


async def send_digests(day: dt.date | None = None) -> int:
    """One email per member per day with that day's notifications of the kinds set to digest."""
    day = day or (utcnow() - dt.timedelta(days=1)).date()
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    digest = await NotificationSetting.select(NotificationSetting.member, NotificationSetting.kind).where(
        NotificationSetting.mode == "digest")
    kinds_by_member: dict[int, list[str]] = {}
    for row in digest:
        kinds_by_member.setdefault(row["member"], []).append(row["kind"])
    sent = 0
    for member_id, kinds in kinds_by_member.items():
        items = await Notification.select(Notification.title, Notification.link, Notification.kind).where(
            (Notification.member == member_id) & Notification.kind.is_in(kinds)
            & (Notification.created_at >= start) & (Notification.created_at < end)).order_by(Notification.id)
        if not items:
            continue
        member = await Member.select(Member.email, Member.display_name).where(Member.id == member_id).first()
        if member is None:
            continue
        sent += await queue_email(
            kind="digest", subject_ref=f"digest:{day.isoformat()}", to=member["email"],
            subject=DIGEST_SUBJECT_ONE if len(items) == 1 else DIGEST_SUBJECT_MANY, subject_args={"count": len(items)},
            template="digest",
            context={"name": member["display_name"], "items": items, "base": get_settings().base_url,
                     "settings_link": f"{get_settings().base_url}/notifications/settings", "day": day},
        )
    return sent


@job_handler("send_digests", every_seconds=3600)
async def send_digests_job(payload: dict[str, Any]) -> None:
    await send_digests()
