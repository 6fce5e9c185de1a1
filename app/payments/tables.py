from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class StripeEvent(Table, tablename="stripe_event"):
    """Every webhook event id, applied once."""

    event_id = Varchar(length=80, unique=True)
    type = Varchar(length=80)
    received_at = Timestamptz(default=TimestamptzNow())
    outcome = Varchar(length=40, default="")
