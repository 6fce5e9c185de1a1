from __future__ import annotations

import datetime as dt

import msgspec


class VariantIn(msgspec.Struct):
    name: str
    limit: int | None = None


class GreenlightIn(msgspec.Struct):
    price: str | int | float
    goal_units: int
    estimated_delivery: dt.date
    variants: list[VariantIn] = msgspec.field(default_factory=list)
    early_bird_price: str | int | float | None = None
    early_bird_units: int = 0
    duration_days: int | None = 30
    vat_rate: int | None = None  # percent included in the price; default: the site's first VAT rate
    ends_at: dt.datetime | None = None
    starts_at: dt.datetime | None = None


class VariantOut(msgspec.Struct):
    id: int
    name: str
    limit: int | None
    left: int | None


class StretchGoalOut(msgspec.Struct):
    id: int
    metric: str  # units, amount (minor units pledged) or backers
    threshold: int
    current: int
    title: str
    description: str
    reached: bool
    reached_at: dt.datetime | None


class StretchGoalIn(msgspec.Struct):
    metric: str
    threshold: str | int | float  # for "amount": major units, like the greenlight's price
    title: str
    description: str = ""


class DeliveryPostOut(msgspec.Struct):
    id: int
    kind: str  # milestone, date (estimated delivery moved: old_date -> new_date, body = the reason), wave
    heading: str  # as the campaign page says it, in the request's language
    title: str
    body: str
    old_date: dt.date | None
    new_date: dt.date | None
    wave: int | None
    shipped: int
    created_at: dt.datetime


class DeliveryOut(msgspec.Struct):
    campaign_id: int
    estimated_delivery: dt.date
    posts: list[DeliveryPostOut]  # newest first


class MilestoneIn(msgspec.Struct):
    title: str
    body: str = ""


class DeliveryDateIn(msgspec.Struct):
    new_date: str  # YYYY-MM-DD, after today
    reason: str  # 10 to 1000 characters, shown to backers


class CampaignOut(msgspec.Struct):
    id: int
    idea_id: int
    title: str
    status: str
    currency: str
    price: int
    early_bird_price: int | None
    early_bird_left: int
    goal_units: int
    pledged_units: int
    pledged_amount: int
    backers: int
    goal_reached: bool
    starts_at: dt.datetime
    early_access_ends_at: dt.datetime
    deadline: dt.datetime
    estimated_delivery: dt.date
    variants: list[VariantOut]
    url: str
    stretch_goals: list[StretchGoalOut] = msgspec.field(default_factory=list)


class PledgeIn(msgspec.Struct):
    """Only what the backer chooses; the amount is the server's to decide."""

    variant: int
    quantity: int = 1
    consent: bool = False


class PledgeStartOut(msgspec.Struct):
    pledge_id: int
    amount: int
    currency: str
    setup_intent_client_secret: str
    publishable_key: str


class PledgePatch(msgspec.Struct):
    variant: int | None = None
    quantity: int | None = None


class PledgeOut(msgspec.Struct):
    id: int
    campaign_id: int
    variant_id: int
    quantity: int
    amount: int
    status: str
    consent_version: str
    created_at: dt.datetime
