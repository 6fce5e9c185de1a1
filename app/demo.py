"""`crowdmade demo`: a living community to click through (deterministic for a given --seed).

Members, ideas in every state with generated images, votes, points, and pre-order campaigns
at every stage (scheduled, early access, live, goal reached, funded and charged, failed) with
pledges and orders, and the shop (`app/demo_shop.py`: products, orders at every stage, reviews,
questions, wishlists, collections). Everything goes through the real services, so counters,
events, emails and the points ledger agree. Pledges and shop orders need Stripe (localstripe
under `make run`); without it the campaigns are created without pledges and the shop without orders.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import math
import random

from PIL import Image, ImageDraw
from rich.progress import Progress

from app.accounts import service as accounts
from app.accounts.passwords import hash_password
from app.accounts.service import get_member
from app.accounts.tables import Member
from app.campaigns import service as campaigns
from app.campaigns import stretch
from app.campaigns.service import GreenlightTerms, VariantTerms
from app.campaigns.tables import Campaign
from app.community import service as community
from app.db import start_database, stop_database, utcnow
from app.ideas import service as ideas
from app.ideas.tables import Idea
from app.jobs.service import drain
from app.moderation import service as moderation
from app.payments.gateway import gateway
from app.points import service as points
from app.settings import get_settings

DEMO_MEMBER = ("member@crowdmade.test", "welcome-fan-2026")
DEMO_STAFF = ("staff@crowdmade.test", "welcome-staff-2026")
# A member who chose Swedish (pages and emails in Swedish); every third demo member did too.
DEMO_SWEDISH = ("svea@crowdmade.test", "welcome-fan-2026")

FIRST = ["Maja", "Elias", "Alva", "Noah", "Ella", "Hugo", "Alice", "Liam", "Olivia", "William", "Saga", "Lucas",
         "Astrid", "Oscar", "Freja", "Leo", "Ebba", "Adam", "Wilma", "Nils", "Signe", "Viktor", "Ines", "Theo",
         "Juno", "Axel", "Lova", "Emil", "Tove", "Malte"]
LAST = ["Lind", "Berg", "Holm", "Ek", "Strand", "Dahl", "Sjöberg", "Nyström", "Falk", "Åberg", "Lund", "Kvist"]
TOWNS = ["Stockholm", "Göteborg", "Malmö", "Umeå", "Uppsala", "Lund", "Kiruna", "Visby", "Oslo", "Copenhagen"]
BIOS = ["Weekend hiker and rain-gear nerd.", "I sketch bags on the train.", "Bike commuter, all year round.",
        "Collector of good socks.", "Design student who loves useful things.", "Dad of three, needs pockets.",
        "Trail runner. Coffee first.", "Sews my own prototypes.", "Always cold; wants warmer things."]

IDEAS: dict[str, list[tuple[str, str]]] = {
    "apparel": [
        ("Packable rain jacket with pit zips", "A light shell that fits in its own pocket and breathes on the bike"),
        ("Merino hoodie with thumb loops", "Soft wool hoodie for cold mornings and long flights"),
        ("Waterproof commuter trousers", "Trousers that look office-ready and shrug off rain"),
        ("Reflective winter parka", "A warm parka that keeps you visible in the dark months"),
        ("Linen summer shirt with hidden pocket", "Breezy shirt with a zip pocket for your phone"),
        ("Fleece-lined flannel overshirt", "A shirt-jacket for the weeks between seasons"),
        ("Convertible hiking pants", "Zip-off legs, stretch fabric and real pockets"),
        ("Recycled down vest", "Warm core, free arms, made from recycled down"),
        ("Wool base layer set", "Itch-free merino top and leggings for layering"),
        ("Quilted jacket with detachable hood", "A city jacket that packs warmth without bulk"),
    ],
    "bags": [
        ("Roll-top waterproof backpack", "Welded seams, a laptop sleeve and a roll top that seals"),
        ("Modular camera sling", "A sling bag with padded, movable dividers"),
        ("Convertible tote backpack", "Carry it as a tote or wear it as a backpack"),
        ("Bike pannier that becomes a shoulder bag", "Clip it to the rack, unclip and walk into work"),
        ("Weekender duffel with shoe pocket", "A carry-on duffel that keeps shoes away from shirts"),
        ("Minimal hip pack", "Small, light, and big enough for keys, phone and snacks"),
        ("Laptop sleeve with charger pouch", "Slim protection with a pocket for the brick"),
        ("Travel toiletry bag that hangs", "Unzip, hang it up, see everything"),
        ("Kids' school backpack with reflectors", "Light, tough and seen in the dark"),
        ("Foldable grocery backpack", "Folds to palm size, carries a week of food"),
    ],
    "home": [
        ("Weighted knit blanket", "A chunky knit blanket that calms and keeps warm"),
        ("Wall-mounted plant shelf", "A slim shelf for herbs by the window"),
        ("Linen bedding in seasonal colours", "Stonewashed linen that gets better with every wash"),
        ("Modular shoe rack", "Stackable racks that grow with the family"),
        ("Cast-iron mini skillet set", "Three small skillets for eggs, sauces and sides"),
        ("Cotton candy machine for parties", "Spin sugar clouds at home birthday parties"),
        ("Wool felt slippers", "Warm felted slippers with a grippy sole"),
        ("Hanging room divider", "A fabric divider for small flats"),
        ("Drying rack for balconies", "A fold-flat rack that hooks onto railings"),
        ("Candle lantern for windows", "A safe, warm light for dark evenings"),
    ],
    "outdoor": [
        ("Ultralight two-person tent", "Under 1.2 kg with two doors and two vestibules"),
        ("Insulated camp mug with lid", "Keeps coffee hot through a cold sunrise"),
        ("Trail running vest with soft flasks", "Bounce-free vest with room for a jacket"),
        ("Packable sit pad", "A folding foam pad for cold rocks and wet benches"),
        ("Waterproof map case", "See your map, keep it dry"),
        ("Headlamp with red night mode", "Bright on the trail, gentle in the tent"),
        ("Down camp booties", "Warm feet in the evening after a long day"),
        ("Kayak deck bag", "A dry bag that straps onto the deck"),
        ("Foldable trekking poles", "Carbon poles that fold to 35 cm"),
        ("Bike frame bag", "Use the space inside your frame for snacks and tools"),
    ],
    "accessories": [
        ("Organic cotton socks", "Everyday cotton socks that last, in sets of five"),
        ("Merino wool hiking socks", "Cushioned, blister-free socks for long days"),
        ("Touchscreen wool gloves", "Warm gloves that work with your phone"),
        ("Reversible beanie", "Two colours, one beanie, knitted from recycled wool"),
        ("Wide-brim sun hat that packs flat", "Sun protection that survives a backpack"),
        ("Reflective slap bands", "Bright bands for wrists, ankles and bags"),
        ("Leather key organizer", "No more jingling keys in your pocket"),
        ("Wool neck gaiter", "A tube of warmth for windy days"),
        ("Cooling summer bandana", "Soak it, wear it, stay cool"),
        ("Rain hat with chin strap", "A proper rain hat that stays on in the wind"),
    ],
    "tech": [
        ("Solar power bank with lamp", "Charges your phone and lights your tent"),
        ("Cable organizer roll", "A roll-up pouch for cables and chargers"),
        ("Phone mount for bikes", "A quick-release mount that never rattles"),
        ("Noise-cancelling sleep earbuds", "Tiny earbuds for trains, planes and snoring"),
        ("Waterproof phone pouch", "Take photos at the beach without worry"),
        ("Laptop stand that folds flat", "An aluminium stand that fits in a sleeve"),
        ("USB-C hub with SD reader", "Every port a photographer needs"),
        ("Smart bike light with brake signal", "A rear light that brightens when you brake"),
        ("Heated hand warmer and charger", "Warm hands, charged phone"),
        ("Kids' GPS watch", "Simple calls and location for young explorers"),
    ],
}
PALETTES = {
    "apparel": [(194, 65, 12), (251, 191, 36)], "bags": [(15, 118, 110), (167, 243, 208)],
    "home": [(120, 53, 15), (253, 230, 138)], "outdoor": [(22, 101, 52), (190, 242, 100)],
    "accessories": [(109, 40, 217), (244, 114, 182)], "tech": [(30, 64, 175), (125, 211, 252)],
}
DESCRIPTION = (
    "{summary}. I have wanted this for years and never found one that gets the details right.\n\n"
    "What matters: durable materials, a fit that works for many bodies, and small touches like {touch}. "
    "It should be easy to repair and made to last more than a season.\n\n"
    "If enough of us want it, I'd love to see it in two or three colours. Tell me what you would change!"
)
TOUCHES = ["a hanging loop", "a zip garage", "reflective piping", "a hidden pocket", "recycled fabric",
           "a lifetime repair promise", "magnetic closures", "a packable design"]
STATUS_PLAN = (["draft"] * 4 + ["submitted"] * 4 + ["changes_requested"] * 3 + ["rejected"] * 3 + ["archived"] * 5
               + ["greenlit"] * 2 + ["campaign"] * 6 + ["voting"] * 33)

VOTED = ("voting", "archived", "greenlit", "campaign")  # the states whose ideas were open for votes


def product_image(rng: random.Random, category: str, label: str) -> bytes:
    """A pleasant 'product sketch': a gradient, soft shapes and the idea's initial."""
    top, bottom = PALETTES[category]
    width, height = 800, 600
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    for _ in range(5):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(40, 180)
        shade = tuple(min(255, c + 40) for c in bottom)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=shade, width=6)
    draw.rounded_rectangle([250, 170, 550, 430], radius=48, fill=(255, 255, 255), outline=top, width=8)
    draw.text((400, 300), label[:1].upper(), fill=top, font_size=120, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def _already_loaded() -> bool:
    return await Member.exists().where(Member.email == DEMO_MEMBER[0])


async def _free_tag() -> str:
    """No suffix on a fresh database; with --reset, the first "-N" whose demo emails are both free.

    Derived from the database, not the seed, so loading again and again never collides.
    """

    if not await _already_loaded():
        return ""
    number = 2
    while await Member.exists().where(Member.email.is_in(
            [DEMO_MEMBER[0].replace("@", f"-{number}@"), DEMO_STAFF[0].replace("@", f"-{number}@")])):
        number += 1
    return f"-{number}"


async def _free_identity(email: str, handle: str) -> tuple[str, str]:
    """The email and handle, with a suffix if a real member already uses either."""

    suffix, base_email, base_handle = 1, email, handle
    while await Member.exists().where((Member.email == email) | (Member.handle == handle)):
        suffix += 1
        email, handle = base_email.replace("@", f"-{suffix}@"), f"{base_handle[:24]}-{suffix}"
    return email, handle


async def load_demo(*, seed: int = 42, scale: int = 1, force: bool = False, manage_database: bool = True,
                    images: bool = True, progress: bool = True) -> bool:
    if manage_database:
        await start_database()
    try:
        if await _already_loaded() and not force:
            return False
        await _load(random.Random(seed), scale, images=images, progress=progress)
        return True
    finally:
        if manage_database:
            await stop_database()


async def _load(rng: random.Random, scale: int, *, images: bool, progress: bool) -> None:
    import app.handlers  # noqa: F401  (the jobs the demo runs at the end)

    now = utcnow()
    tag = await _free_tag()
    member_hash = hash_password(DEMO_MEMBER[1])

    with Progress(transient=True, disable=not progress) as bar:
        count, plan = 30 * scale, STATUS_PLAN * scale
        # One step per member, per idea created, per idea voted on, one for campaigns, community and
        # emails, and one for the shop.
        voted = sum(status in VOTED for status in plan)
        task = bar.add_task("Demo data", total=count + len(plan) + voted + 2)
        staff_id = await accounts.create_staff(email=DEMO_STAFF[0].replace("@", f"{tag}@"), password=DEMO_STAFF[1],
                                               display_name="Sam Staff", admin=True)
        staff = await accounts.get_member(staff_id)

        members = []
        for n in range(count):
            first, last = FIRST[n % len(FIRST)], LAST[(n * 7 + n // len(FIRST)) % len(LAST)]
            name = f"{first} {last}"
            email = (DEMO_MEMBER[0].replace("@", f"{tag}@") if n == 0 else DEMO_SWEDISH[0].replace("@", f"{tag}@")
                     if n == 1 else f"{first.lower()}.{n}{tag}@crowdmade.test")
            email, handle = await _free_identity(email, f"{first.lower()}-{n}{tag}")
            verified = n == 0 or n % 11 != 5
            rows = await Member.insert(Member(
                email=email, display_name={0: "Maja Member", 1: "Svea Medlem"}.get(n, name), handle=handle,
                locale="sv" if n % 3 == 1 else "en",
                password_hash=member_hash, bio=rng.choice(BIOS) if n == 0 or rng.random() < 0.6 else "",
                location=rng.choice(TOWNS) if n == 0 or rng.random() < 0.6 else "",
                email_verified_at=(now - dt.timedelta(days=rng.randrange(20, 60))) if verified else None,
                created_at=now - dt.timedelta(days=rng.randrange(25, 90)),
            )).returning(Member.id)
            if verified:
                await points.award(rows[0]["id"], "signup_verified", key=f"signup_verified:{rows[0]['id']}")
            members.append(await accounts.get_member(rows[0]["id"]))
            bar.advance(task)
        demo_member = members[0]
        await accounts.update_profile(demo_member, display_name="Maja Member", handle=demo_member.handle,
                                      bio="Weekend hiker and rain-gear nerd.", location="Umeå")

        catalogue = [(cat, title, summary) for cat, items in IDEAS.items() for title, summary in items]
        rng.shuffle(catalogue)
        created: dict[str, list[int]] = {}
        demo_owned = {"draft", "submitted", "changes_requested", "voting"}
        authors = [m for m in members[1:] if m.verified]
        for index, status in enumerate(plan):
            bar.advance(task)
            category, title, summary = catalogue[index % len(catalogue)]
            if index >= len(catalogue):
                title = f"{title} ({index // len(catalogue) + 1})"
            author = demo_member if status in demo_owned and status not in created else rng.choice(authors)
            uploads = []
            if images and rng.random() < 0.85:
                uploads = [(f"sketch-{index}-{k}.png", product_image(rng, category, title)) for k in range(rng.choice((1, 1, 2, 3)))]
            data = ideas.IdeaInput(title=title, summary=summary, category=category, uploads=uploads,
                                   description=DESCRIPTION.format(summary=summary, touch=rng.choice(TOUCHES)))
            idea_id = await ideas.create_draft(author, data)
            created.setdefault(status, []).append(idea_id)
            age = dt.timedelta(days=rng.uniform(1, 25))
            await Idea.update({Idea.created_at: now - age}).where(Idea.id == idea_id)
            if status == "draft":
                continue
            await ideas.submit(author, idea_id)
            if status == "submitted":
                continue
            action = {"changes_requested": "request_changes", "rejected": "reject"}.get(status, "approve")
            message = {"request_changes": "Lovely idea! Could you add a sketch and say which sizes you need?",
                       "reject": "Thanks! This one is too close to a product we already sell."}.get(action, "")
            await ideas.review(staff, idea_id, action, message)
            if action == "approve":
                started = now - age + dt.timedelta(hours=6)
                await Idea.update({Idea.voting_starts_at: started, Idea.voting_ends_at: started + dt.timedelta(days=30),
                                   Idea.hot_score: ideas.hot_score(0, started)}).where(Idea.id == idea_id)

        voters = [m for m in members if m.verified]
        for status in VOTED:
            for position, idea_id in enumerate(created.get(status, [])):
                bar.advance(task)
                idea = await Idea.select(Idea.author, Idea.voting_starts_at).where(Idea.id == idea_id).first()
                wanted = min(len(voters) - 1, int(22 / math.sqrt(position + 1) * rng.uniform(0.6, 1.3)))
                if status in ("greenlit", "campaign"):
                    wanted = max(wanted, 12)
                for voter in rng.sample(voters, k=min(len(voters), wanted + 1)):
                    if voter.id != idea["author"] and wanted > 0:
                        await ideas.vote(voter, idea_id)
                        wanted -= 1
        for idea_id in created.get("archived", []):
            await Idea.update({Idea.voting_ends_at: now - dt.timedelta(hours=1)}).where(Idea.id == idea_id)
            await ideas.close_voting(idea_id)
        for idea_id in created.get("greenlit", []):
            await ideas.move_idea(idea_id, ideas.IdeaStatus.GREENLIT, actor_id=staff.id, message="Greenlit: campaign coming soon")

        await _campaigns(rng, staff, demo_member, voters, created.get("campaign", []), now)
        await _community(rng, staff, demo_member, voters, created)
        await drain(max_rounds=200)  # settles the funded campaign: its pre-orders exist before the shop opens
        bar.advance(task)
        from app.demo_shop import load_shop  # here: demo_shop imports this module's palettes and towns

        await load_shop(rng, staff, demo_member, members, created, images=images, tag=tag)
        await drain(max_rounds=200)
        bar.advance(task)


STRETCH_GOALS = {  # stage -> (metric, threshold, title, description): reached ones and ones still to reach
    "live": [("units", "10", "Reflective piping", "Piping on the seams that lights up in headlights."),
             ("units", "40", "A second colour: forest green", "Every backer may switch to green in the survey."),
             ("backers", "30", "Free repair kit", "Patches and thread in the box.")],
    "goal_reached": [("units", "10", "Gift box for every backer", "")],
    "early_access": [("amount", "20000", "Organic cotton lining", "At 20,000 kr pledged the lining goes organic.")],
    "funded": [("units", "7", "Embroidered logo", "Instead of a printed one.")],
}


async def _campaigns(rng: random.Random, staff, demo_member, voters: list, idea_ids: list[int], now: dt.datetime) -> None:  # noqa: ANN001

    stages = [
        # (stage, goal, units wanted, early bird, starts in days)
        ("live", 24, 14, True, 0),
        ("goal_reached", 8, 11, False, 0),
        ("early_access", 20, 3, True, 0),
        ("scheduled", 30, 0, False, 3),
        ("funded", 6, 8, False, 0),
        ("failed", 40, 4, False, 0),
    ]
    stripe_ready = bool(get_settings().stripe_secret_key)
    sizes = [VariantTerms("S", 15), VariantTerms("M"), VariantTerms("L"), VariantTerms("XL", 10)]
    for idea_id, (stage, goal, units, early_bird, starts_in) in zip(idea_ids, stages, strict=False):
        terms = GreenlightTerms(
            price=str(rng.choice((349, 499, 699, 899, 1290))), goal_units=goal, duration_days=rng.choice((21, 30, 45)),
            early_bird_price="299" if early_bird else "", early_bird_units=5 if early_bird else 0,
            starts_at=now + dt.timedelta(days=starts_in) if starts_in else None,
            estimated_delivery=(now + dt.timedelta(days=150)).date().isoformat(),
            variants=sizes if rng.random() < 0.7 else [VariantTerms("One size")],
        )
        try:
            campaign_id = await campaigns.greenlight(staff, idea_id, terms, now=now,
                                                     early_access_hours=24 if stage == "early_access" else 0)
        except Exception:  # the demo never stops on one bad campaign
            continue
        for metric, threshold, title, description in STRETCH_GOALS.get(stage, ()):  # unlocked by the pledges below
            await stretch.add_goal(staff, campaign_id, stretch.GoalInput(metric, threshold, title, description))
        if not stripe_ready or stage in ("scheduled", "early_access"):
            continue
        campaign = await campaigns.get_campaign(campaign_id)
        backers = [demo_member] + rng.sample(voters[1:], k=min(len(voters) - 1, units + 2))
        pledged = 0
        for backer in backers:
            if pledged >= units:
                break
            quantity = 1 if rng.random() < 0.8 else 2
            variant = rng.choice([v for v in campaign["variants"] if v["left"] is None or v["left"] > 2])
            try:
                await _pledge(backer, campaign_id, variant["id"], quantity)
                pledged += quantity
            except Exception:  # sold out or already backing: skip this backer
                continue
        if stage in ("funded", "failed"):
            await campaigns.close_campaign(campaign_id, actor_id=staff.id, early=True)


COMMENTS = [
    "I would buy this in a heartbeat!", "Please make it in a darker colour too.", "What would it weigh?",
    "Love the idea. A version for kids would be great.", "This is exactly what I have been looking for.",
    "Could the zips be waterproof?", "Take my money!", "Would it come in XXL?", "My partner needs this.",
    "How about recycled materials?", "I had one like this years ago and it broke; make it sturdy please.",
    "Den här skulle jag köpa direkt!", "Finns den i en mörkare färg också?", "Hur mycket skulle den väga?",
]
REPLIES = ["Good point!", "Agreed, +1 to that.", "Yes, and pockets!", "I was thinking the same.",
           "The creator answered this in the updates."]


async def _community(rng: random.Random, staff, demo_member, voters: list, created: dict) -> None:  # noqa: ANN001
    """Comments with replies and a mention, reports waiting in the moderation queue (a spam comment,
    an idea a visitor says is illegal), a removed comment whose appeal was upheld, follows, creator
    updates."""

    public = created.get("voting", [])[:12] + created.get("campaign", []) + created.get("greenlit", [])
    for idea_id in public:
        first = None
        for _ in range(rng.randrange(1, 5)):
            commenter = rng.choice(voters)
            body = rng.choice(COMMENTS)
            if rng.random() < 0.2:
                body += f" @{demo_member.handle} what do you think?"
            comment_id = await community.add_comment(commenter, idea_id, body)
            first = first or (comment_id, commenter)
        if first and rng.random() < 0.6:
            replier = rng.choice([v for v in voters if v.id != first[1].id])
            await community.add_comment(replier, idea_id, rng.choice(REPLIES), parent_id=first[0])
    if public:
        spammer = rng.choice(voters[1:])
        spam_id = await community.add_comment(spammer, public[0], "Cheap watches at example.invalid!!!")
        others = [v for v in voters if v.id != spammer.id]
        for reporter in rng.sample(others, k=min(3, len(others))):
            await moderation.report(reporter, "comment", spam_id, moderation.NoticeInput(
                category="rules", reason="Spam: an advert for watches, nothing to do with the idea.", good_faith=True))
        await moderation.report(None, "idea", public[-1], moderation.NoticeInput(
            category="illegal", reason="The photo looks like a registered trademark logo of another brand.",
            name="Eva Visitor", email="eva.visitor@example.com", good_faith=True), client_ip="192.0.2.10")
        voting = created.get("voting", [])
        if len(voting) > 13:  # one idea copied another brand's design: reported, and removed with reasons
            await moderation.report(None, "idea", voting[-1], moderation.NoticeInput(
                category="illegal", reason="This is a copy of a jacket another company sells under its own design right.",
                email="legal@example.com", good_faith=True), client_ip="192.0.2.11")
            await moderation.decide(staff, "idea", voting[-1], action="remove", ground="illegal", statement=(
                "The design copies a registered design of another company (Design Protection Act); "
                "ideas must be the community's own."))
        # A rude comment was removed with a statement of reasons; its author appealed, and staff upheld it.
        rude_author = rng.choice(others)
        rude_id = await community.add_comment(rude_author, public[1 % len(public)], "Whoever designed this has no taste, idiots.")
        decision = await moderation.decide(staff, "comment", rude_id, action="remove", ground="rules", statement=(
            "Insulting other members breaks rule 2 of our community rules: be kind, criticise designs, not people."))
        await moderation.appeal(rude_author, decision["id"], "It was a joke between friends, nobody was hurt.")
        await moderation.answer_appeal(staff, decision["id"], outcome="upheld", answer=(
            "We read it again: calling people idiots is an insult whatever the intent, so the comment stays removed."))
    for idea_id in public[:6]:
        await community.follow(demo_member, "idea", idea_id)
    campaigns = await Campaign.select(Campaign.id, Campaign.idea, Campaign.status).where(
        Campaign.status.is_in(["live", "charging", "early_access"]))
    for campaign in campaigns:
        idea = await Idea.select(Idea.author).where(Idea.id == campaign["idea"]).first()

        author = await get_member(idea["author"])
        await community.post_update(author, campaign["id"], title="Thank you, backers!",
                                    body="We picked the fabric with the factory this week. Samples arrive next month; "
                                         "we'll share photos here.", visibility="public")
        if campaign["status"] == "charging":
            await community.post_update(staff, campaign["id"], title="Production starts",
                                        body="Cards are charged and the factory has our order. Backers: sizes are final now.",
                                        visibility="backers")


async def _pledge(member, campaign_id: int, variant_id: int, quantity: int) -> None:  # noqa: ANN001
    """A pledge with a test card saved the way Stripe.js would."""

    start = await campaigns.start_pledge(member, campaign_id, variant_id=variant_id, quantity=quantity, consent=True)
    client = gateway().client
    method = await client.v1.payment_methods.create_async(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    await client.v1.setup_intents.confirm_async(start.client_secret.split("_secret_")[0],
                                                params={"payment_method": method.id})
    await campaigns.confirm_pledge(member, start.pledge_id)


if __name__ == "__main__":
    asyncio.run(load_demo())
