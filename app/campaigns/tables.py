from piccolo.columns import JSON, Boolean, Date, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member
from app.ideas.tables import Idea


class Campaign(Table, tablename="campaign"):
    """An all-or-nothing pre-order campaign for a greenlit idea (DESIGN section 2)."""

    idea = ForeignKey(Idea, index=True, null=False, unique=True)
    status = Varchar(length=20, default="scheduled", index=True)
    currency = Varchar(length=3, default="SEK")
    vat_rate = Integer(default=25)  # percent included in the price (moms: 25, 12 or 6)
    price = Integer()  # minor units per unit
    early_bird_price = Integer(null=True, default=None)
    early_bird_units = Integer(default=0)  # how many units sell at the early-bird price
    early_bird_taken = Integer(default=0)  # held by pending and active pledges
    goal_units = Integer()
    # Counters of ACTIVE pledges, moved in the same transaction as the pledge.
    pledged_units = Integer(default=0)
    pledged_amount = Integer(default=0)
    backers = Integer(default=0)
    starts_at = Timestamptz()
    early_access_ends_at = Timestamptz()
    ends_at = Timestamptz(index=True)
    estimated_delivery = Date()
    goal_reached_at = Timestamptz(null=True, default=None)
    stretch_open = Integer(default=0)  # stretch goals not reached yet: a pledge looks for one only then
    delivery_posts = Integer(default=0)  # rows on its delivery timeline: the page reads them only then
    closed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)


class CampaignVariant(Table, tablename="campaign_variant"):
    campaign = ForeignKey(Campaign, index=True, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=60)
    position = Integer(default=0)
    limit_units = Integer(null=True, default=None)  # None: unlimited
    reserved = Integer(default=0)  # units held by pending and active pledges


class CampaignEvent(Table, tablename="campaign_event"):
    campaign = ForeignKey(Campaign, index=True, null=False, on_delete=OnDelete.cascade)
    actor = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    from_status = Varchar(length=20)
    to_status = Varchar(length=20)
    message = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Pledge(Table, tablename="pledge"):
    campaign = ForeignKey(Campaign, index=True, null=False)
    member = ForeignKey(Member, index=True, null=False)
    variant = ForeignKey(CampaignVariant, null=False)
    quantity = Integer()
    early_bird_units = Integer(default=0)
    amount = Integer()  # minor units, decided by the server
    status = Varchar(length=20, default="pending", index=True)
    setup_intent_id = Varchar(length=80, default="")
    payment_method_id = Varchar(length=80, default="")
    consent_version = Varchar(length=20, default="")
    consent_text = Text(default="")
    consent_at = Timestamptz(null=True, default=None)
    failure_message = Text(default="")
    failed_at = Timestamptz(null=True, default=None)
    retried = Boolean(default=False)
    reminders_sent = Integer(default=0)
    last_reminder_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class PledgeEvent(Table, tablename="pledge_event"):
    pledge = ForeignKey(Pledge, index=True, null=False, on_delete=OnDelete.cascade)
    from_status = Varchar(length=20)
    to_status = Varchar(length=20)
    message = Text(default="")
    data = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class BackedTogether(Table, tablename="backed_together"):
    """How many members backed both campaigns: updated incrementally when a pledge activates
    (unique (campaign, other) in the migration), read for "backers also backed"."""

    campaign = Integer(index=True)
    other = Integer()
    backers = Integer(default=0)


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


class StretchGoal(Table, tablename="stretch_goal"):
    """A goal past the campaign's own: at `threshold` units, pledged minor units or backers it
    unlocks (`reached_at`, set once by a conditional update, never cleared). Unique (campaign,
    metric, threshold) in the migration."""

    campaign = ForeignKey(Campaign, index=True, null=False, on_delete=OnDelete.cascade)
    metric = Varchar(length=10)  # units, amount, backers
    threshold = Integer()
    title = Varchar(length=120)
    description = Text(default="")
    reached_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)


class DeliveryUpdate(Table, tablename="delivery_update"):
    """One post on a campaign's public delivery timeline: a production milestone, a change of the
    estimated delivery (old and new date, with the reason) or a shipping wave (numbered 1, 2...
    per campaign, unique in the migration, with how many pre-orders it shipped). Never edited."""

    campaign = ForeignKey(Campaign, index=True, null=False, on_delete=OnDelete.cascade)
    kind = Varchar(length=10)  # milestone, date, wave
    title = Varchar(length=120)
    body = Text(default="")
    old_date = Date(null=True, default=None)
    new_date = Date(null=True, default=None)
    wave = Integer(null=True, default=None)
    shipped = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
