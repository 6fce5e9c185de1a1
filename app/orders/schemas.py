"""API shapes for orders (msgspec Structs)."""

from __future__ import annotations

import datetime as dt

import msgspec


class OrderLineOut(msgspec.Struct):
    id: int
    title: str
    variant: str
    quantity: int
    unit_price: int
    total: int
    product_id: int | None
    made_to_order: bool = False  # made to the buyer's specification: no right of withdrawal


class TrackingOut(msgspec.Struct):
    carrier: str
    carrier_name: str
    number: str
    url: str | None


class RefundOut(msgspec.Struct):
    id: int
    amount: int
    status: str  # pending | succeeded | failed
    reason: str
    stripe_refund_id: str
    created_at: dt.datetime


class OrderEventOut(msgspec.Struct):
    from_status: str
    to_status: str
    message: str
    created_at: dt.datetime


class TimelineStepOut(msgspec.Struct):
    status: str
    label: str
    state: str  # done | current | upcoming | stopped
    at: dt.datetime | None


class OrderOut(msgspec.Struct):
    number: str
    kind: str
    status: str
    status_label: str
    currency: str
    subtotal: int
    shipping: int
    discount: int
    total: int
    refunded: int
    created_at: dt.datetime
    paid_at: dt.datetime | None
    shipped_at: dt.datetime | None
    delivered_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    campaign_id: int | None
    estimated_delivery: dt.date | None
    lines: list[OrderLineOut]
    tracking: TrackingOut | None
    refunds: list[RefundOut]
    timeline: list[TimelineStepOut]
    history: list[OrderEventOut]
    ship_to: dict[str, str]
    url: str
    queue_place: int | None = None  # a waiting pre-order's place in its campaign's delivery queue
    queue_waiting: int | None = None  # how many of the campaign's pre-orders wait to ship
    wave: int | None = None  # the shipping wave it left in


class WaveIn(msgspec.Struct):
    carrier: str
    tracking_lines: str  # "ORDER-NUMBER TRACKING-NUMBER" per line: only these orders ship in the wave


class WaveOut(msgspec.Struct):
    wave: int | None  # None: nothing moved (someone else shipped them first)
    shipped: list[str]
    skipped: list[str]


class OrderSummaryOut(msgspec.Struct):
    number: str
    kind: str
    status: str
    status_label: str
    currency: str
    total: int
    refunded: int
    items: int
    summary: str
    created_at: dt.datetime
    url: str


class OrdersPage(msgspec.Struct):
    items: list[OrderSummaryOut]
    next_cursor: str | None


class OrderPatch(msgspec.Struct):
    """Staff: any of the three; `status` one of in_production, shipped, delivered, cancelled."""

    status: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    message: str = ""


class RefundIn(msgspec.Struct):
    amount: int  # minor units (öre, cents)
    reason: str = ""
    idempotency_key: str | None = None  # repeat a call with the same key: one refund


class WithdrawalIn(msgspec.Struct):
    """The order lines (`lines[].id` of the order) to withdraw from; leave out for every line
    that may still be withdrawn from."""

    lines: list[int] | None = None


class WithdrawalLineOut(msgspec.Struct):
    order_line: int
    quantity: int
    amount: int


class WithdrawalOut(msgspec.Struct):
    reference: str
    order_number: str | None
    pledge_id: int | None
    amount: int  # minor units owed back; 0 for a pledge never charged
    currency: str
    refund_status: str | None  # pending | succeeded | failed; None when nothing is owed
    refund_due_by: dt.datetime | None
    created_at: dt.datetime
    receipt_sent_to: str
    lines: list[WithdrawalLineOut]
