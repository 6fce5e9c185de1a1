from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class Notification(Table, tablename="notification"):
    """One in-site notification; `key` is unique so an event never notifies twice."""

    member = ForeignKey(Member, index=True, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=30)
    key = Varchar(length=160, unique=True)
    title = Varchar(length=200)
    body = Text(default="")
    link = Varchar(length=300, default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    read_at = Timestamptz(null=True, default=None)


class NotificationSetting(Table, tablename="notification_setting"):
    """How a member wants a kind of email: immediate, daily digest or off (unique per kind)."""

    member = ForeignKey(Member, index=True, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=30)
    mode = Varchar(length=10, default="immediate")
