from piccolo.columns import Boolean, Float, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Member
from app.campaigns.tables import Campaign
from app.ideas.tables import Category, Idea


class Product(Table, tablename="product"):
    """A catalog product: published from a funded campaign or created by staff."""

    slug = Varchar(length=80, unique=True)
    name = Varchar(length=120)
    summary = Varchar(length=280, default="")
    description = Text(default="")
    details = Text(default="")  # materials, sizing, care: shown under "Details"
    category = ForeignKey(Category, index=True, null=True, on_delete=OnDelete.set_null)
    campaign = ForeignKey(Campaign, null=True, on_delete=OnDelete.set_null)  # where it came from
    idea = ForeignKey(Idea, null=True, on_delete=OnDelete.set_null)
    currency = Varchar(length=3, default="SEK")
    price = Integer()  # minor units; a variant may override it
    vat_rate = Integer(default=25)  # percent included in the price (moms: 25, 12 or 6)
    # Product safety (the EU's GPSR), shown on the product page; required to be in the shop.
    manufacturer = Text(default="")  # name, postal address and email of the manufacturer
    eu_responsible = Text(default="")  # the economic operator responsible in the EU
    safety_info = Text(default="")  # warnings, safety information and instructions
    status = Varchar(length=12, default="draft", index=True)  # draft | active | hidden | archived
    ships_in_days = Integer(default=3)  # delivery estimate: ships within N working days
    # Cached counters, moved in the same transaction as the rows they count.
    rating_count = Integer(default=0)
    rating_sum = Integer(default=0)
    rating_avg = Float(default=0.0, index=True)
    sold_count = Integer(default=0, index=True)  # units in paid orders: "popular"
    published_at = Timestamptz(null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ProductVariant(Table, tablename="product_variant"):
    product = ForeignKey(Product, index=True, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=60)
    sku = Varchar(length=40, default="")
    position = Integer(default=0)
    price = Integer(null=True, default=None)  # None: the product's price
    # Units free to sell. Checkout takes units with `stock = stock - n WHERE stock >= n`, a
    # failed or abandoned payment and a cancellation give them back; never negative.
    stock = Integer(default=0)
    sold = Integer(default=0)  # units in paid orders
    active = Boolean(default=True)
    # "Made to your specification" (a name or size the buyer chooses): no right of withdrawal.
    made_to_order = Boolean(default=False)


class ProductImage(Table, tablename="product_image"):
    product = ForeignKey(Product, index=True, null=False, on_delete=OnDelete.cascade)
    position = Integer(default=0)
    key = Varchar(length=80)
    thumb_key = Varchar(length=80)
    width = Integer()
    height = Integer()
    alt = Varchar(length=160, default="")


class ProductQuestion(Table, tablename="product_question"):
    product = ForeignKey(Product, index=True, null=False, on_delete=OnDelete.cascade)
    member = ForeignKey(Member, index=True, null=False)
    body = Text()
    answer = Text(default="")
    answered_by = ForeignKey(Member, null=True, on_delete=OnDelete.set_null)
    answered_at = Timestamptz(null=True, default=None)
    hidden = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class Review(Table, tablename="product_review"):
    """One per (product, member), unique in the migration; verified buyers only."""

    product = ForeignKey(Product, index=True, null=False, on_delete=OnDelete.cascade)
    member = ForeignKey(Member, index=True, null=False)
    rating = Integer()  # 1..5
    title = Varchar(length=120, default="")
    body = Text(default="")
    hidden = Boolean(default=False)
    hidden_reason = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class BoughtTogether(Table, tablename="bought_together"):
    """How many paid orders held both products (unique (product, other)), counted when an order is paid."""

    product = Integer(index=True)
    other = Integer()
    orders = Integer(default=0)


class Cart(Table, tablename="cart"):
    """A member's cart (member set) or a visitor's (owner = the signed anonymous id)."""

    owner = Varchar(length=80, unique=True)  # "m:<member id>" or the visitor's "a.<...>" id
    member = ForeignKey(Member, null=True, on_delete=OnDelete.cascade)
    updated_at = Timestamptz(default=TimestamptzNow())


class CartLine(Table, tablename="cart_line"):
    cart = ForeignKey(Cart, index=True, null=False, on_delete=OnDelete.cascade)
    variant = ForeignKey(ProductVariant, null=False, on_delete=OnDelete.cascade)
    quantity = Integer()
    added_at = Timestamptz(default=TimestamptzNow())


class WishlistItem(Table, tablename="wishlist_item"):
    """A heart on a product or an idea (unique per member and subject in the migration)."""

    member = ForeignKey(Member, index=True, null=False, on_delete=OnDelete.cascade)
    product = ForeignKey(Product, null=True, on_delete=OnDelete.cascade)
    idea = ForeignKey(Idea, null=True, on_delete=OnDelete.cascade)
    created_at = Timestamptz(default=TimestamptzNow())


class Collection(Table, tablename="collection"):
    slug = Varchar(length=80, unique=True)
    title = Varchar(length=120)
    body = Text(default="")
    cover_key = Varchar(length=80, default="")
    published = Boolean(default=False)
    featured = Boolean(default=False)
    home_position = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CollectionItem(Table, tablename="collection_item"):
    collection = ForeignKey(Collection, index=True, null=False, on_delete=OnDelete.cascade)
    position = Integer(default=0)
    product = ForeignKey(Product, null=True, on_delete=OnDelete.cascade)
    idea = ForeignKey(Idea, null=True, on_delete=OnDelete.cascade)
    note = Varchar(length=200, default="")


class Voucher(Table, tablename="voucher"):
    """Points turned into money off a shop order; spent exactly once (a conditional update)."""

    code = Varchar(length=20, unique=True)
    member = ForeignKey(Member, index=True, null=False)
    points = Integer()
    amount = Integer()  # minor units off
    currency = Varchar(length=3, default="SEK")
    status = Varchar(length=12, default="issued")  # issued | spent | cancelled
    order_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    spent_at = Timestamptz(null=True, default=None)


class PriceChange(Table, tablename="price_change"):
    """Each variant's price over time (its effective price: its own, else the product's), one row
    per change, written in the transaction that changes it: what "lowest price in the 30 days
    before the reduction" is computed from (app/shop/prices.py)."""

    variant = ForeignKey(ProductVariant, index=True, null=False, on_delete=OnDelete.cascade)
    price = Integer()
    changed_at = Timestamptz(default=TimestamptzNow(), index=True)
