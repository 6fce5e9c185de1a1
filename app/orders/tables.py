from piccolo.columns import JSON, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class Order(Table, tablename="shop_order"):
    """An order: from a paid pledge (a pre-order) or from the shop's checkout (DESIGN section 2)."""

    number = Varchar(length=20, unique=True)
    member = ForeignKey(Member, index=True, null=False)
    status = Varchar(length=20, default="placed", index=True)
    kind = Varchar(length=12, default="preorder")  # preorder | shop
    currency = Varchar(length=3, default="SEK")
    subtotal = Integer(default=0)
    shipping = Integer(default=0)
    discount = Integer(default=0)  # a points voucher
    total = Integer()  # what is charged: subtotal + shipping - discount
    refunded = Integer(default=0)  # sum of refunds that were not refused; never above `total`
    pledge_id = Integer(null=True, default=None, unique=True)  # one order per paid pledge
    campaign_id = Integer(null=True, default=None, index=True)  # pre-orders: the campaign
    payment_intent_id = Varchar(length=80, default="")
    # Shop checkout
    setup_intent_id = Varchar(length=80, default="")
    payment_method_id = Varchar(length=80, default="")
    voucher_code = Varchar(length=20, default="")
    shipping_method = Varchar(length=40, default="")
    ship_to = JSON(default="{}")  # a copy of the address at the time of the order
    reserved_until = Timestamptz(null=True, default=None)  # stock held until then while unpaid
    stock_released = Boolean(default=False)  # units given back (payment failed, abandoned, cancelled)
    failure_message = Text(default="")
    # Fulfilment
    carrier = Varchar(length=40, default="")
    tracking_number = Varchar(length=80, default="")
    wave = Integer(null=True, default=None)  # pre-orders: the campaign's shipping wave it left in
    paid_at = Timestamptz(null=True, default=None)
    shipped_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class OrderLine(Table, tablename="order_line"):
    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    title = Varchar(length=160)
    variant = Varchar(length=60, default="")
    product_id = Integer(null=True, default=None, index=True)
    variant_id = Integer(null=True, default=None)
    quantity = Integer()
    unit_price = Integer()
    total = Integer()
    # Made to the buyer's own specification (copied from the variant at checkout): exempt from
    # the right of withdrawal, and the withdrawal page says so.
    made_to_order = Boolean(default=False)
    vat_rate = Integer(default=25)  # percent included in `total`, copied from the product or campaign


class OrderEvent(Table, tablename="order_event"):
    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    from_status = Varchar(length=20)
    to_status = Varchar(length=20)
    message = Text(default="")
    actor = Integer(null=True, default=None)  # staff member id for staff moves
    created_at = Timestamptz(default=TimestamptzNow())


class OrderPayment(Table, tablename="order_payment"):
    """One row per (order, attempt), unique idempotency key, written before Stripe is called."""

    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    attempt = Integer()
    idempotency_key = Varchar(length=80, unique=True)
    amount = Integer()
    status = Varchar(length=24, default="started")  # started, paid, needs_authentication, declined, error
    payment_intent_id = Varchar(length=80, default="", index=True)
    client_secret = Varchar(length=200, default="")
    message = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)


class Refund(Table, tablename="order_refund"):
    """A staff refund. Inserted (and `Order.refunded` raised) under the order's lock before Stripe
    is called, so two refunds can never together exceed what was charged."""

    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    amount = Integer()
    reason = Text(default="")
    staff = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    idempotency_key = Varchar(length=80, unique=True)
    stripe_refund_id = Varchar(length=80, default="")
    status = Varchar(length=12, default="pending")  # pending | succeeded | failed
    created_at = Timestamptz(default=TimestamptzNow())


class Withdrawal(Table, tablename="order_withdrawal"):
    """A consumer's withdrawal from a contract (ångerrätt, 14 days; DESIGN section 2): from some
    or all lines of an order, or from a pledge before it is charged. Its receipt is emailed at
    once; a paid order's refund is reserved in the same transaction (Refund key
    `withdrawal-<id>`) and owed by `refund_due_by`."""

    reference = Varchar(length=20, unique=True)  # W-7F3A9C1E, on the receipt
    member = ForeignKey(Member, null=True, index=True, on_delete=OnDelete.set_null)
    email = Varchar(length=255)  # where the receipt went
    order = ForeignKey(Order, null=True, index=True, on_delete=OnDelete.cascade)
    pledge_id = Integer(null=True, default=None, unique=True)  # a pledge is withdrawn from once
    amount = Integer(default=0)  # what is owed back (minor units); 0 for a pledge never charged
    currency = Varchar(length=3, default="SEK")
    status = Varchar(length=20, default="received")  # received (an order) | cancelled (a pledge)
    refund_due_by = Timestamptz(null=True, default=None)
    refund_id = Integer(null=True, default=None)  # the Refund reserved for it (its state is the refund's)
    goods_returned_at = Timestamptz(null=True, default=None)  # staff noted the parcel back
    # The refund waits for the goods (WITHDRAWAL_REFUND_AFTER_RETURN): reserved and sent when
    # staff note the parcel back, still owed by `refund_due_by`.
    refund_waits = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class WithdrawalLine(Table, tablename="order_withdrawal_line"):
    """One withdrawn order line; `order_line` is unique, so a line is withdrawn from once however
    many requests arrive together. `restocked`: its units went back to stock (once)."""

    withdrawal = ForeignKey(Withdrawal, index=True, null=False, on_delete=OnDelete.cascade)
    order_line = Integer(unique=True)
    quantity = Integer()
    amount = Integer()
    restocked = Boolean(default=False)


class OrderVat(Table, tablename="order_vat"):
    """An order's VAT per rate, recorded once when it is paid (a pre-order: when its charge is
    collected), in the transaction of the move to paid: what receipts and the VAT report read.
    `gross` includes the VAT; the rows of an order add up to its total (unique (order, rate))."""

    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    rate = Integer()
    gross = Integer()
    vat = Integer()
