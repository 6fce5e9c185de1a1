"""Property test: random sequences of votes, withdrawals, comments, removals, deletions,
adjustments, redemptions, pledges and their cancellations, voucher purchases and their
cancellations, reviews and hidden reviews keep the ledger's invariants after every step, and
the integrity audit passes after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.accounts.tables import Member
from app.audit import format_report, run_audit
from app.campaigns import service as campaigns
from app.community import service as community
from app.db import raw
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.ideas import service as ideas
from app.orders import fulfilment
from app.orders.tables import Order
from app.points import service as points
from app.points.tables import MemberBadge, PointsEntry
from app.shop import checkout, reviews
from app.shop.checkout import CheckoutInput
from app.shop.tables import Review
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import make_idea, make_member
from tests.shop.helpers import make_product

ADDRESS = {"name": "Prop Buyer", "line1": "Storgatan 1", "postal_code": "111 22", "city": "Stockholm",
           "country": "SE"}

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["vote", "withdraw", "comment", "hide", "delete", "adjust", "redeem", "pledge", "cancel_pledge",
                         "buy", "cancel_order", "review", "hide_review"]),
        st.integers(min_value=0, max_value=3),  # which member
        st.integers(min_value=0, max_value=2),  # which idea / comment
    ),
    min_size=1,
    max_size=40,
)


async def _reset() -> None:
    from tests.conftest import clean_database

    await clean_database()


async def _check_invariants() -> None:
    report = await run_audit()
    assert report.ok, format_report(report)
    members = await Member.select(Member.id, Member.points_balance, Member.points_lifetime)
    for member in members:
        entries = await PointsEntry.select(PointsEntry.points, PointsEntry.reason, PointsEntry.created_at).where(
            PointsEntry.member == member["id"])
        assert member["points_balance"] == sum(e["points"] for e in entries)
        assert member["points_lifetime"] >= member["points_balance"]
        votes_today = sum(e["points"] for e in entries if e["reason"] in ("vote", "vote_reversed"))
        comments_today = sum(e["points"] for e in entries if e["reason"] in ("comment", "comment_removed"))
        assert votes_today <= 50 and comments_today <= 50
    keys = [r["idempotency_key"] for r in await PointsEntry.select(PointsEntry.idempotency_key)]
    assert len(keys) == len(set(keys))
    badges = [(r["member"], r["badge"]) for r in await MemberBadge.select(MemberBadge.member, MemberBadge.badge)]
    assert len(badges) == len(set(badges))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
async def test_ledger_invariants_hold_under_random_operations(stripe, monkeypatch, operations):
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "free_shipping_over", 1)  # so a voucher can pay a whole order
    await _reset()
    staff = await make_member("Prop Staff", staff=True)
    authors = [await make_member(f"Prop Author {n}") for n in range(3)]
    members = [await make_member(f"Prop Member {n}") for n in range(4)]
    idea_ids = [await make_idea(authors[n], title=f"Prop idea {n}", staff=staff) for n in range(3)]
    comments: list[tuple[int, int]] = []  # (comment id, author index)
    world: dict = {}
    for operation, who, which in operations:
        member = members[who]
        try:
            if operation in ("pledge", "cancel_pledge", "buy", "cancel_order", "review", "hide_review"):
                await _shop_step(world, staff, member, operation, which)
                await _check_invariants()
                continue
            if operation == "vote":
                await ideas.vote(member, idea_ids[which])
            elif operation == "withdraw":
                await ideas.withdraw_vote(member, idea_ids[which])
            elif operation == "comment":
                comments.append((await community.add_comment(member, idea_ids[which], f"comment by {who}"), who))
            elif operation == "hide" and comments:
                await community.hide_comment(staff, comments[which % len(comments)][0], "removed in a test")
            elif operation == "delete" and comments:
                comment_id, author = comments[which % len(comments)]
                await community.delete_comment(members[author], comment_id)
            elif operation == "adjust":
                await points.adjust(staff.id, member.id, 400 * (which + 1), "test grant")
            elif operation == "redeem":
                await points.redeem_voucher(member.id)
        except (Conflict, Forbidden, FormError, NotFound):
            pass  # refused moves are part of the game; the invariants must still hold
        await _check_invariants()


async def _shop_step(world: dict, staff, member, operation: str, which: int) -> None:  # noqa: ANN001
    """Pledges through localstripe; purchases paid entirely by a points voucher (so no card is
    needed); cancellations that give points back; reviews by buyers and staff hiding them."""
    if "campaign" not in world:
        campaign_id, campaign = await make_campaign(goal=50, staff=staff)
        world["campaign"] = (campaign_id, [v["id"] for v in campaign["variants"]])
        world["products"] = [await make_product(f"Prop product {n}", price=4_000, variants={"One": 5})
                             for n in range(2)]
    campaign_id, variants = world["campaign"]
    product = world["products"][which % 2]
    if operation == "pledge":
        await pledge_with_card(member, campaign_id, variants[which % 2], quantity=1 + which % 2)
    elif operation == "cancel_pledge":
        pledge = await campaigns.open_pledge_of(member, campaign_id)
        if pledge:
            await campaigns.cancel_pledge(member, pledge["id"])
    elif operation == "buy":
        voucher = next((v for v in await points.vouchers_of(member.id) if v["status"] == "issued"), None)
        if voucher is None:  # earn one: a staff grant, then a redemption (both are ledger steps too)
            await points.adjust(staff.id, member.id, points.VOUCHER_POINTS, "prize")
            voucher = await points.redeem_voucher(member.id)
        placed = await checkout.place_order(member, CheckoutInput(
            lines=[(product["variants"]["One"], 1)], address=dict(ADDRESS), shipping="standard", voucher=voucher["code"]))
        assert placed.status == "paid" and placed.total == 0
    elif operation == "cancel_order":
        order = await Order.select(Order.id).where((Order.member == member.id) & (Order.status == "paid")).first()
        if order:
            await fulfilment.cancel_order(member, order["id"], as_owner=True)
    elif operation == "review":  # a product the member bought when there is one (else refused)
        bought = await raw("SELECT l.product_id FROM order_line l JOIN shop_order o ON o.id = l.\"order\" "
                           "WHERE o.member = {} AND o.status = 'paid' ORDER BY l.id LIMIT 1", member.id)
        await reviews.submit_review(member, bought[0]["product_id"] if bought else product["id"], rating=1 + which * 2)
    elif operation == "hide_review":
        review = await Review.select(Review.id).where(Review.product == product["id"]).first()
        if review:
            await reviews.set_hidden(staff, review["id"], hidden=True, reason="hidden in a test")
