"""Property test: random sequences of votes, withdrawals, comments, removals, deletions,
adjustments and redemptions keep the ledger's invariants after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.accounts.tables import Member
from app.community import service as community
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.ideas import service as ideas
from app.points import service as points
from app.points.tables import MemberBadge, PointsEntry
from tests.factories import make_idea, make_member

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["vote", "withdraw", "comment", "hide", "delete", "adjust", "redeem"]),
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
async def test_ledger_invariants_hold_under_random_operations(operations):
    await _reset()
    staff = await make_member("Prop Staff", staff=True)
    authors = [await make_member(f"Prop Author {n}") for n in range(3)]
    members = [await make_member(f"Prop Member {n}") for n in range(4)]
    idea_ids = [await make_idea(authors[n], title=f"Prop idea {n}", staff=staff) for n in range(3)]
    comments: list[tuple[int, int]] = []  # (comment id, author index)
    for operation, who, which in operations:
        member = members[who]
        try:
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
