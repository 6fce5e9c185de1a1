from piccolo.columns import ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member


class Order(Table, tablename="shop_order"):
    """An order: from a paid pledge (a pre-order) or, later, from the shop's checkout."""

    number = Varchar(length=20, unique=True)
    member = ForeignKey(Member, index=True, null=False)
    status = Varchar(length=20, default="placed", index=True)
    kind = Varchar(length=12, default="preorder")  # preorder | shop
    currency = Varchar(length=3, default="SEK")
    total = Integer()
    pledge_id = Integer(null=True, default=None, unique=True)  # one order per paid pledge
    payment_intent_id = Varchar(length=80, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class OrderLine(Table, tablename="order_line"):
    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    title = Varchar(length=160)
    variant = Varchar(length=60, default="")
    quantity = Integer()
    unit_price = Integer()
    total = Integer()


class OrderEvent(Table, tablename="order_event"):
    order = ForeignKey(Order, index=True, null=False, on_delete=OnDelete.cascade)
    from_status = Varchar(length=20)
    to_status = Varchar(length=20)
    message = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
