"""Orders for tests: a paid shop order charged through a real localstripe PaymentIntent, and
pre-orders through the real settlement path (pledge, close, charge)."""

from __future__ import annotations

import json

from app.accounts.tables import Member
from app.campaigns import service as campaigns
from app.campaigns import settlement
from app.db import write_transaction
from app.jobs import service as jobs
from app.orders.service import OrderStatus, move_order, new_order_number
from app.orders.tables import Order, OrderEvent, OrderLine, OrderPayment
from app.payments.gateway import PaymentOutcome, gateway
from app.points import service as points
from app.shop import vouchers
from app.shop.tables import Product, ProductVariant
from tests.campaigns.helpers import CARD_OK, make_campaign, pledge_with_card
from tests.shop.helpers import make_product

ADDRESS = {"name": "Anna Svensson", "line1": "Storgatan 1", "line2": "", "postal_code": "111 22",
           "city": "Stockholm", "country": "SE", "phone": "+46 70 123 45 67", "shipping_label": "Standard delivery"}


async def customer_with_card(member, number: str = CARD_OK) -> tuple[str, str]:
    """A Stripe customer with a saved card, as the checkout's SetupIntent leaves it."""
    client = gateway().client
    row = await Member.select(Member.stripe_customer_id, Member.email).where(Member.id == member.id).first()
    customer = row["stripe_customer_id"]
    if not customer:
        customer = await gateway().create_customer(email=row["email"], name=member.display_name, member_id=member.id)
        await Member.update({Member.stripe_customer_id: customer}).where(Member.id == member.id)
    method = await client.v1.payment_methods.create_async(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    await gateway().attach_payment_method(method.id, customer)
    return customer, method.id


async def make_shop_order(member, *, price: int = 25_000, quantity: int = 2, stock: int = 5, shipping: int = 4_900,
                          voucher: bool = False, pay: bool = True, product: dict | None = None,
                          address: dict | None = None) -> dict:
    """A shop order with one line; the units are taken from stock as the checkout does, and
    (pay=True) the card is charged in localstripe and the order moved placed -> paid."""
    product = product or await make_product(price=price, variants={"M": stock})
    variant_id = next(iter(product["variants"].values()))
    subtotal = price * quantity
    discount, code = 0, ""
    if voucher:
        await points.award(member.id, "adjustment", key=f"test-voucher-points:{member.id}:{new_order_number()}",
                           points=points.VOUCHER_POINTS)
        code = (await points.redeem_voucher(member.id))["code"]
        discount = points.VOUCHER_AMOUNT
    total = subtotal + shipping - discount
    number = new_order_number()
    async with write_transaction():
        rows = await Order.insert(Order(
            number=number, member=member.id, status="placed", kind="shop", currency="SEK", subtotal=subtotal,
            shipping=shipping, discount=discount, total=total, shipping_method="standard",
            ship_to=json.dumps(address or ADDRESS), voucher_code=code,
        )).returning(Order.id)
        order_id = rows[0]["id"]
        await OrderLine.insert(OrderLine(order=order_id, title=product["name"], variant="M", product_id=product["id"],
                                         variant_id=variant_id, quantity=quantity, unit_price=price,
                                         total=price * quantity))
        await OrderEvent.insert(OrderEvent(order=order_id, from_status="", to_status="placed", message="Checkout"))
        taken = await ProductVariant.update({ProductVariant.stock: ProductVariant.stock - quantity}).where(
            (ProductVariant.id == variant_id) & (ProductVariant.stock >= quantity)).returning(ProductVariant.id)
        assert taken, "not enough stock for the test order"
        if voucher:
            assert await vouchers.spend_voucher(member.id, code, order_id)
    payment_intent = ""
    if pay:
        customer, method = await customer_with_card(member)
        result = await gateway().charge(customer=customer, payment_method=method, amount=total, currency="SEK",
                                        idempotency_key=f"test-order-{order_id}", metadata={"order_id": str(order_id)},
                                        off_session=False)
        assert result.outcome is PaymentOutcome.PAID, result
        payment_intent = result.payment_intent_id
        async with write_transaction():
            await OrderPayment.insert(OrderPayment(order=order_id, attempt=1, idempotency_key=f"test-order-{order_id}",
                                                   amount=total, status="paid", payment_intent_id=payment_intent))
            await move_order(order_id, OrderStatus.PAID, expect=(OrderStatus.PLACED,), message="Payment received",
                             extra={Order.payment_intent_id: payment_intent})
            await ProductVariant.update({ProductVariant.sold: ProductVariant.sold + quantity}).where(
                ProductVariant.id == variant_id)
            await Product.update({Product.sold_count: Product.sold_count + quantity}).where(Product.id == product["id"])
    return {"id": order_id, "number": number, "total": total, "product": product, "variant_id": variant_id,
            "payment_intent": payment_intent, "voucher": code}


async def make_preorders(backers: list, *, goal: int | None = None, price: str = "500", staff=None) -> dict:
    """A funded campaign whose backers' pledges were charged: one paid pre-order each."""
    campaign_id, campaign = await make_campaign(goal=goal or len(backers), price=price, staff=staff)
    variant = campaign["variants"][0]["id"]
    for backer in backers:
        await pledge_with_card(backer, campaign_id, variant)
    assert await campaigns.close_campaign(campaign_id, early=True) == "funded"
    await settlement.settle_campaign(campaign_id)
    await jobs.drain()
    orders = await Order.select().where(Order.campaign_id == campaign_id).order_by(Order.id)
    assert len(orders) == len(backers) and {o["status"] for o in orders} == {"paid"}
    return {"campaign_id": campaign_id, "orders": orders}


async def refunds_in_stripe(payment_intent: str) -> list[dict]:
    """The refunds localstripe holds for one PaymentIntent, newest first."""
    page = await gateway().client.v1.refunds.list_async(params={"payment_intent": payment_intent, "limit": 100})
    return page.to_dict()["data"]
