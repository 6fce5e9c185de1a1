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
    reports = Integer(default=0)


class CommentReport(Table, tablename="comment_report"):
    """One report per member per comment (a unique index in the migration)."""

    comment = ForeignKey(Comment, index=True, null=False, on_delete=OnDelete.cascade)
    reporter = ForeignKey(Member, null=False)
    reason = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    resolved_at = Timestamptz(null=True, default=None)


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
