"""Notifications' part of a member's personal data (app/accounts/personal_data.py): their bell
and settings go with the account; other members' notifications that name them as the one who
acted are renamed to "Deleted member", or removed with the removed content."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import DELETED_NAME, Erasure, Part, names_actor, register
from app.db import raw
from app.notifications.tables import Notification, NotificationSetting


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    notifications = await Notification.select(Notification.kind, Notification.title, Notification.body,
                                              Notification.link, Notification.created_at, Notification.read_at).where(
        Notification.member == member_id).order_by(Notification.id)
    settings = await NotificationSetting.select(NotificationSetting.kind, NotificationSetting.mode).where(
        NotificationSetting.member == member_id)
    return {"notifications": notifications, "notification_settings": settings}


async def erase(erasure: Erasure) -> None:
    member_id, name = erasure.member_id, erasure.display_name
    for table in (Notification, NotificationSetting):
        await table.delete().where(table.member == member_id)
    prefix = f"{name} "
    notes = [n for n in await raw(
        "SELECT id, title FROM notification WHERE member <> {} AND substr(title, 1, {}) = {}",
        member_id, len(prefix), prefix) if names_actor(n["title"], name)]
    if erasure.remove_content:
        if notes:
            await Notification.delete().where(Notification.id.is_in([n["id"] for n in notes]))
        return
    for note in notes:
        await Notification.update({Notification.title: DELETED_NAME + note["title"][len(name):]}).where(
            Notification.id == note["id"])


register(Part("notifications", order=70, export=export, erase=erase))
