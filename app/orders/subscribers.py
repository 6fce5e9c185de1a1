"""What orders does when something happens elsewhere (app/events.py): a pledge whose charge
succeeded becomes a pre-order's order, inline, in the transaction of the pledge's move to paid."""

from __future__ import annotations

from app.campaigns.events import PledgePaid
from app.campaigns.tables import Pledge
from app.db import utcnow
from app.events import subscribe
from app.orders.service import new_order_number
from app.orders.tables import Order, OrderEvent, OrderLine
from app.orders.vat import record_vat


@subscribe(PledgePaid)
async def write_preorder(event: PledgePaid) -> None:
    """The paid pledge's order: one per pledge (a unique key), so a second run writes nothing."""
    pledge = await Pledge.select(Pledge.member, Pledge.quantity, Pledge.amount, Pledge.campaign, Pledge.variant.name,
                                 Pledge.campaign.idea.title, Pledge.campaign.currency, Pledge.campaign.vat_rate).where(
        Pledge.id == event.pledge_id).first()
    rows = await Order.insert(Order(
        number=new_order_number(), member=pledge["member"], status="paid", kind="preorder",
        currency=pledge["campaign.currency"], subtotal=pledge["amount"], total=pledge["amount"],
        pledge_id=event.pledge_id, campaign_id=pledge["campaign"], payment_intent_id=event.payment_intent_id,
        paid_at=utcnow(),
    )).on_conflict(target=Order.pledge_id, action="DO NOTHING").returning(Order.id)
    if not rows:
        return
    order_id = rows[0]["id"]
    await OrderLine.insert(OrderLine(order=order_id, title=pledge["campaign.idea.title"], variant=pledge["variant.name"],
                                     quantity=pledge["quantity"], unit_price=pledge["amount"] // pledge["quantity"],
                                     total=pledge["amount"], vat_rate=pledge["campaign.vat_rate"]))
    await record_vat(order_id)  # the pre-order's VAT, recorded as its charge is collected
    await OrderEvent.insert(OrderEvent(order=order_id, from_status="", to_status="placed", message="Pre-order"),
                            OrderEvent(order=order_id, from_status="placed", to_status="paid", message="Pledge charged"))
