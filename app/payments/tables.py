from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.campaigns.tables import Pledge


class ChargeAttempt(Table, tablename="charge_attempt"):
    """One row per (pledge, attempt), unique: written BEFORE Stripe is called, so a crash, a
    retry or a second worker can never charge the same attempt twice."""

    pledge = ForeignKey(Pledge, index=True, null=False)
    attempt = Integer()
    idempotency_key = Varchar(length=80, unique=True)
    amount = Integer()
    status = Varchar(length=24, default="started")  # started, paid, needs_authentication, declined, error
    payment_intent_id = Varchar(length=80, default="", index=True)
    client_secret = Varchar(length=200, default="")
    message = Text(default="")
    claimed_until = Timestamptz(null=True, default=None)  # a worker's lease while it talks to Stripe
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)


class StripeEvent(Table, tablename="stripe_event"):
    """Every webhook event id, applied once."""

    event_id = Varchar(length=80, unique=True)
    type = Varchar(length=80)
    received_at = Timestamptz(default=TimestamptzNow())
    outcome = Varchar(length=40, default="")
