from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class Notice(Table, tablename="moderation_notice"):
    """A report: anyone (a member or a visitor) says that an idea, comment, review or collection is
    illegal or against the rules, and why. Unique (kind, target, notifier_key) in the migration, so
    a notifier reports a piece of content once however often they press the button."""

    kind = Varchar(length=12)  # idea | comment | review | collection
    target = Integer()
    category = Varchar(length=12)  # illegal | rules
    reason = Text()
    reporter = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    name = Varchar(length=120, default="")  # a visitor's name, when given
    email = Varchar(length=255, default="")  # where the decision is sent (a member's own address is used)
    notifier_key = Varchar(length=64)  # m:<member id>, or v:<hash of the visitor's address and email>
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    decision = Integer(null=True, default=None, index=True)  # the decision that settled it


class Decision(Table, tablename="moderation_decision"):
    """One staff decision about a piece of content, append-only but for its one appeal: what was
    decided (remove, keep, restore), on which ground, the statement of reasons sent to the author,
    and the author's appeal with its answer (each written once, by a conditional update)."""

    kind = Varchar(length=12)
    target = Integer()
    author = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)  # whose content (none: staff's own)
    title = Varchar(length=200, default="")  # what the content was called when decided, for the trail
    action = Varchar(length=12)  # remove | keep | restore
    ground = Varchar(length=12, default="")  # illegal | rules (for a removal)
    statement = Text(default="")
    staff = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    appeal_text = Text(default="")
    appealed_at = Timestamptz(null=True, default=None)
    appeal_outcome = Varchar(length=12, default="")  # upheld | reversed
    appeal_answer = Text(default="")
    answered_at = Timestamptz(null=True, default=None)
    answered_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
