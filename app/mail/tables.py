from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class EmailMessage(Table, tablename="email_message"):
    """The email outbox: one row per email, unique (kind, subject_ref, recipient)."""

    kind = Varchar(length=40)
    subject_ref = Varchar(length=120)  # what the email is about, e.g. "idea:12:approved"
    recipient = Varchar(length=254, index=True)
    subject = Varchar(length=200)
    text_body = Text()
    html_body = Text()
    status = Varchar(length=12, default="queued")  # queued, sent, failed
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    sent_at = Timestamptz(null=True, default=None)
