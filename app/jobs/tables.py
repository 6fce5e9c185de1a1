from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Job(Table, tablename="job"):
    """A durable background job, written in the same transaction as the change that causes it."""

    kind = Varchar(length=60)
    payload = JSON(default="{}")
    status = Varchar(length=12, default="queued", index=True)  # queued, running, done, failed
    run_at = Timestamptz(default=TimestamptzNow(), index=True)
    attempts = Integer(default=0)
    max_attempts = Integer(default=8)
    locked_until = Timestamptz(null=True, default=None)
    unique_key = Varchar(length=200, null=True, default=None, unique=True)
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
