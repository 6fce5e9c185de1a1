"""Build campaigns and save cards the way the browser would (Stripe.js confirmCardSetup)."""

from __future__ import annotations

import datetime as dt

from app.campaigns import service as campaigns
from app.campaigns.service import GreenlightTerms, VariantTerms
from app.db import utcnow
from app.payments.gateway import gateway
from tests.factories import make_idea, make_member

CARD_OK = "4242424242424242"
CARD_DECLINED_LATER = "4000000000000341"  # saves fine, declined off-session
CARD_AUTH_LATER = "4000002500003155"  # saves (3-D Secure at setup), asks for authentication off-session


async def make_campaign(*, goal: int = 3, variants: list[VariantTerms] | None = None, price: str = "500",
                        early_bird_price: str = "", early_bird_units: int = 0, days: int = 30,
                        staff=None, author=None) -> tuple[int, dict]:
    staff = staff or await make_member("Campaign Staff", staff=True)
    author = author or await make_member("Campaign Author")
    idea_id = await make_idea(author, staff=staff)
    campaign_id = await campaigns.greenlight(staff, idea_id, GreenlightTerms(
        price=price, early_bird_price=early_bird_price, early_bird_units=early_bird_units, goal_units=goal,
        duration_days=days, estimated_delivery=(utcnow() + dt.timedelta(days=days + 60)).date().isoformat(),
        variants=variants or [VariantTerms("M"), VariantTerms("L")],
    ))
    return campaign_id, await campaigns.get_campaign(campaign_id)


async def save_card(client_secret: str, number: str = CARD_OK) -> str:
    """What Stripe.js confirmCardSetup does in the browser."""
    client = gateway().client
    method = await client.v1.payment_methods.create_async(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    setup_id = client_secret.split("_secret_")[0]
    await client.v1.setup_intents.confirm_async(setup_id, params={"payment_method": method.id})
    if number == CARD_AUTH_LATER:
        # the fake 3-D Secure box at setup: "Complete authentication" confirms again
        await client.v1.setup_intents.confirm_async(setup_id)
    return setup_id


async def pledge_with_card(member, campaign_id: int, variant_id: int, quantity: int = 1, number: str = CARD_OK):
    start = await campaigns.start_pledge(member, campaign_id, variant_id=variant_id, quantity=quantity, consent=True)
    await save_card(start.client_secret, number)
    await campaigns.confirm_pledge(member, start.pledge_id)
    return start.pledge_id
