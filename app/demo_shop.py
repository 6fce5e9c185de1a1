"""The shop's demo data, called from `app.demo._load` once the campaigns are settled.

Products (published from the funded campaign and created by staff, in every status, with a
low-stock and a sold-out variant), shop orders at every stage paid for real through checkout
against Stripe (localstripe under `make run`) and moved by staff fulfilment (tracking,
deliveries, partial and full refunds, cancellations that restock, a buyer's withdrawal from one
item of a delivered order, refunded and restocked on its return), an engraved-to-order mug variant
(no right of withdrawal), a beanie reduced today with its 30-day lowest price, a points voucher spent on an
order, the funded campaign's pre-orders in production, reviews by verified buyers (one hidden by
staff), questions and answers, wishlist hearts and curated collections on the home page.

Everything goes through the real services, so stock, sold counters, ratings, refunds, points,
notifications and emails agree with the rows; the integrity audit passes afterwards. Without
Stripe there are products, questions, wishlists and collections, but no orders or reviews.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from app.accounts import addresses
from app.accounts.service import get_member
from app.accounts.tables import Member
from app.campaigns import delivery
from app.campaigns.service import get_campaign
from app.campaigns.tables import Campaign
from app.db import utcnow
from app.demo import PALETTES, TOWNS, product_image
from app.ideas.service import PUBLIC_STATUSES, ensure_categories
from app.ideas.tables import Idea
from app.media.images import store_image
from app.moderation import service as moderation
from app.orders import fulfilment, lookup, withdrawal
from app.orders.tables import Order, OrderEvent, OrderLine, OrderPayment, Refund, Withdrawal
from app.payments.gateway import gateway
from app.points import service as points
from app.settings import get_settings
from app.shop import catalog, checkout, collections, reviews, wishlist
from app.shop.tables import PriceChange, Review

# (name, category, price in SEK, summary, material, [(variant, stock, price or "")], status)
PRODUCTS: list[tuple[str, str, str, str, str, list[tuple[str, int, str]], str]] = [
    ("Everyday merino tee", "apparel", "449", "A soft 150 g merino tee that stays fresh for days",
     "100% merino wool, 150 g/m², mulesing-free", [("S", 14), ("M", 30), ("L", 25), ("XL", 2)], "active"),
    ("Storm shell jacket", "apparel", "1890", "A fully taped three-layer shell with pit zips and a helmet hood",
     "3-layer recycled polyester, PFC-free water repellency", [("S", 9), ("M", 0), ("L", 14)], "active"),
    ("Canvas roll-top backpack", "bags", "1290", "Waxed canvas, a padded laptop sleeve and a roll top that seals",
     "Waxed organic cotton canvas, leather trims", [("Sand", 22), ("Forest", 16), ("Black", 28)], "active"),
    ("Packable hip pack", "bags", "349", "Big enough for keys, phone and snacks; folds into its own pocket",
     "Recycled ripstop nylon", [("Black", 40), ("Ochre", 18)], "active"),
    ("Stonewashed linen pillowcases", "home", "299", "Stonewashed European linen that gets softer with every wash",
     "100% European flax linen", [("Oat", 30), ("Clay", 22), ("Set of two, Sage", 16, "549")], "active"),
    ("Enamel camp mug", "outdoor", "199", "A 350 ml enamel mug for the stove, the fire and the office",
     "Enamelled steel, stainless rim", [("White", 50), ("Pine", 35), ("Engraved with your name", 20, "249", True)],
     "active"),
    ("Foldable sit pad", "outdoor", "249", "Closed-cell foam for cold rocks, wet benches and the ice-fishing hole",
     "Closed-cell XPE foam", [("Grey", 45), ("Signal orange", 30)], "active"),
    ("Organic cotton socks, 5-pack", "accessories", "279", "Everyday socks with a reinforced heel and toe",
     "80% organic cotton, 18% polyamide, 2% elastane", [("36-39", 40), ("40-43", 60), ("44-47", 25)], "active"),
    ("Recycled wool beanie", "accessories", "329", "A rib-knit beanie from recycled wool, warm without itching",
     "70% recycled wool, 30% recycled polyamide", [("Rust", 20), ("Navy", 25), ("Grey", 15)], "active"),
    ("Cable organizer roll", "tech", "259", "Roll up chargers, cables and an adapter; lies flat in a bag",
     "Recycled polyester with elastic loops", [("Charcoal", 30), ("Olive", 20)], "active"),
    ("Reflective bike light set", "tech", "449", "USB-C lights with a brake-sensing rear and 40 hours of blink",
     "Aluminium housing, IPX6", [("Front + rear", 24), ("Rear only", 30, "249")], "active"),
    ("Wool felt slippers", "home", "549", "Felted wool slippers with a grippy natural-rubber sole",
     "Boiled wool, natural rubber sole", [("36-38", 10), ("39-41", 12), ("42-44", 8), ("45-46", 4)], "draft"),
    ("Waxed cotton tote", "bags", "699", "A sturdy tote with an inner zip pocket and a key leash",
     "Waxed cotton canvas", [("Natural", 12), ("Olive", 9)], "hidden"),
    ("Winter fleece 2025", "apparel", "899", "Last winter's high-pile fleece; replaced by the new colours",
     "Recycled polyester high-pile fleece", [("M", 6), ("L", 4)], "archived"),
]
DETAILS = "Material: {material}.\nCare: machine wash cold or air out; no tumble drying.\nShips from our warehouse in Borås."
DESCRIPTION = ("{summary}.\n\nDesigned with our members: the first sketch came from an idea on Crowdmade, and "
               "hundreds of votes and comments shaped the details. Made in small batches in Portugal and the Baltics "
               "by factories we visit every year.\n\nFree repairs for two years: send it back and we fix it.")
STREETS = ["Storgatan", "Kungsgatan", "Drottninggatan", "Skolgatan", "Sjövägen", "Björkvägen", "Parkgatan",
           "Trädgårdsgatan", "Ringvägen", "Hamngatan"]
POSTAL = {"Stockholm": ("SE", "114 51"), "Göteborg": ("SE", "411 19"), "Malmö": ("SE", "211 22"),
          "Umeå": ("SE", "903 26"), "Uppsala": ("SE", "753 20"), "Lund": ("SE", "222 21"), "Kiruna": ("SE", "981 31"),
          "Visby": ("SE", "621 55"), "Oslo": ("NO", "0150"), "Copenhagen": ("DK", "1050")}
CARRIERS = ["postnord", "postnord", "dhl", "budbee", "instabox", "bring"]
REVIEWS = {  # rating -> (title, body)
    5: [("Exactly what I hoped for", "Fits perfectly and feels like it will last for years. Already ordered one more."),
        ("Worth every krona", "Great materials and you can tell someone cared about the details."),
        ("Love it", "Used it every day for two weeks. No complaints at all.")],
    4: [("Very good, small niggle", "Really well made. The colour is a bit darker than in the photos, but I like it."),
        ("Solid", "Does what it promises. I'd love one more colour option.")],
    3: [("Okay", "Nice quality, but the sizing runs small; order one size up.")],
    2: [("Not for me", "The fabric is lovely but the fit did not work for me. Customer service was quick, though.")],
    1: [("Broke after a week", "The seam came loose after a week of use. Disappointed.")],
}
QUESTIONS = [  # (product, question, answer or "" for one still open)
    ("Everyday merino tee", "Does it run true to size? I'm usually between M and L.",
     "It is a regular fit: take your usual size, or size up to wear a base layer underneath."),
    ("Everyday merino tee", "Can I wash it in the machine?", "Yes: 30 °C on a wool programme, and dry it flat."),
    ("Canvas roll-top backpack", "Is it OK for a 15\" laptop?",
     "Yes, the padded sleeve fits laptops up to 15.6\" (36 x 25 cm)."),
    ("Recycled wool beanie", "Will there be more colours?",
     "We're sampling two new colours for spring; vote for them on the ideas page!"),
    ("Enamel camp mug", "Is the packaging plastic-free?", ""),
]
CAMPAIGN_QUESTIONS = [
    ("I missed the campaign: is this the same as the backers got?",
     "Exactly the same, from the same production run. Backers' pre-orders ship first."),
]


@dataclass
class DemoOrder:
    """One planned shop order: its buyer, lines, and the stage it should end in."""

    member: Any
    lines: list[tuple[int, int]]
    stage: str  # paid | shipped | delivered | partial_refund | refunded | cancelled | withdrawn
    age_days: float
    voucher: str = ""
    shipping: str = "standard"
    order_id: int = 0
    number: str = ""
    review_ids: list[int] = field(default_factory=list)


def cover_image(category: str, title: str) -> bytes:
    """A wide collection cover: the category's gradient, soft rings and the title's initial."""
    top, bottom = PALETTES[category]
    width, height = 1200, 500
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 2):
        t = x / width
        draw.rectangle([x, 0, x + 1, height], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    rng = random.Random(title)
    for _ in range(7):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(60, 220)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=tuple(min(255, c + 50) for c in bottom), width=8)
    draw.text((width // 2, height // 2), title[:1].upper(), fill=(255, 255, 255), font_size=220, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def address_for(member, rng: random.Random, town: str | None = None) -> dict[str, str]:  # noqa: ANN001
    town = town or rng.choice(TOWNS)
    country, postal = POSTAL.get(town, ("SE", "111 22"))
    return {"name": member.display_name, "line1": f"{rng.choice(STREETS)} {rng.randrange(1, 80)}",
            "line2": rng.choice(["", "", "", f"lgh {rng.randrange(1001, 1400)}"]), "postal_code": postal,
            "city": town, "country": country, "phone": f"+46 70 {rng.randrange(100, 999)} {rng.randrange(10, 99)} "
                                                              f"{rng.randrange(10, 99)}"}


async def load_shop(rng: random.Random, staff, demo_member, members: list, created: dict[str, list[int]],  # noqa: ANN001
                    *, images: bool, tag: str = "") -> None:
    """`tag` is the demo's suffix on a database that already holds demo data (`--reset`)."""

    rng = random.Random(rng.getrandbits(64))  # the shop's own stream: later changes upstream don't reshuffle it
    await ensure_categories()
    products = await _products(rng, staff, images=images)
    await _price_cut(staff, products["Recycled wool beanie"])
    buyers = [m for m in members[1:] if m.verified]
    if get_settings().stripe_secret_key:
        plan = await _orders(rng, staff, demo_member, buyers, products)
        await _reviews(rng, staff, demo_member, plan)
        await _preorders(rng, staff, demo_member)
        await _backdate(plan)
    await _retire(staff, products)
    await _questions(rng, staff, members, products)
    await _wishlists(rng, demo_member, buyers, products, created)
    await _collections(rng, staff, products, created, images=images, tag=tag)


# ---- products ----------------------------------------------------------------------------------


async def _products(rng: random.Random, staff, *, images: bool) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """Every product by name (created active; hidden and archived ones are retired after their orders)."""

    products: dict[str, dict[str, Any]] = {}
    for row in sorted(await catalog.publishable_campaigns(), key=lambda row: row["id"]):  # funded, not yet in the shop
        campaign = await _campaign(row["id"])
        stock = {v["id"]: rng.choice((12, 18, 25, 40)) for v in campaign["variants"]}
        product = await catalog.publish_from_campaign(staff, row["id"], stock=stock, safety_info=SAFETY_INFO["apparel"])
        products[product["name"]] = product
    for name, category, price, summary, material, variants, status in PRODUCTS:
        uploads = []
        if images:
            uploads = [(f"{catalog.slugify(name)}-{k}.png", product_image(random.Random(f"{name}-{k}"), category, name))
                       for k in range(1 + len(name) % 2)]
        product = await catalog.create_product(staff, {
            "name": name, "category": category, "price": price, "summary": summary,
            "description": DESCRIPTION.format(summary=summary), "details": DETAILS.format(material=material),
            "ships_in_days": rng.choice((1, 2, 3, 3, 5)), "uploads": uploads,
            "status": "draft" if status == "draft" else "active",
            "manufacturer": MAKERS[len(name) % len(MAKERS)], "eu_responsible": BRAND_IN_EU,
            "safety_info": SAFETY_INFO.get(category, SAFETY_INFO["apparel"]),
            "variants": [{"name": v[0], "stock": v[1], "price": v[2] if len(v) > 2 else "",
                          "made_to_order": len(v) > 3 and v[3],  # engraved to order: no right of withdrawal
                          "sku": f"{catalog.slugify(name)[:12].upper()}-{k + 1:02d}"} for k, v in enumerate(variants)],
        })
        product["demo_status"] = status
        products[name] = product
    return products


# Product safety (GPSR) on every demo product: who made it, who answers for it in the EU, warnings.
BRAND_IN_EU = "Crowdmade AB, Götgatan 14, 118 46 Stockholm, Sweden, hello@crowdmade.test"
MAKERS = ["Nordvik Textil AB, Industrigatan 8, 503 38 Borås, Sweden, info@nordvik.test",
          "Atelier Lisboa Lda, Rua do Norte 21, 1200-284 Lisboa, Portugal, hello@atelier-lisboa.test",
          "Emalj & Co Oy, Tehtaankatu 3, 00140 Helsinki, Finland, support@emalj.test"]
SAFETY_INFO = {
    "apparel": "Wash at 30 °C on a wool or delicate programme; do not tumble dry. Keep away from open flames.",
    "outdoor": "Not for use on induction hobs. The rim gets hot over a fire: hold by the handle. Keep away from children "
               "when hot.",
    "accessories": "Wash by hand. Small parts: not for children under 3.",
    "bags": "Maximum load 15 kg. Keep the plastic packaging away from children.",
    "home": "For indoor use. Keep away from heat sources and direct sunlight.",
    "tech": "Charge only with the supplied cable and a CE-marked USB charger. Do not open the battery case; "
            "recycle it as electronic waste.",
}


async def _price_cut(staff, product: dict[str, Any]) -> None:  # noqa: ANN001
    """A reduction with its honest reference: 40 days at 359 kr, 20 days at 329 kr, reduced to
    279 kr today, so the page shows −15% and "lowest price in the 30 days before: 329 kr"."""
    ids = [v["id"] for v in product["variants"]]
    now = utcnow()
    await PriceChange.update({PriceChange.price: 35_900, PriceChange.changed_at: now - dt.timedelta(days=40)}).where(
        PriceChange.variant.is_in(ids))
    await PriceChange.insert(*[PriceChange(variant=v, price=product["price"], changed_at=now - dt.timedelta(days=20))
                               for v in ids])
    await catalog.update_product(staff, product["id"], {
        "name": product["name"], "summary": product["summary"], "description": product["description"],
        "details": product["details"], "category": product["category.slug"] or "", "price": "279",
        "manufacturer": product["manufacturer"], "eu_responsible": product["eu_responsible"],
        "safety_info": product["safety_info"],
        "ships_in_days": product["ships_in_days"], "status": product["status"],
        "variants": [{"id": v["id"], "name": v["name"], "sku": v["sku"]} for v in product["variants"]]})


async def _campaign(campaign_id: int) -> dict[str, Any]:
    return await get_campaign(campaign_id)


async def _retire(staff, products: dict[str, dict[str, Any]]) -> None:  # noqa: ANN001
    """The hidden and archived products were sold before; they leave the shop now."""

    for product in products.values():
        if product.get("demo_status") in ("hidden", "archived"):
            await catalog.set_status(staff, product["id"], product["demo_status"])


# ---- orders ------------------------------------------------------------------------------------


def _sellable(products: dict[str, dict[str, Any]], left: dict[int, int]) -> list[tuple[dict, dict]]:
    """(product, variant) pairs a random demo order may take: staying in the shop, with plenty
    left, so the low-stock and sold-out variants stay as they are."""
    return [(p, v) for p in products.values() if p.get("demo_status", "active") == "active"
            for v in p["variants"] if left.get(v["id"], 0) >= 6]


def _pick_lines(rng: random.Random, products: dict, left: dict[int, int], favourites: list[str]) -> list[tuple[int, int]]:
    pairs = _sellable(products, left)
    weights = [4 if p["name"] in favourites else 1 for p, _ in pairs]
    lines: dict[int, int] = {}
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        product, variant = rng.choices(pairs, weights=weights)[0]
        if any(v["id"] in lines for v in product["variants"]):
            continue  # one variant per product per order
        quantity = 1 if rng.random() < 0.8 else 2
        lines[variant["id"]] = quantity
        left[variant["id"]] -= quantity
    return list(lines.items())


async def _orders(rng: random.Random, staff, demo_member, buyers: list, products: dict) -> list[DemoOrder]:  # noqa: ANN001
    """Shop orders paid through checkout, then moved by staff to their stage (oldest first)."""

    left = {v["id"]: v["stock"] for p in products.values() for v in p["variants"]}
    favourites = ["Everyday merino tee", "Organic cotton socks, 5-pack", "Canvas roll-top backpack", "Enamel camp mug",
                  *[p["name"] for p in products.values() if p.get("campaign")]]
    def variant(name: str, index: int = 0) -> int:
        return products[name]["variants"][index]["id"]

    plan = [  # the demo member's own orders: one at each stage a member wants to see
        DemoOrder(demo_member, [(variant("Storm shell jacket", 0), 1), (variant("Enamel camp mug", 1), 2)],
                  "delivered", 34, shipping="express"),
        DemoOrder(demo_member, [(variant("Organic cotton socks, 5-pack", 1), 2), (variant("Winter fleece 2025", 0), 1)],
                  "partial_refund", 22),
        DemoOrder(demo_member, [(variant("Canvas roll-top backpack", 1), 1)], "shipped", 3),
    ]
    stages = (["delivered"] * 5 + ["shipped"] * 3 + ["paid"] * 3 + ["cancelled"] * 2
              + ["refunded", "partial_refund", "withdrawn"])
    ages = {"delivered": (12, 45), "partial_refund": (14, 40), "refunded": (10, 30), "shipped": (2, 5),
            "paid": (0.2, 1.5), "cancelled": (2, 20), "withdrawn": (6, 9)}
    for stage, buyer in zip(stages, rng.sample(buyers, k=min(len(buyers), len(stages))), strict=False):
        plan.append(DemoOrder(buyer, _pick_lines(rng, products, left, favourites), stage, rng.uniform(*ages[stage]),
                              shipping="express" if rng.random() < 0.25 else "standard"))
    if len(plan) > 3:
        plan[3].lines.append((variant("Waxed cotton tote", 0), 1))  # sold before it was hidden
    # A voucher bought with points pays part of the demo member's newest order. Their points
    # come from votes and ideas; a staff thank-you for testing prototypes tops them up.
    balance = await _balance(demo_member.id)
    if balance < points.VOUCHER_POINTS:
        await points.adjust(staff.id, demo_member.id, points.VOUCHER_POINTS - balance + 150,
                            "Thank you for testing the storm shell prototypes!")
    voucher = await points.redeem_voucher(demo_member.id)
    plan.append(DemoOrder(demo_member, [(variant("Everyday merino tee", 1), 1), (variant("Recycled wool beanie", 0), 1)],
                          "paid", 0.3, voucher=voucher["code"]))
    plan.sort(key=lambda order: -order.age_days)
    addresses: dict[int, dict[str, str]] = {}
    for order in plan:
        if order.member.id not in addresses:
            town = "Umeå" if order.member.id == demo_member.id else None
            addresses[order.member.id] = address_for(order.member, rng, town)
        await _buy(order, addresses[order.member.id])
        await _fulfil(rng, staff, order)
    return plan


async def _balance(member_id: int) -> int:
    row = await Member.select(Member.points_balance).where(Member.id == member_id).first()
    return row["points_balance"]


async def _buy(order: DemoOrder, address: dict[str, str]) -> None:
    """Checkout as the browser does it: place the order, save the card on its SetupIntent, pay."""

    placed = await checkout.place_order(order.member, checkout.CheckoutInput(
        lines=order.lines, address=address, save_address=True, shipping=order.shipping, voucher=order.voucher))
    order.order_id, order.number = placed.order_id, placed.number
    if placed.status == "paid":  # a voucher covered it all
        return
    client = gateway().client
    method = await client.v1.payment_methods.create_async(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    await client.v1.setup_intents.confirm_async(placed.setup_intent_client_secret.split("_secret_")[0],
                                                params={"payment_method": method.id})
    result = await checkout.pay_order(order.member, placed.number)
    if result.status != "paid":
        raise RuntimeError(f"demo order {placed.number} was not paid: {result.status} {result.message}")


async def _fulfil(rng: random.Random, staff, order: DemoOrder) -> None:  # noqa: ANN001

    if order.stage == "cancelled":
        await fulfilment.cancel_order(staff, order.order_id, reason=rng.choice(
            ["The customer ordered the wrong size", "The customer asked us to cancel before shipping"]))
        return
    if order.stage == "refunded":
        total = (await Order.select(Order.total).where(Order.id == order.order_id).first())["total"]
        await fulfilment.set_status(staff, order.order_id, "shipped", carrier="postnord",
                                    tracking_number=_tracking(rng, "postnord"))
        await fulfilment.refund_order(staff, order.order_id, total, minor_units=True, key="demo-full",
                                      reason="Lost in transit; the carrier confirmed it")
        return
    if order.stage == "paid":
        return
    carrier = rng.choice(CARRIERS)
    await fulfilment.set_status(staff, order.order_id, "shipped", carrier=carrier,
                                tracking_number=_tracking(rng, carrier))
    if order.stage in ("delivered", "partial_refund", "withdrawn"):
        await fulfilment.set_status(staff, order.order_id, "delivered")
    if order.stage == "withdrawn":  # the buyer changed their mind about one item, and sent it back
        first = await OrderLine.select(OrderLine.id).where(OrderLine.order == order.order_id).order_by(OrderLine.id).first()
        done = await withdrawal.withdraw_from_order(order.number, [str(first["id"])], member=order.member)
        await withdrawal.goods_returned(staff, done["id"])
    if order.stage == "partial_refund":
        await fulfilment.refund_order(staff, order.order_id, "100", key="demo-partial",
                                      reason="One item arrived with a small flaw; the customer keeps it")


def _tracking(rng: random.Random, carrier: str) -> str:
    if carrier in ("postnord", "bring"):
        return f"00{rng.randrange(10**17, 10**18)}"
    if carrier == "dhl":
        return f"JJD{rng.randrange(10**17, 10**18)}"
    return f"{carrier[:2].upper()}{rng.randrange(10**9, 10**10)}"


async def _preorders(rng: random.Random, staff, demo_member) -> None:  # noqa: ANN001
    """The funded campaign's pre-orders: delivery addresses given by their backers, then into production."""

    for campaign in await Campaign.select(Campaign.id).where(Campaign.status == "charging").order_by(Campaign.id):
        orders = await Order.select(Order.id, Order.member).where(
            (Order.campaign_id == campaign["id"]) & (Order.kind == "preorder") & (Order.status == "paid"))
        for row in orders:
            if row["member"] == demo_member.id or rng.random() < 0.6:
                member = await get_member(row["member"])
                # what the order page prefills: the address saved at a shop checkout, if any
                address = await addresses.address_suggestion(member.id) or address_for(
                    member, rng, "Umeå" if member.id == demo_member.id else None)
                await fulfilment.set_delivery_address(member, row["id"], address)
        await delivery.post_milestone(staff, campaign["id"], delivery.MilestoneInput(
            "Sample approved", "The final sample came back from the factory and passed our wash test."))
        await fulfilment.bulk_in_production(staff, campaign["id"])
        await delivery.post_milestone(staff, campaign["id"], delivery.MilestoneInput(
            "In production", "Cutting and sewing have started; we will ship in waves as batches are done."))
        estimated = (await Campaign.select(Campaign.estimated_delivery).where(
            Campaign.id == campaign["id"]).first())["estimated_delivery"]
        await delivery.change_date(staff, campaign["id"], delivery.DateChangeInput(
            estimated + dt.timedelta(days=21), "The zips failed our cold test, so the factory fits a sturdier one: "
                                              "three weeks more, and the pre-orders stay at the price you pledged."))
        # the first batch leaves in wave 1 (not the demo member's: their order page shows its place in the queue)
        first_wave = [o for o in await Order.select(Order.number, Order.member, Order.ship_to).where(
            (Order.campaign_id == campaign["id"]) & (Order.status == "in_production")).order_by(Order.id)
            if o["member"] != demo_member.id and lookup.ship_to_of(o)][:3]
        if first_wave:
            await fulfilment.bulk_ship(staff, campaign["id"], carrier="postnord", only_listed=True, tracking_lines="\n".join(
                f"{o['number']} {_tracking(rng, 'postnord')}" for o in first_wave))


# ---- reviews and questions ---------------------------------------------------------------------


async def _reviews(rng: random.Random, staff, demo_member, plan: list[DemoOrder]) -> None:  # noqa: ANN001
    """Buyers review what they bought (most wait for the parcel); staff remove one review with a
    statement of reasons, and its author appeals (waiting in the moderation queue)."""

    ratings = [5, 5, 4, 5, 3, 4, 5, 2, 4, 5, 1, 4, 5, 3]
    written = 0
    spam = next((o for o in plan if o.stage == "delivered" and o.member.id != demo_member.id), None)
    for order in plan:
        if order.stage not in ("delivered", "partial_refund", "shipped"):
            continue
        if order.stage == "shipped" and rng.random() < 0.7:
            continue
        for line in await OrderLine.select(OrderLine.product_id).where(OrderLine.order == order.order_id).order_by(
                OrderLine.id):
            if order is spam:  # one review broke the rules: staff hide it, and its author sees why
                review = await reviews.submit_review(
                    order.member, line["product_id"], rating=1, title="Call me for a better deal",
                    body="Selling mine cheaper, call +46 70 123 45 67 or see example.invalid")
                decision = await moderation.decide(staff, "review", review["id"], action="remove", ground="rules",
                                                   statement=("Reviews are for your experience of the product: no "
                                                              "adverts or phone numbers, please."))
                await moderation.appeal(order.member, decision["id"], "I only wanted to help other buyers find "
                                        "a cheaper one; the phone number can go.")
                order.review_ids.append(review["id"])
                spam = None
                continue
            if order.member.id == demo_member.id:
                if order.stage != "delivered":
                    continue
                stars = 5
            else:
                stars = ratings[written % len(ratings)]
            title, body = rng.choice(REVIEWS[stars])
            review = await reviews.submit_review(order.member, line["product_id"], rating=stars, title=title, body=body)
            order.review_ids.append(review["id"])
            written += 1


async def _questions(rng: random.Random, staff, members: list, products: dict) -> None:  # noqa: ANN001
    """Members ask on product pages; staff answer, or the idea's creator for a campaign's product."""

    askers = [m for m in members if m.verified]
    asked = [(p["name"], q, a) for p in products.values() if p.get("campaign") for q, a in CAMPAIGN_QUESTIONS]
    asked += QUESTIONS
    for name, question, answer in asked:
        product = await catalog.get_product(products[name]["slug"], staff)
        asker = rng.choice([m for m in askers if m.id != product["idea_author"]])
        question_id = await catalog.ask_question(asker, product["slug"], question)
        if answer:
            answerer = await get_member(product["idea_author"]) if product["idea_author"] else staff
            await catalog.answer_question(answerer, product["slug"], question_id, answer)


# ---- wishlists and collections ----------------------------------------------------------------


async def _public_ideas(created: dict[str, list[int]]) -> list[dict[str, Any]]:
    ids = created.get("campaign", []) + created.get("greenlit", []) + created.get("voting", [])
    if not ids:
        return []
    rows = {r["id"]: r for r in await Idea.select(Idea.id, Idea.title, Idea.status, Idea.category.slug).where(
        Idea.id.is_in(ids) & Idea.status.is_in([s.value for s in PUBLIC_STATUSES]))}  # not one moderation removed
    return [rows[i] for i in ids if i in rows]


async def _wishlists(rng: random.Random, demo_member, buyers: list, products: dict,  # noqa: ANN001
                     created: dict[str, list[int]]) -> None:
    active = [p for p in products.values() if p.get("demo_status", "active") == "active"]
    ideas = await _public_ideas(created)
    for member in [demo_member, *rng.sample(buyers, k=min(len(buyers), 9))]:
        for product in rng.sample(active, k=min(len(active), rng.randrange(2, 5))):
            await wishlist.set_heart(member, "product", product["id"], on=True)
        for idea in rng.sample(ideas, k=min(len(ideas), rng.randrange(1, 4))):
            await wishlist.set_heart(member, "idea", idea["id"], on=True)
    await wishlist.set_public(demo_member, True)


IDEA_NOTES = {"voting": "A member's idea still collecting votes: add yours.",
              "greenlit": "Greenlit! The pre-order campaign opens soon.", "campaign": "Pre-order it now in its campaign."}
COLLECTIONS = [
    # (title, cover category, body, published, featured, home position, product names, idea categories, notes)
    ("Rainy day essentials", "outdoor",
     "Autumn in the north means rain sideways. These are the things our members reach for when the sky turns grey, "
     "plus a few ideas still looking for votes.", True, True, 1,
     ["Storm shell jacket", "Canvas roll-top backpack", "Reflective bike light set", "Organic cotton socks, 5-pack"],
     ["apparel", "outdoor"],
     ["Our best seller: taped seams and pit zips.", "Rolls shut; the laptop stays dry.",
      "Seen from 300 m in the dark.", "Dry socks in the bag, always."]),
    ("Cosy evenings at home", "home",
     "Candles, wool and linen: a short list for the darkest months, chosen by the team and voted up by you.",
     True, True, 2, ["Stonewashed linen pillowcases", "Recycled wool beanie", "Enamel camp mug"], ["home"],
     ["Softer with every wash.", "Yes, also indoors.", "Tea on the balcony counts as outdoors."]),
    ("Gifts under 300 kronor", "accessories",
     "Small things that make someone's day, all under 300 SEK.", True, False, 0,
     ["Organic cotton socks, 5-pack", "Enamel camp mug", "Cable organizer roll", "Foldable sit pad"],
     ["accessories"], ["Nobody ever has enough socks.", "", "For the friend whose bag is a cable nest.", ""]),
    ("Summer trail kit", "outdoor", "Work in progress for the spring launch.", False, False, 0,
     ["Packable hip pack", "Foldable sit pad", "Wool felt slippers"], ["outdoor"], ["", "", ""]),
]


async def _collections(rng: random.Random, staff, products: dict, created: dict[str, list[int]],  # noqa: ANN001
                       *, images: bool, tag: str) -> None:
    ideas = await _public_ideas(created)
    for title, category, body, published, featured, position, names, idea_categories, notes in COLLECTIONS:
        cover_key = ""
        if images:
            stored = store_image(cover_image(category, title), filename="cover.png",
                                 max_bytes=get_settings().upload_max_bytes, field="cover")
            cover_key = stored.key
        collection_id = await collections.create_collection(staff, collections.CollectionInput(
            title=title, slug=f"{collections.slugify(title)}{tag}", body=body, published=published,
            featured=featured, home_position=position, cover_key=cover_key))
        items: list[tuple[str, str, str]] = [("product", products[name]["slug"], note)
                                             for name, note in zip(names, notes, strict=True) if name in products]
        if published:  # the funded campaign's product belongs in the featured ones
            items[1:1] = [("product", p["slug"], "A member's idea, funded by its backers: now in the shop.")
                          for p in products.values() if p.get("campaign") and featured and position == 1]
        matching = [i for i in ideas if i["category.slug"] in idea_categories] or ideas
        for slot, idea in zip((1, 3), rng.sample(matching, k=min(len(matching), 2)), strict=False):
            # among the first four: the home page previews four items of each featured collection
            items.insert(min(slot, len(items)), ("idea", str(idea["id"]), IDEA_NOTES[idea["status"]]))
        for kind, ref, note in items:
            await collections.add_item(staff, collection_id, kind=kind, ref=ref, note=note)


# ---- time: orders and reviews spread over the past weeks ---------------------------------------


async def _backdate(plan: list[DemoOrder]) -> None:
    """Every order really happened now; spread them over the past weeks so the order history,
    timelines and the review-request job look like a shop that has been open a while."""

    now = utcnow()
    steps = {"placed": dt.timedelta(0), "paid": dt.timedelta(minutes=2), "shipped": dt.timedelta(days=1, hours=3),
             "delivered": dt.timedelta(days=3, hours=6), "cancelled": dt.timedelta(hours=5),
             "refunded": dt.timedelta(days=6)}
    for order in plan:
        start = now - dt.timedelta(days=order.age_days)
        times = {status: min(start + step, now - dt.timedelta(minutes=1)) for status, step in steps.items()}
        last = start
        for event in await OrderEvent.select(OrderEvent.id, OrderEvent.to_status, OrderEvent.from_status).where(
                OrderEvent.order == order.order_id).order_by(OrderEvent.id):
            when = times.get(event["to_status"], last)
            if event["to_status"] == event["from_status"]:  # a refund note: with a cancellation, or days later
                later = dt.timedelta(minutes=3) if event["to_status"] == "cancelled" else dt.timedelta(days=2)
                when = min(last + later, now - dt.timedelta(minutes=1))
            last = max(when, last)
            await OrderEvent.update({OrderEvent.created_at: last}).where(OrderEvent.id == event["id"])
        row = await Order.select(Order.paid_at, Order.shipped_at, Order.delivered_at, Order.cancelled_at).where(
            Order.id == order.order_id).first()
        values: dict[Any, Any] = {Order.created_at: start, Order.updated_at: last}
        for column, status in ((Order.paid_at, "paid"), (Order.shipped_at, "shipped"),
                               (Order.delivered_at, "delivered"), (Order.cancelled_at, "cancelled")):
            if row[column._meta.name] is not None:
                values[column] = times[status]
        await Order.update(values).where(Order.id == order.order_id)
        await OrderPayment.update({OrderPayment.created_at: times["paid"], OrderPayment.finished_at: times["paid"]}).where(
            OrderPayment.order == order.order_id)
        await Refund.update({Refund.created_at: last}).where(Refund.order == order.order_id)
        await Withdrawal.update({Withdrawal.created_at: last, Withdrawal.refund_due_by: last + dt.timedelta(days=14),
                                 Withdrawal.goods_returned_at: min(last + dt.timedelta(days=3), now)}).where(
            Withdrawal.order == order.order_id)
        arrived = times["shipped" if order.stage == "shipped" else "delivered"]
        for review_id in order.review_ids:
            when = min(arrived + dt.timedelta(days=1, hours=4), now - dt.timedelta(minutes=1))
            await Review.update({Review.created_at: when, Review.updated_at: when}).where(Review.id == review_id)
