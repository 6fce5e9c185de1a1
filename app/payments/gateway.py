"""The only module that imports `stripe` (DESIGN section 3).

It speaks Stripe's official SDK (`StripeClient`, async calls over httpx) and turns every
answer into our own small types, so the rest of the code never sees a Stripe object.
`classify_payment()` is the one place that decides what a payment answer means.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import stripe

from app.i18n import N_
from app.settings import get_settings

WEBHOOK_TOLERANCE_SECONDS = 300


class PaymentOutcome(StrEnum):
    PAID = "paid"
    NEEDS_AUTHENTICATION = "needs_authentication"
    DECLINED = "declined"
    PROCESSING = "processing"


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    status: str
    client_secret: str
    customer: str | None
    payment_method: str | None
    metadata: dict[str, str]
    error: str | None = None


@dataclass(frozen=True)
class PaymentResult:
    outcome: PaymentOutcome
    payment_intent_id: str | None
    client_secret: str | None = None
    status: str | None = None
    amount: int = 0
    decline_code: str | None = None
    message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class GatewayError(Exception):
    """Stripe could not be reached or refused the request for a reason that is not a decline."""


class WebhookRejected(Exception):
    pass


class ChargeRefused(GatewayError):
    """Stripe answered a charge with an error that is not a decline: nothing was charged. A plain
    GatewayError from `charge` means Stripe was not reached and the outcome is unknown."""


class RefundRefused(GatewayError):
    """Stripe answered and refused the refund (e.g. more than what is left): nothing was refunded.
    A plain GatewayError means Stripe was not reached: the refund may have happened, so retry with
    the same idempotency key."""


def _to_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _to_dict(value).get("id")


def metadata_number(metadata: dict[str, Any], key: str) -> int | None:
    """A row id or attempt number our own charges put in a PaymentIntent's metadata, or None when
    the value is not one (another integration's metadata, or a number no column can hold)."""
    value = metadata.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def classify_payment(payment_intent: dict[str, Any] | None, error: stripe.StripeError | None = None) -> PaymentResult:
    """paid / needs authentication / declined / processing, from a PaymentIntent or an error.

    Real Stripe raises CardError `authentication_required` for an off-session charge that needs
    3-D Secure; localstripe answers status `requires_action` instead: both mean the backer
    must authenticate.
    """
    if error is not None:
        err = getattr(error, "error", None)
        code = getattr(err, "code", None) or getattr(error, "code", None)
        decline = getattr(err, "decline_code", None) or code
        pi = _to_dict(getattr(err, "payment_intent", None))
        message = getattr(err, "message", None) or str(error)
        if code == "authentication_required":
            return PaymentResult(PaymentOutcome.NEEDS_AUTHENTICATION, pi.get("id"), pi.get("client_secret"),
                                 pi.get("status"), pi.get("amount", 0), decline, message, pi.get("metadata") or {})
        return PaymentResult(PaymentOutcome.DECLINED, pi.get("id"), pi.get("client_secret"), pi.get("status"),
                             pi.get("amount", 0), decline, message, pi.get("metadata") or {})
    pi = payment_intent or {}
    status = pi.get("status")
    base = dict(payment_intent_id=pi.get("id"), client_secret=pi.get("client_secret"), status=status,
                amount=pi.get("amount", 0), metadata=pi.get("metadata") or {})
    if status == "succeeded":
        return PaymentResult(PaymentOutcome.PAID, **base)
    if status in ("requires_action", "requires_confirmation"):
        return PaymentResult(PaymentOutcome.NEEDS_AUTHENTICATION, **base, message=N_("The bank asks the cardholder to authenticate."))  # translated where shown
    if status == "processing":
        return PaymentResult(PaymentOutcome.PROCESSING, **base)
    last_error = pi.get("last_payment_error") or {}
    return PaymentResult(PaymentOutcome.DECLINED, **base, decline_code=last_error.get("decline_code") or last_error.get("code"),
                         message=last_error.get("message") or N_("The card was declined."))  # translated where shown


class Gateway:
    def __init__(self, secret_key: str, api_base: str | None, publishable_key: str, webhook_secret: str | None,
                 max_network_retries: int = 0) -> None:
        kwargs: dict[str, Any] = {"max_network_retries": max_network_retries, "http_client": stripe.HTTPXClient()}
        if api_base:
            kwargs["base_addresses"] = {"api": api_base}
        self.client = stripe.StripeClient(secret_key, **kwargs)
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret

    async def create_customer(self, *, email: str, name: str, member_id: int) -> str:
        try:
            customer = await self.client.v1.customers.create_async(
                params={"email": email, "name": name, "metadata": {"member_id": str(member_id)}}
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error)) from None
        return customer.id

    async def delete_customer(self, customer_id: str) -> None:
        try:
            await self.client.v1.customers.delete_async(customer_id)
        except stripe.InvalidRequestError:
            pass

    async def create_setup_intent(self, *, customer: str, metadata: dict[str, str]) -> SetupIntentInfo:
        try:
            intent = await self.client.v1.setup_intents.create_async(
                params={"customer": customer, "usage": "off_session", "payment_method_types": ["card"], "metadata": metadata}
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error)) from None
        return self._setup_info(intent)

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentInfo:
        try:
            intent = await self.client.v1.setup_intents.retrieve_async(setup_intent_id)
        except stripe.StripeError as error:
            raise GatewayError(str(error)) from None
        return self._setup_info(intent)

    @staticmethod
    def _setup_info(intent: Any) -> SetupIntentInfo:
        data = _to_dict(intent)
        last_error = data.get("last_setup_error") or {}
        return SetupIntentInfo(
            id=data["id"], status=data.get("status", ""), client_secret=data.get("client_secret", ""),
            customer=_id(data.get("customer")), payment_method=_id(data.get("payment_method")),
            metadata=dict(data.get("metadata") or {}), error=last_error.get("message"),
        )

    async def attach_payment_method(self, payment_method: str, customer: str) -> None:
        """localstripe does not attach on SetupIntent success; real Stripe does. Both are fine."""
        try:
            await self.client.v1.payment_methods.attach_async(payment_method, params={"customer": customer})
        except stripe.InvalidRequestError:
            pass  # already attached

    async def detach_payment_method(self, payment_method: str) -> None:
        try:
            await self.client.v1.payment_methods.detach_async(payment_method)
        except stripe.InvalidRequestError:
            pass

    async def charge(self, *, customer: str, payment_method: str, amount: int, currency: str, idempotency_key: str,
                     metadata: dict[str, str], off_session: bool = True) -> PaymentResult:
        params: dict[str, Any] = {
            "amount": amount, "currency": currency.lower(), "customer": customer, "payment_method": payment_method,
            "payment_method_types": ["card"], "confirm": True, "metadata": metadata,
        }
        if off_session:
            params["off_session"] = True
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as error:
            return classify_payment(None, error)
        except stripe.StripeError as error:
            if error.http_status is not None:  # Stripe answered: no PaymentIntent was charged
                raise ChargeRefused(str(error)) from error
            raise GatewayError(str(error)) from error  # not reached: the charge may have happened
        return classify_payment(_to_dict(intent))

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentResult:
        intent = await self.client.v1.payment_intents.retrieve_async(payment_intent_id)
        return classify_payment(_to_dict(intent))

    async def cancel_payment(self, payment_intent_id: str) -> None:
        """Cancel a PaymentIntent still waiting for the cardholder, so it can never succeed later."""
        try:
            await self.client.v1.payment_intents.cancel_async(payment_intent_id)
        except stripe.InvalidRequestError:
            pass  # already succeeded, cancelled or unknown: nothing to cancel

    async def find_payments(self, *, customer: str, metadata: dict[str, str]) -> list[PaymentResult]:
        """PaymentIntents of a customer whose metadata contains `metadata` (crash recovery:
        localstripe ignores idempotency keys, so we look before charging again)."""
        results = []
        async for intent in self._payment_intents_of(customer):
            meta = intent.get("metadata") or {}
            if all(meta.get(k) == v for k, v in metadata.items()):
                results.append(classify_payment(intent))
        return results

    async def _payment_intents_of(self, customer: str):
        params: dict[str, Any] = {"customer": customer, "limit": 100}
        filtered = True
        while True:
            try:
                page = _to_dict(await self.client.v1.payment_intents.list_async(params=params))
            except stripe.InvalidRequestError:
                if not filtered:
                    raise
                filtered = False  # localstripe cannot filter by customer: list all and filter here
                params.pop("customer")
                continue
            data = page.get("data", [])
            for intent in data:
                if _id(intent.get("customer")) == customer:
                    yield intent
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]

    async def refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str) -> str:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={"payment_intent": payment_intent_id, "amount": amount},
                options={"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            if error.http_status is not None:  # Stripe answered: the refund did not happen
                raise RefundRefused(error.user_message or str(error)) from None
            raise GatewayError(str(error)) from None
        return refund.id

    def verify_webhook(self, payload: bytes, signature: str, *, now: float | None = None) -> dict[str, Any]:
        """Check the signature and refuse timestamps outside +-5 minutes (the SDK only checks the past)."""
        if not self.webhook_secret:
            raise WebhookRejected("webhook secret not configured")
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, self.webhook_secret,
                                                  WEBHOOK_TOLERANCE_SECONDS)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as error:
            raise WebhookRejected(str(error)) from None
        timestamps = [int(part[2:]) for part in signature.split(",") if part.startswith("t=") and part[2:].isdecimal()]
        current = time.time() if now is None else now
        if not timestamps or abs(current - timestamps[0]) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected("timestamp outside the tolerance zone")
        try:
            return json.loads(payload)
        except ValueError:
            raise WebhookRejected("payload is not JSON") from None


def sign_webhook_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload` (tests and tools use the SDK's own helper)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return f"t={timestamp},v1={signature}"


@lru_cache(maxsize=1)
def gateway() -> Gateway:
    settings = get_settings()
    if not settings.stripe_secret_key:
        raise GatewayError("Stripe is not configured (STRIPE_SECRET_KEY)")
    return Gateway(
        settings.stripe_secret_key,
        settings.stripe_api_base,
        settings.stripe_publishable_key or "",
        settings.stripe_webhook_secret,
        settings.stripe_max_network_retries,
    )
