"""Cart and one-page checkout pages; POST /api/v1/checkout and /api/v1/orders/{number}/pay.

The checkout page works in two ways:
- with JavaScript (static/js/checkout.js): the form is posted with `Accept: application/json`,
  the order is placed (units held), Stripe.js saves the card (confirmCardSetup), then
  /checkout/<number>/pay charges it; `requires_action` runs confirmCardPayment and
  /checkout/<number>/complete records it. Errors land next to their fields.
- without JavaScript: the same POST validates and shows errors on the page; a valid order
  continues on /checkout/<number>/pay, where the card form needs Stripe.js (as Stripe requires).
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from app.accounts import addresses
from app.db import as_aware
from app.errors import Conflict, FormError, NotFound
from app.i18n import N_, gettext
from app.payments import cards
from app.payments.gateway import GatewayError
from app.settings import get_settings
from app.shop import cart as carts
from app.shop import checkout, vouchers
from app.shop.checkout import CheckoutInput, PayResult
from app.web import identity
from app.web.guards import requires_member
from app.web.responses import current_member, is_htmx, redirect, render, safe_next

PAYMENTS_DOWN = N_("Payments are unavailable right now; nothing was charged. Please try again in a minute.")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _owner(request: Request) -> str | None:
    member = current_member(request)
    return carts.owner_for(member.id if member else None, request.scope.get("state", {}).get("session_id"))


def _visitor_cookie(request: Request) -> list[Cookie]:
    if current_member(request):
        return []
    return [Cookie(key=carts.CART_COOKIE, value="1", path="/", httponly=True, samesite="lax", max_age=30 * 86400)]


def _message(error: FormError | Conflict | NotFound) -> str:
    if isinstance(error, FormError):
        return " ".join(error.errors.values()) or error.message
    return error.message


# ---- cart ----------------------------------------------------------------------------------


async def _cart_context(request: Request, **extra) -> dict:
    summary = await carts.cart_summary(_owner(request))
    estimate = checkout.totals(summary["subtotal"], "", 0)
    free_over = get_settings().free_shipping_over
    return {"cart": summary, "estimate": estimate, "free_over": free_over, "cart_count": summary["count"],
            "line_errors": {}, **extra}


@get("/cart")
async def cart_page(request: Request) -> Response:
    return render(request, "shop/cart.html", await _cart_context(request), fragment="shop/_cart.html")


@post("/cart/lines")
async def cart_add(request: Request) -> Response:
    form = await _form(request)
    owner = _owner(request)
    member = current_member(request)
    back = safe_next(form.get("next"), "/cart")
    if owner is None:  # no session yet (cookies off): nothing to keep the cart in
        return redirect(back, flash=("error", gettext("Your browser did not keep our cookie; enable cookies to use the cart.")))
    try:
        count = await carts.add_to_cart(owner, form.get("variant_id"), form.get("quantity", "1"),
                                        member_id=member.id if member else None,
                                        ab_subject=None if member else identity.visitor_subject(request))
    except FormError as error:
        if is_htmx(request):
            count = await carts.cart_count(owner)
            return render(request, "shop/_cart_badge.html", {"cart_count": count, "cart_message": _message(error),
                                                             "cart_message_kind": "error"}, status_code=200)
        return redirect(back, flash=("error", _message(error)))
    if is_htmx(request):
        response = render(request, "shop/_cart_badge.html",
                          {"cart_count": count, "cart_message": gettext("Added to your cart."),
                           "cart_message_kind": "success"})
        response.cookies.extend(_visitor_cookie(request))
        return response
    response = redirect("/cart", flash=("success", gettext("Added to your cart.")))
    response.cookies.extend(_visitor_cookie(request))
    return response


async def _cart_answer(request: Request, *, line_errors: dict | None = None, error: str = "") -> Response:
    if is_htmx(request):
        ctx = await _cart_context(request, line_errors=line_errors or {}, oob_badge=True)
        return render(request, "shop/_cart.html", ctx)
    if error:
        return redirect("/cart", flash=("error", error))
    return redirect("/cart")


@post("/cart/lines/{line_id:int}")
async def cart_update(request: Request, line_id: int) -> Response:
    form = await _form(request)
    owner = _owner(request)
    try:
        if owner is None:
            raise NotFound(gettext("That item is not in your cart."))
        await carts.set_quantity(owner, line_id, form.get("quantity", ""))
    except (FormError, NotFound) as error:
        return await _cart_answer(request, line_errors={line_id: _message(error)}, error=_message(error))
    return await _cart_answer(request)


@post("/cart/lines/{line_id:int}/remove")
async def cart_remove(request: Request, line_id: int) -> Response:
    owner = _owner(request)
    try:
        if owner is None:
            raise NotFound(gettext("That item is not in your cart."))
        await carts.remove_line(owner, line_id)
    except NotFound as error:
        return await _cart_answer(request, error=error.message)
    return await _cart_answer(request)


# ---- checkout page -------------------------------------------------------------------------


async def _checkout_context(request: Request, values: dict | None = None, errors: dict | None = None) -> dict:
    member = current_member(request)
    summary = await carts.cart_summary(carts.member_owner(member.id))
    values = dict(values or {})
    saved = await addresses.saved_addresses(member.id)
    if "address_id" not in values:
        values["address_id"] = str(saved[0]["id"]) if saved else "new"
    values.setdefault("country", "SE")
    choices = checkout.shipping_choices(summary["subtotal"])
    values.setdefault("shipping", choices[0]["code"] if choices else "")
    discount = await vouchers.voucher_amount(member.id, values.get("voucher", "")) if values.get("voucher") else None
    return {
        "cart": summary, "values": values, "errors": errors or {}, "addresses": saved,
        "countries": addresses.country_names(), "vouchers": await vouchers.open_vouchers(member.id),
        "totals": checkout.totals(summary["subtotal"], values["shipping"], discount),
        "voucher_ok": discount is not None, "hold_minutes": get_settings().checkout_hold_minutes,
        "publishable_key": cards.publishable_key(), "cart_count": summary["count"],
    }


@get("/checkout", guards=[requires_member])
async def checkout_page(request: Request) -> Response:
    ctx = await _checkout_context(request)
    if not ctx["cart"]["lines"]:
        return redirect("/cart", flash=("info", gettext("Your cart is empty: add something first.")))
    return render(request, "shop/checkout.html", ctx)


@get("/checkout/summary", guards=[requires_member])
async def checkout_summary(request: Request, shipping: str = "", voucher: str = "") -> Response:
    """The order summary again after the member picks a delivery option or types a voucher (htmx)."""
    ctx = await _checkout_context(request, {"shipping": shipping[:40], "voucher": voucher[:40]})
    return render(request, "shop/_checkout_summary.html", {**ctx, "is_fragment": True})


def _input_from_form(form: dict[str, str], lines: list[tuple]) -> CheckoutInput:
    return CheckoutInput(
        lines=lines, address={k: form.get(k, "") for k in addresses.ADDRESS_FIELDS},
        address_id=form.get("address_id") or None, save_address=form.get("save_address") == "yes",
        shipping=form.get("shipping", ""), voucher=form.get("voucher", ""),
    )


def _order_json(placed: checkout.PlacedOrder) -> dict:
    number = placed.number
    return {
        "number": number, "status": placed.status, "total": placed.total, "currency": placed.currency,
        "setup_intent_client_secret": placed.setup_intent_client_secret, "publishable_key": placed.publishable_key,
        "reserved_until": placed.reserved_until.isoformat() if placed.reserved_until else None,
        "pay_url": f"/checkout/{number}/pay", "complete_url": f"/checkout/{number}/complete",
        "card_url": f"/checkout/{number}/card", "done_url": f"/checkout/{number}/done",
    }


@post("/checkout", guards=[requires_member])
async def checkout_submit(request: Request) -> Response:
    member = current_member(request)
    form = await _form(request)
    summary = await carts.cart_summary(carts.member_owner(member.id))
    lines = [(line["variant_id"], line["quantity"]) for line in summary["lines"]]
    try:
        placed = await checkout.place_order(member, _input_from_form(form, lines))
    except FormError as error:
        errors = dict(error.errors)
        if _wants_json(request):
            return Response({"detail": error.message, "errors": errors}, status_code=400)
        values = {k: v for k, v in form.items() if k != "_csrf_token"}
        ctx = await _checkout_context(request, values, errors)
        return render(request, "shop/checkout.html", ctx, status_code=400)
    except (Conflict, GatewayError) as error:
        message = error.message if isinstance(error, Conflict) else gettext(PAYMENTS_DOWN)
        if _wants_json(request):
            return Response({"detail": message, "errors": {"form": message}}, status_code=409)
        return redirect("/checkout", flash=("error", message))
    if _wants_json(request):
        return Response(_order_json(placed), status_code=201)
    if placed.status == "paid":
        return redirect(f"/checkout/{placed.number}/done")
    return redirect(f"/checkout/{placed.number}/pay")


def _pay_json(result: PayResult) -> dict:
    body = {"status": result.status, "number": result.number, "message": result.message}
    if result.client_secret:
        body["client_secret"] = result.client_secret
    if result.setup_intent_client_secret:
        body["setup_intent_client_secret"] = result.setup_intent_client_secret
    if result.status == "paid":
        body["redirect"] = f"/checkout/{result.number}/done"
    return body


def _pay_answer(request: Request, number: str, result: PayResult) -> Response:
    if _wants_json(request):
        return Response(_pay_json(result), status_code=200)
    if result.status == "paid":
        return redirect(f"/checkout/{number}/done")
    if result.status == "requires_action":
        return redirect(f"/checkout/{number}/pay", flash=("info", result.message))
    return redirect(f"/checkout/{number}/pay", flash=("error", result.message))


def _pay_error(request: Request, number: str, error: Exception) -> Response:
    if isinstance(error, NotFound):
        raise error
    message = gettext(PAYMENTS_DOWN) if isinstance(error, GatewayError) else _message(error)  # type: ignore[arg-type]
    if _wants_json(request):
        return Response({"status": "error", "detail": message, "errors": {"card": message}},
                        status_code=400 if isinstance(error, FormError) else 409)
    return redirect(f"/checkout/{number}/pay", flash=("error", message))


@get("/checkout/{number:str}/pay", guards=[requires_member])
async def pay_page(request: Request, number: str) -> Response:
    """The card step on its own page: after a decline, for an authentication, or without JavaScript."""
    member = current_member(request)
    order = await checkout.owned_order(member, number)
    if order["status"] != "placed":
        if order["status"] == "cancelled":
            return redirect("/cart", flash=("error", gettext("That order was cancelled because it was not paid in time.")))
        return redirect(f"/checkout/{number}/done")
    last = await checkout.last_payment(order["id"])
    try:
        client_secret = await checkout.new_card_setup(member, order["id"])
    except GatewayError:
        return redirect("/cart", flash=("error", gettext(PAYMENTS_DOWN)))
    return render(request, "shop/pay.html", {
        "order": order, "last": last, "client_secret": client_secret, "publishable_key": cards.publishable_key(),
        "needs_authentication": bool(last and last["status"] == "needs_authentication" and last["client_secret"]),
        "failure_message": gettext(order["failure_message"]) if order["failure_message"] else "",  # ours translate
        "held_until": as_aware(order["reserved_until"]).strftime("%H:%M UTC") if order["reserved_until"] else "",
    })


@post("/checkout/{number:str}/pay", guards=[requires_member])
async def pay_submit(request: Request, number: str) -> Response:
    form = await _form(request)
    try:
        result = await checkout.pay_order(current_member(request), number,
                                          setup_intent_id=form.get("setup_intent") or None)
    except (FormError, Conflict, GatewayError) as error:
        return _pay_error(request, number, error)
    return _pay_answer(request, number, result)


@post("/checkout/{number:str}/complete", guards=[requires_member])
async def pay_complete(request: Request, number: str) -> Response:
    """After Stripe.js confirmCardPayment: the server asks Stripe and records the payment."""
    try:
        result = await checkout.complete_authentication(current_member(request), number)
    except (Conflict, GatewayError) as error:
        return _pay_error(request, number, error)
    return _pay_answer(request, number, result)


@post("/checkout/{number:str}/card", guards=[requires_member])
async def new_card(request: Request, number: str) -> Response:
    """A fresh SetupIntent for another card (the card form after a failed card)."""
    try:
        secret = await checkout.new_card_for(current_member(request), number)
    except (Conflict, GatewayError) as error:
        return _pay_error(request, number, error)
    return Response({"setup_intent_client_secret": secret}, status_code=200)


@get("/checkout/{number:str}/done", guards=[requires_member])
async def done_page(request: Request, number: str) -> Response:
    order = await checkout.owned_order(request.scope["state"]["member"], number)
    if order["status"] == "placed":
        return redirect(f"/checkout/{number}/pay")
    label = order["ship_to"].get("shipping_label") or ""
    return render(request, "shop/done.html", {"order": order, "countries": addresses.country_names(),
                                              "shipping_label": gettext(label) if label else ""})


# ---- JSON API ------------------------------------------------------------------------------


class LineIn(msgspec.Struct):
    variant_id: int
    quantity: int = 1


class AddressIn(msgspec.Struct):
    name: str = ""
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "SE"
    phone: str = ""


class CheckoutIn(msgspec.Struct):
    """Only what the buyer chooses; prices and totals are the server's to decide."""

    lines: list[LineIn]
    shipping: str
    address: AddressIn | None = None
    address_id: int | None = None
    save_address: bool = False
    voucher: str | None = None


class CheckoutOut(msgspec.Struct):
    number: str
    status: str
    currency: str
    subtotal: int
    shipping: int
    discount: int
    total: int
    setup_intent_client_secret: str
    publishable_key: str
    reserved_until: str | None


class PayIn(msgspec.Struct):
    setup_intent: str | None = None  # a new card's SetupIntent (after a decline)


class PayOut(msgspec.Struct):
    status: str  # paid | requires_action | declined | processing
    number: str
    message: str = ""
    client_secret: str | None = None
    setup_intent_client_secret: str | None = None


@post("/checkout", guards=[requires_member], status_code=201,
      summary="Place an order: holds the units; returns the SetupIntent client secret for Stripe.js confirmCardSetup")
async def api_checkout(request: Request, data: CheckoutIn) -> CheckoutOut:
    address = msgspec.structs.asdict(data.address) if data.address else {}
    try:
        placed = await checkout.place_order(current_member(request), CheckoutInput(
            lines=[(line.variant_id, line.quantity) for line in data.lines], address=address,
            address_id=data.address_id, save_address=data.save_address, shipping=data.shipping,
            voucher=data.voucher or "",
        ))
    except GatewayError:  # the order was cancelled and its units released: nothing half-written
        raise Conflict(gettext(PAYMENTS_DOWN)) from None
    return CheckoutOut(
        number=placed.number, status=placed.status, currency=placed.currency, subtotal=placed.subtotal,
        shipping=placed.shipping, discount=placed.discount, total=placed.total,
        setup_intent_client_secret=placed.setup_intent_client_secret, publishable_key=placed.publishable_key,
        reserved_until=placed.reserved_until.isoformat() if placed.reserved_until else None,
    )


@post("/orders/{number:str}/pay", guards=[requires_member], status_code=200,
      summary="Charge the saved card; after confirmCardPayment call again to record the authentication")
async def api_pay(request: Request, number: str, data: PayIn | None = None) -> PayOut:
    try:
        result = await checkout.pay_order(current_member(request), number,
                                          setup_intent_id=(data.setup_intent if data else None) or None)
    except GatewayError:
        raise Conflict(gettext(PAYMENTS_DOWN)) from None
    return PayOut(status=result.status, number=result.number, message=result.message,
                  client_secret=result.client_secret or None,
                  setup_intent_client_secret=result.setup_intent_client_secret or None)


ROUTES = [cart_page, cart_add, cart_update, cart_remove, checkout_page, checkout_summary, checkout_submit, pay_page,
          pay_submit, pay_complete, new_card, done_page]
API_ROUTES = [api_checkout, api_pay]
