"""Checkout: stock held atomically, card saved then charged on-session, paid exactly once.

The order of writes is what makes it exact (DESIGN section 3, "Catalog checkout"):
1. `place_order` validates, then in ONE transaction inserts the order (status placed), spends
   the voucher with a conditional update, and takes each variant's units with
   `UPDATE product_variant SET stock = stock - n WHERE id = ? AND stock >= n` (in variant id
   order, so two checkouts cannot deadlock). Any failure rolls the whole order back.
2. The browser saves the card (SetupIntent + Stripe.js confirmCardSetup).
3. `pay_order` commits a unique `OrderPayment` row per (order, attempt) BEFORE Stripe is
   called (idempotency key per order and attempt), then charges on-session.
4. `record_payment` applies Stripe's answer with conditional updates, so the API response,
   the browser's authentication and the webhook can all report it: the order is paid once.
5. An unpaid order past `reserved_until` is cancelled by a job that first asks Stripe whether
   a payment succeeded (and cancels one still waiting for authentication), then gives the
   units and the voucher back.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from app.accounts.addresses import ADDRESS_FIELDS, COUNTRIES, clean_address
from app.accounts.language import email_locale
from app.accounts.service import CurrentMember
from app.accounts.tables import Address
from app.db import as_aware, is_sqlite, raw, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound
from app.events import emit
from app.i18n import N_, gettext, use_locale
from app.jobs.service import enqueue, job_handler
from app.mail.service import queue_email
from app.orders import vat
from app.orders.events import OrderReleased
from app.orders.service import OrderStatus, move_order, new_order_number, release_stock, return_stock_with
from app.orders.tables import Order, OrderEvent, OrderLine, OrderPayment
from app.payments import cards, intents
from app.payments.gateway import (
    ChargeRefused,
    GatewayError,
    PaymentOutcome,
    PaymentResult,
    classify_payment,
    gateway,
    metadata_number,
)
from app.settings import get_settings
from app.shop import cart as carts
from app.shop import vouchers
from app.shop.events import ShopOrderPaid
from app.shop.tables import Product, ProductVariant

log = logging.getLogger("crowdmade.checkout")

# The default delivery options (settings.shipping_rates), for the catalogs; a label configured
# otherwise is shown as written.
SHIPPING_LABELS = (N_("Standard delivery (2-4 days)"), N_("Express delivery (next day)"), N_("Standard"), N_("Express"))
MAX_LINES = 50
IN_FLIGHT = dt.timedelta(minutes=2)  # a payment attempt younger than this may still be talking to Stripe


# ---- input ---------------------------------------------------------------------------------


@dataclass
class CheckoutInput:
    """What the member chooses. Prices, totals and statuses are the server's to decide."""

    lines: list[tuple[Any, Any]]  # (variant id, quantity)
    address: dict[str, Any] = field(default_factory=dict)
    address_id: Any = None  # a saved address instead of `address`
    save_address: bool = False
    shipping: str = ""
    voucher: str = ""


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    number: str
    status: str
    currency: str
    subtotal: int
    shipping: int
    discount: int
    total: int
    setup_intent_client_secret: str
    publishable_key: str
    reserved_until: dt.datetime | None


@dataclass(frozen=True)
class PayResult:
    """What the member (or API client) must do next: nothing (paid), authenticate, or try another card."""

    status: str  # paid | requires_action | declined
    number: str
    client_secret: str = ""  # requires_action: the PaymentIntent's, for Stripe.js confirmCardPayment
    message: str = ""
    setup_intent_client_secret: str = ""  # declined: a fresh SetupIntent for another card


def shipping_choices(subtotal: int) -> list[dict[str, Any]]:
    """The flat rates from settings; free over `free_shipping_over` when that is set. `label` is in
    the page's language, `stored_label` as configured (what the order keeps)."""
    settings = get_settings()
    free = bool(settings.free_shipping_over) and subtotal >= settings.free_shipping_over
    return [{"code": code, "label": gettext(label), "stored_label": label, "price": 0 if free else price,
             "list_price": price, "free": free}
            for code, label, price in settings.shipping_options()]


def shipping_for(code: str, subtotal: int) -> dict[str, Any]:
    for choice in shipping_choices(subtotal):
        if choice["code"] == code:
            return choice
    raise FormError({"shipping": gettext("Choose a delivery option.")})


def _line_key(variant_id: int) -> str:
    return f"line-{variant_id}"


async def _merge_lines(raw_lines: list[tuple[Any, Any]]) -> dict[int, int]:
    if not raw_lines:
        raise FormError({"cart": gettext("Your cart is empty.")})
    if len(raw_lines) > MAX_LINES:
        raise FormError({"cart": gettext("At most %(num)s different items per order.", num=MAX_LINES)})
    merged: dict[int, int] = {}
    for variant, quantity in raw_lines:
        variant_id = carts.parse_id(variant)
        try:
            merged[variant_id] = merged.get(variant_id, 0) + carts.parse_quantity(quantity)
        except FormError as error:
            raise FormError({_line_key(variant_id): error.errors["quantity"]}) from None
        if merged[variant_id] > carts.MAX_LINE_QUANTITY:
            raise FormError({_line_key(variant_id): gettext("At most %(num)s units of one item.",
                                                            num=carts.MAX_LINE_QUANTITY)})
    return merged


async def _priced_lines(quantities: dict[int, int]) -> list[dict[str, Any]]:
    rows = {r["id"]: r for r in await ProductVariant.select(
        ProductVariant.id, ProductVariant.name, ProductVariant.price, ProductVariant.active, ProductVariant.stock,
        ProductVariant.made_to_order, ProductVariant.product, ProductVariant.product.vat_rate, ProductVariant.product.name, ProductVariant.product.price,
        ProductVariant.product.status, ProductVariant.product.currency,
    ).where(ProductVariant.id.is_in(list(quantities)))}
    errors, lines = {}, []
    for variant_id, quantity in quantities.items():
        row = rows.get(variant_id)
        if row is None or not row["active"] or row["product.status"] != "active":
            errors[_line_key(variant_id)] = gettext("This item is no longer available: remove it from your cart.")
            continue
        if quantity > row["stock"]:
            errors[_line_key(variant_id)] = _left_message(row["stock"], row["product.name"])
        unit = row["price"] if row["price"] is not None else row["product.price"]
        lines.append({"variant_id": variant_id, "product_id": row["product"], "title": row["product.name"],
                      "variant": row["name"], "quantity": quantity, "unit_price": unit, "total": unit * quantity,
                      "currency": row["product.currency"], "made_to_order": bool(row["made_to_order"]),
                      "vat_rate": row["product.vat_rate"]})
    if errors:
        raise FormError(errors)
    return lines


def _left_message(stock: int, name: str) -> str:
    if stock <= 0:
        return gettext("None left of %(name)s: it sold out. Remove it to continue.", name=name)
    return gettext("Only %(stock)s left of %(name)s.", stock=stock, name=name)


async def _address_for(member: CurrentMember, data: CheckoutInput) -> tuple[dict[str, str], bool]:
    """(the address to ship to, whether it is a new one to save)."""
    if data.address_id not in (None, "", "new"):
        try:
            address_id = int(data.address_id)
        except (TypeError, ValueError):
            raise FormError({"address_id": gettext("Choose one of your addresses.")}) from None
        row = await Address.select(*[getattr(Address, name) for name in ADDRESS_FIELDS]).where(
            (Address.id == address_id) & (Address.member == member.id)).first()
        if row is None:
            raise FormError({"address_id": gettext("Choose one of your addresses.")})
        return {k: row[k] or "" for k in ADDRESS_FIELDS}, False
    return clean_address(data.address or {}), data.save_address


# ---- placing the order ---------------------------------------------------------------------


async def place_order(member: CurrentMember, data: CheckoutInput, *, now: dt.datetime | None = None) -> PlacedOrder:
    """Validate, create the order and take its units, spend the voucher; then a SetupIntent."""

    now = now or utcnow()
    errors: dict[str, str] = {}
    quantities: dict[int, int] = {}
    address: dict[str, str] = {}
    save = False
    for step in ("lines", "address"):
        try:
            if step == "lines":
                quantities = await _merge_lines(data.lines)
            else:
                address, save = await _address_for(member, data)
        except FormError as error:
            errors.update(error.errors)
    if not member.verified:
        errors["form"] = gettext("Confirm your email address before you buy (see the link in your inbox).")
    if errors:
        raise FormError(errors)
    lines = await _priced_lines(quantities)
    subtotal = sum(line["total"] for line in lines)
    shipping = shipping_for(data.shipping, subtotal)
    voucher = vouchers.voucher_code(data.voucher)
    if data.voucher and not re.fullmatch(r"[A-Z0-9-]{4,20}", voucher):
        raise FormError({"voucher": gettext("That doesn't look like a voucher code.")})
    currency = lines[0]["currency"] or get_settings().currency

    await _replace_open_checkouts(member.id)
    reserved_until = now + dt.timedelta(minutes=get_settings().checkout_hold_minutes)
    number = new_order_number()
    async with write_transaction():
        rows = await Order.insert(Order(
            number=number, member=member.id, status=OrderStatus.PLACED.value, kind="shop", currency=currency,
            subtotal=subtotal, shipping=shipping["price"], discount=0, total=subtotal + shipping["price"],
            shipping_method=shipping["code"], ship_to=json.dumps({**address, "shipping_label": shipping["stored_label"]}),
            reserved_until=reserved_until, voucher_code=voucher,
        )).returning(Order.id)
        order_id = rows[0]["id"]
        await OrderLine.insert(*[OrderLine(
            order=order_id, title=line["title"][:160], variant=line["variant"][:60], product_id=line["product_id"],
            variant_id=line["variant_id"], quantity=line["quantity"], unit_price=line["unit_price"], total=line["total"],
            made_to_order=line["made_to_order"], vat_rate=line["vat_rate"],
        ) for line in lines])
        await OrderEvent.insert(OrderEvent(order=order_id, from_status="", to_status=OrderStatus.PLACED.value,
                                           message=N_("Checkout"), actor=member.id))
        discount = 0
        if voucher:
            spent = await vouchers.spend_voucher(member.id, voucher, order_id)
            if spent is None:  # rolls back the order: nothing half-written
                raise FormError({"voucher": gettext("This voucher code is not valid for your account or was already used.")})
            discount = min(spent["amount"], subtotal)
            await Order.update({Order.discount: discount, Order.total: subtotal + shipping["price"] - discount}).where(
                Order.id == order_id)
        for line in sorted(lines, key=lambda item: item["variant_id"]):  # one lock order everywhere
            taken = await ProductVariant.update({ProductVariant.stock: ProductVariant.stock - line["quantity"]}).where(
                (ProductVariant.id == line["variant_id"]) & (ProductVariant.stock >= line["quantity"])
            ).returning(ProductVariant.stock)
            if not taken:
                left = await ProductVariant.select(ProductVariant.stock).where(ProductVariant.id == line["variant_id"]).first()
                raise FormError({_line_key(line["variant_id"]): _left_message(left["stock"] if left else 0, line["title"])})
        if save:
            has_default = await Address.exists().where((Address.member == member.id) & (Address.is_default.eq(True)))
            await Address.insert(Address(member=member.id, is_default=not has_default, **address))
        await enqueue("expire_checkout", {"order_id": order_id}, run_at=reserved_until + dt.timedelta(seconds=5),
                      unique_key=f"expire_checkout:{order_id}")
    total = subtotal + shipping["price"] - discount
    if total <= 0:  # a voucher paid for everything: nothing to charge
        await _mark_paid(order_id, "", message=N_("Paid with a voucher"))
        return PlacedOrder(order_id, number, OrderStatus.PAID.value, currency, subtotal, shipping["price"], discount, 0,
                           "", cards.publishable_key(), None)
    try:
        setup = await cards.start_card_setup(member, metadata={"order_id": str(order_id), "purpose": "checkout"})
    except Exception:
        await cancel_unpaid_order(order_id, message=N_("The card form could not be prepared."), check_stripe=False)
        raise
    await Order.update({Order.setup_intent_id: setup.id}).where(Order.id == order_id)
    return PlacedOrder(order_id, number, OrderStatus.PLACED.value, currency, subtotal, shipping["price"], discount, total,
                       setup.client_secret, cards.publishable_key(), reserved_until)


async def _replace_open_checkouts(member_id: int) -> None:
    """A new checkout replaces the member's earlier unpaid ones, so one member cannot hold
    stock with many abandoned orders (a payment in progress is never interrupted)."""
    for row in await Order.select(Order.id).where(
            (Order.member == member_id) & (Order.kind == "shop") & (Order.status == OrderStatus.PLACED.value)):
        await cancel_unpaid_order(row["id"], message=N_("Replaced by a newer checkout"), reissue_voucher=True)


# ---- reading orders ------------------------------------------------------------------------


async def owned_order(member: CurrentMember, number: str) -> dict[str, Any]:
    """The member's own shop order; any other order is 'not found' (never reveal it exists)."""
    row = await Order.select().where((Order.number == (number or "")[:20]) & (Order.kind == "shop")).first()
    if row is None or row["member"] != member.id:
        raise NotFound(gettext("Order not found"))
    row["ship_to"] = _json(row["ship_to"])
    row["lines"] = await OrderLine.select().where(OrderLine.order == row["id"]).order_by(OrderLine.id)
    return row


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def last_payment(order_id: int) -> dict[str, Any] | None:
    return await OrderPayment.select().where(OrderPayment.order == order_id).order_by(
        OrderPayment.attempt, ascending=False).first()


def attempt_key(order_id: int, attempt: int) -> str:
    return f"order-{order_id}-attempt-{attempt}"


# ---- paying --------------------------------------------------------------------------------


def _pay_result(number: str, result: PaymentResult) -> PayResult:
    if result.outcome is PaymentOutcome.PAID:
        return PayResult("paid", number)
    if result.outcome is PaymentOutcome.NEEDS_AUTHENTICATION:
        return PayResult("requires_action", number, client_secret=result.client_secret or "",
                         message=gettext("Your bank asks you to confirm this payment."))
    if result.outcome is PaymentOutcome.PROCESSING:
        return PayResult("processing", number, message=gettext("Your payment is being processed."))
    return PayResult("declined", number, message=result.message or gettext("Your card was declined. Try another card."))


async def pay_order(member: CurrentMember, number: str, *, setup_intent_id: str | None = None,
                    now: dt.datetime | None = None) -> PayResult:
    """Charge the saved card on-session. Without a new card, a payment waiting for
    authentication is checked with Stripe instead (what the page does after confirmCardPayment)."""

    now = now or utcnow()
    order = await owned_order(member, number)
    if order["status"] != OrderStatus.PLACED:
        return _settled(order)
    last = await last_payment(order["id"])
    if last and last["status"] == PaymentOutcome.NEEDS_AUTHENTICATION.value and not setup_intent_id:
        return await complete_authentication(member, number)
    if as_aware(order["reserved_until"]) and as_aware(order["reserved_until"]) <= now:
        await cancel_unpaid_order(order["id"], message=N_("Not paid in time; the items were released"))
        order = await owned_order(member, number)
        if order["status"] != OrderStatus.PLACED:
            return _settled(order)
    intent_id = setup_intent_id or order["setup_intent_id"]
    payment_method = await cards.verified_payment_method(member, intent_id, expected={"order_id": str(order["id"])})
    # Earlier payments of this order first: one that succeeded meanwhile pays the order; one
    # still waiting for authentication is cancelled, so it can never succeed on top of this one.
    try:
        settled = await _settle_earlier_payments(order["id"])
    except Exception:
        raise Conflict(gettext("We could not reach the payment provider; nothing was charged. Please try again.")) \
            from None
    if settled:
        return PayResult("paid", number)
    try:  # before the attempt row: a failure here must not leave a "started" attempt behind
        customer = await cards.ensure_customer(member)
    except GatewayError:
        raise Conflict(gettext("We could not reach the payment provider; nothing was charged. Please try again.")) \
            from None
    async with write_transaction():
        query = Order.select(Order.status, Order.total, Order.currency)
        if not is_sqlite():
            query = query.lock_rows()
        current = await query.where(Order.id == order["id"]).first()
        if current["status"] != OrderStatus.PLACED:
            return _settled({**order, **current})
        busy = await OrderPayment.exists().where(
            (OrderPayment.order == order["id"]) & (OrderPayment.status == "started")
            & (OrderPayment.created_at > now - IN_FLIGHT))
        if busy:
            raise Conflict(gettext("A payment for this order is already in progress. Wait a moment and reload the page."))
        previous = await last_payment(order["id"])
        attempt = (previous["attempt"] + 1) if previous else 1
        key = attempt_key(order["id"], attempt)
        await OrderPayment.insert(OrderPayment(order=order["id"], attempt=attempt, idempotency_key=key,
                                               amount=current["total"], status="started"))
        await Order.update({Order.payment_method_id: payment_method, Order.updated_at: now}).where(
            Order.id == order["id"])
    try:
        result = await gateway().charge(
            customer=customer, payment_method=payment_method, amount=current["total"], currency=current["currency"],
            idempotency_key=key, off_session=False,
            metadata={"order_id": str(order["id"]), "order_number": number, "attempt": str(attempt)})
    except ChargeRefused as error:  # Stripe answered: nothing was charged
        log.warning("order %s attempt %s: charge refused: %s", number, attempt, error)
        await OrderPayment.update({OrderPayment.status: "error", OrderPayment.message: str(error)[:500],
                                   OrderPayment.finished_at: utcnow()}).where(
            (OrderPayment.idempotency_key == key) & (OrderPayment.status == "started"))
        raise Conflict(gettext("The payment provider refused the payment; nothing was charged. Please try again.")) \
            from None
    except GatewayError as error:
        # Not reached: the charge may have happened. The attempt stays "started"; the next try
        # (or the expiry job) asks Stripe for it by its metadata before charging again.
        log.warning("order %s attempt %s: outcome unknown: %s", number, attempt, error)
        raise Conflict(gettext("We could not confirm your payment with the payment provider. Wait a minute and reload "
                               "this page: you are never charged twice.")) from None
    await record_payment(order["id"], attempt, result)
    outcome = await _answer(order["id"], _pay_result(number, result))
    if outcome.status == "declined":
        outcome = await _with_new_card_form(member, order["id"], outcome)
    return outcome


async def _answer(order_id: int, outcome: PayResult) -> PayResult:
    """Stripe's "paid" is the order's only if the order is paid: one cancelled meanwhile (its
    money is being refunded) answers as cancelled."""
    if outcome.status != "paid":
        return outcome
    order = await Order.select(Order.status, Order.number).where(Order.id == order_id).first()
    return outcome if order["status"] != OrderStatus.CANCELLED else _settled(order)


def _settled(order: dict[str, Any]) -> PayResult:
    if order["status"] == OrderStatus.CANCELLED:
        raise Conflict(gettext("This order was cancelled because it was not paid in time; nothing was charged. "
                               "Your items are back in stock: check out again."))
    return PayResult("paid", order["number"])


async def _with_new_card_form(member: CurrentMember, order_id: int, outcome: PayResult) -> PayResult:
    """After a decline, a fresh SetupIntent so the member can try another card at once."""
    try:
        setup = await new_card_setup(member, order_id)
    except GatewayError:
        return outcome
    return PayResult(outcome.status, outcome.number, message=outcome.message, setup_intent_client_secret=setup)


async def new_card_setup(member: CurrentMember, order_id: int) -> str:
    """A new SetupIntent for this order (another card); returns its client secret."""

    setup = await cards.start_card_setup(member, metadata={"order_id": str(order_id), "purpose": "checkout"})
    await Order.update({Order.setup_intent_id: setup.id}).where(
        (Order.id == order_id) & (Order.status == OrderStatus.PLACED.value))
    return setup.client_secret


async def new_card_for(member: CurrentMember, number: str) -> str:
    order = await owned_order(member, number)
    if order["status"] != OrderStatus.PLACED:
        _settled(order)
        raise Conflict(gettext("This order is already paid."))
    return await new_card_setup(member, order["id"])


async def complete_authentication(member: CurrentMember, number: str) -> PayResult:
    """After Stripe.js confirmCardPayment: ask Stripe for the PaymentIntent's state and record it."""
    order = await owned_order(member, number)
    if order["status"] != OrderStatus.PLACED:
        return _settled(order)
    last = await last_payment(order["id"])
    if last is None or not last["payment_intent_id"]:
        raise Conflict(gettext("There is no payment waiting for authentication."))
    try:
        result = await gateway().retrieve_payment(last["payment_intent_id"])
    except Exception:
        raise Conflict(gettext("We could not reach the payment provider. Please try again.")) from None
    await record_payment(order["id"], last["attempt"], result)
    outcome = await _answer(order["id"], _pay_result(number, result))
    if outcome.status == "declined":
        outcome = await _with_new_card_form(member, order["id"], outcome)
    return outcome


async def _settle_earlier_payments(order_id: int) -> bool:
    """Ask Stripe about attempts that may still change: record a success (True), cancel a
    PaymentIntent still waiting for authentication."""
    rows = await OrderPayment.select().where(
        (OrderPayment.order == order_id) & OrderPayment.status.is_in(["started", "needs_authentication"]))
    for row in rows:
        result = None
        if row["payment_intent_id"]:
            result = await gateway().retrieve_payment(row["payment_intent_id"])
        elif row["status"] == "started":
            customer = await _customer_of(order_id)
            found = await gateway().find_payments(
                customer=customer, metadata={"order_id": str(order_id), "attempt": str(row["attempt"])}) if customer else []
            result = found[0] if found else None
            if result is None:
                if as_aware(row["created_at"]) > utcnow() - IN_FLIGHT:
                    continue  # may still be talking to Stripe: leave it to its request
                await OrderPayment.update({OrderPayment.status: "error", OrderPayment.finished_at: utcnow(),
                                           OrderPayment.message: "No answer from the payment provider"}).where(
                    (OrderPayment.id == row["id"]) & (OrderPayment.status == "started"))
                continue
        if result.outcome is PaymentOutcome.PAID:
            await record_payment(order_id, row["attempt"], result)
            return True
        if result.outcome is PaymentOutcome.NEEDS_AUTHENTICATION and result.payment_intent_id:
            await gateway().cancel_payment(result.payment_intent_id)
            result = await gateway().retrieve_payment(result.payment_intent_id)
            if result.outcome is PaymentOutcome.PAID:  # it succeeded just before the cancel
                await record_payment(order_id, row["attempt"], result)
                return True
            await record_payment(order_id, row["attempt"], PaymentResult(
                PaymentOutcome.DECLINED, result.payment_intent_id, status=result.status,
                message=N_("Authentication was not completed.")))  # stored; translated where shown
        elif result.outcome is not PaymentOutcome.PROCESSING:
            await record_payment(order_id, row["attempt"], result)
    return False


async def _customer_of(order_id: int) -> str:
    row = await Order.select(Order.member.stripe_customer_id).where(Order.id == order_id).first()
    return (row or {}).get("member.stripe_customer_id") or ""


async def record_payment(order_id: int, attempt: int, result: PaymentResult) -> str:
    """Apply Stripe's answer for one attempt, once (API response, authentication or webhook)."""
    if result.outcome is PaymentOutcome.PROCESSING:
        return "processing"
    key = attempt_key(order_id, attempt)
    async with write_transaction():
        updated = await OrderPayment.update({
            OrderPayment.status: result.outcome.value,
            OrderPayment.payment_intent_id: result.payment_intent_id or "",
            OrderPayment.client_secret: result.client_secret or "",
            OrderPayment.message: result.message[:1000],
            OrderPayment.finished_at: utcnow(),
        }).where((OrderPayment.idempotency_key == key) & (OrderPayment.status != "paid")).returning(OrderPayment.id)
        if not updated:
            return "duplicate"
        if result.outcome is PaymentOutcome.PAID:
            if not await _mark_paid(order_id, result.payment_intent_id or "") and result.payment_intent_id:
                order = await Order.select(Order.payment_intent_id).where(Order.id == order_id).first()
                if order and order["payment_intent_id"] != result.payment_intent_id:
                    # Cancelled meanwhile, or paid by another attempt: this money goes back.
                    await enqueue("refund_stray_order_payment",
                                  {"payment_intent": result.payment_intent_id, "amount": result.amount,
                                   "order_id": order_id}, unique_key=f"refund_stray:{result.payment_intent_id}")
        elif result.outcome is PaymentOutcome.DECLINED:
            await Order.update({Order.failure_message: result.message[:1000], Order.updated_at: utcnow()}).where(
                (Order.id == order_id) & (Order.status == OrderStatus.PLACED.value))
    return result.outcome.value


async def _mark_paid(order_id: int, payment_intent_id: str, *, message: str = N_("Payment received")) -> bool:
    """placed -> paid exactly once, with everything a paid order sets off. False if it did not move."""
    async with write_transaction():
        moved = await move_order(order_id, OrderStatus.PAID, expect=(OrderStatus.PLACED,), message=message,
                                 extra={Order.payment_intent_id: payment_intent_id, Order.failure_message: "",
                                        Order.reserved_until: None})
        if moved is None:
            return False
        order = await Order.select(Order.id, Order.number, Order.member, Order.total, Order.currency,
                                   Order.member.email, Order.member.display_name, Order.ship_to, Order.subtotal,
                                   Order.shipping, Order.discount, Order.shipping_method).where(Order.id == order_id).first()
        lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.id)
        for line in sorted(lines, key=lambda item: item["variant_id"] or 0):
            if line["variant_id"]:
                await ProductVariant.update({ProductVariant.sold: ProductVariant.sold + line["quantity"]}).where(
                    ProductVariant.id == line["variant_id"])
        units: dict[int, int] = {}
        for line in lines:
            if line["product_id"]:
                units[line["product_id"]] = units.get(line["product_id"], 0) + line["quantity"]
        for product_id in sorted(units):
            await Product.update({Product.sold_count: Product.sold_count + units[product_id]}).where(
                Product.id == product_id)
        await _count_bought_together(sorted(units))
        await carts.remove_bought(order["member"], {line["variant_id"]: line["quantity"] for line in lines
                                                    if line["variant_id"]})
        await _confirm(order, lines)
        await emit(ShopOrderPaid(order_id, order["member"], order["number"]))
    return True


async def _count_bought_together(product_ids: list[int]) -> None:
    """Incremental co-occurrence: this paid order held each pair of its products once.
    Rows are upserted in (product, other) order, so two orders cannot deadlock."""
    pairs = sorted((a, b) for a in product_ids for b in product_ids if a != b)
    for a, b in pairs:
        await raw("INSERT INTO bought_together (product, other, orders) VALUES ({}, {}, 1) "
                  "ON CONFLICT (product, other) DO UPDATE SET orders = bought_together.orders + 1", a, b)


async def _confirm(order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    settings = get_settings()
    number = order["number"]
    ship_to = _json(order["ship_to"])
    code = ship_to.get("country", "")
    with use_locale(await email_locale(order["member.email"])):  # the buyer's language (also from a webhook)
        country = gettext(COUNTRIES[code]) if code in COUNTRIES else code
    await queue_email(
        kind="order_confirmation", subject_ref=f"order:{order['id']}", to=order["member.email"],
        subject=N_("Order %(number)s confirmed: thank you!"), subject_args={"number": number},
        template="orders/confirmation",
        context={"name": order["member.display_name"], "number": number, "lines": lines,
                 "subtotal": order["subtotal"], "shipping": order["shipping"], "discount": order["discount"],
                 "total": order["total"], "currency": order["currency"], "ship_to": ship_to,
                 "country": country, "vat": await vat.recorded(order["id"]),
                 "order_link": f"{settings.base_url}/orders/{number}",
                 "receipt_link": f"{settings.base_url}/orders/{number}/receipt"},
    )


async def apply_payment_intent(payment_intent: dict[str, Any]) -> str:
    """A webhook's PaymentIntent whose metadata names an order: record it on its attempt."""
    result = classify_payment(payment_intent)
    row = None
    if payment_intent.get("id"):
        row = await OrderPayment.select(OrderPayment.order, OrderPayment.attempt).where(
            OrderPayment.payment_intent_id == payment_intent["id"]).first()
    if row is None:
        meta = payment_intent.get("metadata") or {}
        order_id, attempt = metadata_number(meta, "order_id"), metadata_number(meta, "attempt")
        if order_id is None or attempt is None:
            return "not ours"
        row = {"order": order_id, "attempt": attempt}
        if not await OrderPayment.exists().where(OrderPayment.idempotency_key == attempt_key(row["order"], row["attempt"])):
            return "unknown attempt"
    return await record_payment(row["order"], row["attempt"], result)


# ---- abandoned and failed checkouts ------------------------------------------------------


async def cancel_unpaid_order(order_id: int, *, message: str = N_("Not paid in time; the items were released"),
                              check_stripe: bool = True, reissue_voucher: bool = False) -> str:
    """Cancel a placed order and give back its units and voucher, once. Never cancels an order
    whose payment succeeded: Stripe is asked first, and a payment waiting for authentication is
    cancelled there. The voucher's points go back, or with `reissue_voucher` (a checkout
    replaced by a newer one) the same code becomes usable again.
    Returns cancelled | paid | busy | unchanged."""
    if check_stripe:
        try:
            if await _settle_earlier_payments(order_id):
                return "paid"
        except Exception as error:  # Stripe cannot be asked now: try again on the next run
            log.warning("order %s: cannot check its payments before cancelling: %s", order_id, error)
            return "busy"
        if await OrderPayment.exists().where((OrderPayment.order == order_id) & (OrderPayment.status == "started")):
            return "busy"
    async with write_transaction():
        if await move_order(order_id, OrderStatus.CANCELLED, expect=(OrderStatus.PLACED,), message=message) is None:
            return "unchanged"
        await release_stock(order_id)
        if reissue_voucher:
            await vouchers.reissue_voucher(order_id)
        else:
            await emit(OrderReleased(order_id))
    return "cancelled"


async def expire_checkouts(now: dt.datetime | None = None) -> int:
    """Cancel every placed shop order past its hold time (safe to run twice, and in parallel)."""
    now = now or utcnow()
    due = await Order.select(Order.id).where(
        (Order.kind == "shop") & (Order.status == OrderStatus.PLACED.value) & (Order.reserved_until < now))
    cancelled = 0
    for row in due:
        if await cancel_unpaid_order(row["id"]) == "cancelled":
            cancelled += 1
    return cancelled


async def expire_checkout(order_id: int, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    row = await Order.select(Order.status, Order.reserved_until).where(Order.id == order_id).first()
    if row is None or row["status"] != OrderStatus.PLACED or (as_aware(row["reserved_until"]) or now) > now:
        return "unchanged"
    return await cancel_unpaid_order(order_id)


async def refund_stray_payment(payment_intent_id: str, amount: int, order_id: int) -> None:
    log.error("order %s: refunding stray payment %s (%s)", order_id, payment_intent_id, amount)
    await gateway().refund(payment_intent_id=payment_intent_id, amount=amount,
                           idempotency_key=f"refund-stray-{payment_intent_id}")


@job_handler("expire_checkout")
async def expire_checkout_job(payload: dict[str, Any]) -> None:
    await expire_checkout(int(payload["order_id"]))


@job_handler("expire_checkouts", every_seconds=60)
async def expire_checkouts_job(payload: dict[str, Any]) -> None:
    """Safety net behind the per-order jobs."""
    await expire_checkouts()


@job_handler("refund_stray_order_payment")
async def refund_stray_order_payment_job(payload: dict[str, Any]) -> None:
    await refund_stray_payment(payload["payment_intent"], int(payload["amount"]), int(payload["order_id"]))


# ---- for pages -----------------------------------------------------------------------------


def totals(subtotal: int, shipping_code: str, discount: int | None) -> dict[str, Any]:
    choices = shipping_choices(subtotal)
    chosen = next((c for c in choices if c["code"] == shipping_code), choices[0] if choices else None)
    shipping = chosen["price"] if chosen else 0
    off = min(discount or 0, subtotal)
    return {"subtotal": subtotal, "shipping": shipping, "shipping_code": chosen["code"] if chosen else "",
            "discount": off, "total": max(0, subtotal + shipping - off), "choices": choices}


intents.apply_intents_with("order_id", apply_payment_intent)  # the webhook's shop payments


async def give_back_units(lines: list[dict[str, Any]], was_sold: bool) -> None:
    """A released shop order's units go back to their variants (and leave the sold counters if
    they had been sold), in variant id order: one lock order everywhere."""
    for line in sorted(lines, key=lambda line: line["variant_id"]):
        values: dict[Any, Any] = {ProductVariant.stock: ProductVariant.stock + line["quantity"]}
        if was_sold:
            values[ProductVariant.sold] = ProductVariant.sold - line["quantity"]
        await ProductVariant.update(values).where(ProductVariant.id == line["variant_id"])
        if was_sold and line["product_id"]:
            await Product.update({Product.sold_count: Product.sold_count - line["quantity"]}).where(
                Product.id == line["product_id"])


return_stock_with("shop", give_back_units)  # orders.release_stock, for shop orders
