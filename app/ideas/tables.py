from piccolo.columns import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class Category(Table, tablename="category"):
    slug = Varchar(length=40, unique=True)
    name = Varchar(length=60)
    description = Text(default="")
    position = Integer(default=0)


class Idea(Table, tablename="idea"):
    author = ForeignKey(Member, index=True, null=False)
    title = Varchar(length=120)
    summary = Varchar(length=280, default="")
    description = Text(default="")
    category = ForeignKey(Category, index=True, null=True, on_delete=OnDelete.set_null)
    status = Varchar(length=20, default="draft", index=True)
    status_message = Text(default="")  # staff's reason or requested changes, shown to the author
    vote_count = Integer(default=0)
    # Stored "hot" rank: log10(votes) + seconds since epoch / 45000, refreshed on each vote.
    hot_score = Float(default=0.0, index=True)
    ready_for_review = Boolean(default=False, index=True)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
    submitted_at = Timestamptz(null=True, default=None)
    voting_starts_at = Timestamptz(null=True, default=None)
    voting_ends_at = Timestamptz(null=True, default=None)


class IdeaImage(Table, tablename="idea_image"):
    idea = ForeignKey(Idea, index=True, on_delete=OnDelete.cascade, null=False)
    position = Integer(default=0)
    key = Varchar(length=80)  # stored name of the re-encoded image
    thumb_key = Varchar(length=80)
    width = Integer()
    height = Integer()


class IdeaEvent(Table, tablename="idea_event"):
    """Append-only history of every status move (who, when, from, to, why)."""

    idea = ForeignKey(Idea, index=True, on_delete=OnDelete.cascade, null=False)
    actor = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    from_status = Varchar(length=20)
    to_status = Varchar(length=20)
    message = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Vote(Table, tablename="vote"):
    """One "I want this" per member per idea: a unique index (member, idea) in the migration."""

    member = ForeignKey(Member, index=True, null=False)
    idea = ForeignKey(Idea, index=True, on_delete=OnDelete.cascade, null=False)
    # Names this vote in the points ledger. Not the id: SQLite reuses the id of a deleted
    # last row, and a re-vote must not collide with the withdrawn vote's ledger entries.
    token = Varchar(length=32, default="")
    created_at = Timestamptz(default=TimestamptzNow())
