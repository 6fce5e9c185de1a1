"""Saving cards: Stripe customers, SetupIntents (usage off_session) and their checks."""

from __future__ import annotations

from typing import Any

from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.errors import FormError
from app.i18n import gettext
from app.payments.gateway import GatewayError, SetupIntentInfo, gateway
from app.settings import get_settings


def publishable_key() -> str:
    return get_settings().stripe_publishable_key or ""


async def ensure_customer(member: CurrentMember) -> str:
    """The member's Stripe customer, created once and reused for every card."""
    row = await Member.select(Member.stripe_customer_id).where(Member.id == member.id).first()
    if row and row["stripe_customer_id"]:
        return row["stripe_customer_id"]
    customer = await gateway().create_customer(email=member.email, name=member.display_name, member_id=member.id)
    stored = await Member.update({Member.stripe_customer_id: customer}).where(
        (Member.id == member.id) & (Member.stripe_customer_id == "")).returning(Member.stripe_customer_id)
    if stored:
        return customer
    await gateway().delete_customer(customer)  # another request created one first: use that
    row = await Member.select(Member.stripe_customer_id).where(Member.id == member.id).first()
    return row["stripe_customer_id"]


async def start_card_setup(member: CurrentMember, *, metadata: dict[str, str]) -> SetupIntentInfo:
    customer = await ensure_customer(member)
    return await gateway().create_setup_intent(customer=customer, metadata={**metadata, "member_id": str(member.id)})


async def verified_payment_method(member: CurrentMember, setup_intent_id: str, *, expected: dict[str, Any]) -> str:
    """Ask Stripe whether the card was really saved for this member and purpose."""
    if not setup_intent_id:
        raise FormError({"card": gettext("Enter your card details first.")})
    try:
        intent = await gateway().retrieve_setup_intent(setup_intent_id)
    except GatewayError:
        raise FormError({"card": gettext("We could not find that card setup; please enter your card again.")}) from None
    customer = await ensure_customer(member)
    if intent.customer != customer or any(intent.metadata.get(k) != v for k, v in expected.items()):
        raise FormError({"card": gettext("That card setup does not belong to this pledge.")})
    if intent.status != "succeeded" or not intent.payment_method:
        message = intent.error or gettext("Your card was not saved yet. Please complete the card form.")  # Stripe's text as it is
        raise FormError({"card": message})
    await gateway().attach_payment_method(intent.payment_method, customer)
    return intent.payment_method


async def forget_card(payment_method: str) -> None:
    try:
        await gateway().detach_payment_method(payment_method)
    except GatewayError:
        pass
