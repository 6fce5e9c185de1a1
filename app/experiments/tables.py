from piccolo.columns import JSON, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Experiment(Table, tablename="experiment"):
    key = Varchar(length=60, unique=True)
    title = Varchar(length=120)
    description = Text(default="")
    variants = JSON(default="[]")  # [{"name": "control", "weight": 50}, {"name": "b", "weight": 50}]
    goal = Varchar(length=20)  # vote | pledge | add_to_cart | order_paid | signup
    status = Varchar(length=12, default="draft", index=True)  # draft | running | stopped
    winner = Varchar(length=40, default="")  # the variant shipped when stopped
    started_at = Timestamptz(null=True, default=None)
    stopped_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ExperimentExposure(Table, tablename="experiment_exposure"):
    """One row per (experiment, subject), unique in the migration: an exposure counts once and a
    conversion (converted_at, set by a conditional update) once."""

    experiment = ForeignKey(Experiment, index=True, null=False, on_delete=OnDelete.cascade)
    subject = Varchar(length=64)  # "m:<member id>" or "v:<visitor subject>"
    variant = Varchar(length=40)
    exposed_at = Timestamptz(default=TimestamptzNow())
    converted_at = Timestamptz(null=True, default=None)
