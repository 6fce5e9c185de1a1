from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class PointsEntry(Table, tablename="points_entry"):
    """The append-only points ledger. A reversal is a new, negative entry."""

    member = ForeignKey(Member, index=True, null=False)
    points = Integer()
    reason = Varchar(length=40)
    reference = Varchar(length=120, default="")
    idempotency_key = Varchar(length=160, unique=True)
    note = Varchar(length=280, default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class MemberBadge(Table, tablename="member_badge"):
    """A badge earned once: unique (member, badge) in the migration."""

    member = ForeignKey(Member, index=True, null=False)
    badge = Varchar(length=40)
    awarded_at = Timestamptz(default=TimestamptzNow())
