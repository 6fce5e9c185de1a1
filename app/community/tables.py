from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member
from app.campaigns.tables import Campaign
from app.ideas.tables import Idea


class Comment(Table, tablename="comment"):
    """A comment on an idea (a campaign lives on its idea's page), threaded one level."""

    idea = ForeignKey(Idea, index=True, null=False, on_delete=OnDelete.cascade)
    author = ForeignKey(Member, index=True, null=False)
    parent = Integer(null=True, default=None, index=True)  # a top-level comment's id, or None
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    edited_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    hidden_at = Timestamptz(null=True, default=None)
    hidden_reason = Text(default="")
    hidden_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)


class Follow(Table, tablename="follow"):
    """Follow an idea, a creator (member) or a category: unique (member, kind, target)."""

    member = ForeignKey(Member, index=True, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=12)  # idea | member | category
    target = Integer()
    created_at = Timestamptz(default=TimestamptzNow())


class CampaignUpdate(Table, tablename="campaign_update"):
    campaign = ForeignKey(Campaign, index=True, null=False, on_delete=OnDelete.cascade)
    author = ForeignKey(Member, null=False)
    title = Varchar(length=160)
    body = Text()
    visibility = Varchar(length=10, default="public")  # public | backers
    created_at = Timestamptz(default=TimestamptzNow())


class ViewerDay(Table, tablename="viewer_day"):
    """Who (a hashed member or visitor key) viewed what on which day: unique (kind, subject, day,
    viewer) in the migration, so a viewer counts once a day. Rows older than two days are pruned."""

    kind = Varchar(length=12)  # idea | product
    subject = Integer()
    day = Varchar(length=10)  # YYYY-MM-DD (UTC)
    viewer = Varchar(length=32)


class ViewCount(Table, tablename="view_count"):
    """Distinct viewers per subject and day (unique (kind, subject, day)); kept for analytics."""

    kind = Varchar(length=12)
    subject = Integer()
    day = Varchar(length=10, index=True)
    views = Integer(default=0)


class ViewedTogether(Table, tablename="viewed_together"):
    """How many viewers looked at both subjects (unique (kind, subject, other)), counted
    incrementally from each viewer's recently viewed list."""

    kind = Varchar(length=12)
    subject = Integer()
    other = Integer()
    viewers = Integer(default=0)
