"""The points ledger: idempotent awards, reversals, daily caps, cached balances, levels."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from app.accounts.tables import Member
from app.ideas import service as ideas
from app.points import service as points
from app.points.tables import PointsEntry
from tests.factories import make_idea, make_member


async def _balance(member_id: int) -> tuple[int, int]:
    row = await Member.select(Member.points_balance, Member.points_lifetime).where(Member.id == member_id).first()
    return row["points_balance"], row["points_lifetime"]


async def test_award_is_idempotent_even_concurrently():
    member = await make_member("Idem Potent")
    results = await asyncio.gather(*(points.award(member.id, "idea_accepted", key="idea_accepted:1") for _ in range(25)))
    assert sorted(results) == [0] * 24 + [100]
    assert await _balance(member.id) == (100, 100)
    assert await PointsEntry.count().where(PointsEntry.member == member.id) == 1


async def test_reversal_happens_once_and_lowers_lifetime():
    member = await make_member("Reversible")
    await points.award(member.id, "vote", key="vote:1")
    first = await points.reverse(member.id, original_key="vote:1", reason="vote_reversed")
    second = await points.reverse(member.id, original_key="vote:1", reason="vote_reversed")
    assert (first, second) == (-2, 0)
    assert await _balance(member.id) == (0, 0)
    assert await points.reverse(member.id, original_key="vote:404", reason="vote_reversed") == 0


async def test_vote_points_daily_cap_is_fifty():
    author = await make_member("Prolific Author")
    voter = await make_member("Busy Voter")
    staff = await make_member("Cap Staff", staff=True)
    idea_ids = [await make_idea(author, title=f"Idea {n}", staff=staff) for n in range(27)]
    for idea_id in idea_ids:
        await ideas.vote(voter, idea_id)
    balance, _ = await _balance(voter.id)
    assert balance == 50  # 25 votes earn points, the 26th and 27th do not
    # Withdrawing a rewarded vote frees room under the cap for a new vote today.
    await ideas.withdraw_vote(voter, idea_ids[0])
    assert (await _balance(voter.id))[0] == 48
    await ideas.withdraw_vote(voter, idea_ids[-1])  # this vote earned nothing: nothing reversed
    assert (await _balance(voter.id))[0] == 48
    await ideas.vote(voter, idea_ids[-1])
    assert (await _balance(voter.id))[0] == 50


async def test_idea_accepted_awards_author_once():
    author = await make_member("Accepted Author")
    await make_idea(author)
    assert await PointsEntry.count().where((PointsEntry.member == author.id) & (PointsEntry.reason == "idea_accepted")) == 1
    assert (await _balance(author.id))[0] == 100


@given(st.integers(min_value=0, max_value=100_000))
def test_level_for_is_consistent(lifetime):
    progress = points.level_for(lifetime)
    assert progress.level.threshold <= lifetime
    if progress.next_level:
        assert lifetime < progress.next_level.threshold
        assert 0 <= progress.percent < 100
        assert progress.points_to_next == progress.next_level.threshold - lifetime
    else:
        assert progress.level.name == "Tastemaker"


def test_levels_by_lifetime_points():
    assert [points.level_for(n).level.name for n in (0, 249, 250, 1000, 5000, 20000)] == [
        "Newcomer", "Newcomer", "Supporter", "Contributor", "Insider", "Tastemaker"]


async def test_concurrent_redemptions_never_spend_more_than_the_balance():
    from app.errors import FormError
    from app.shop import vouchers
    from app.shop.tables import Voucher

    member = await make_member("Redeemer")
    await points.award(member.id, "adjustment", key="seed-points", points=3500, note="test")

    async def try_redeem():
        try:
            return await points.redeem_voucher(member.id)
        except FormError:
            return None

    results = await asyncio.gather(*(try_redeem() for _ in range(20)))
    assert len([r for r in results if r]) == 3
    assert await Voucher.count().where(Voucher.member == member.id) == 3
    balance, lifetime = await _balance(member.id)
    assert balance == 500 and lifetime == 3500  # spending lowers the balance, not the level
    code = next(r for r in results if r)["code"]
    spent = await asyncio.gather(*(vouchers.spend_voucher(member.id, code, order_id=n) for n in range(1, 6)))
    assert len([s for s in spent if s]) == 1
    await points.give_back_voucher(next(s for s in range(1, 6) if spent[s - 1]))
    assert (await _balance(member.id))[0] == 1500


async def test_referral_points_once_for_the_first_paid_order(client):
    from tests.factories import PASSWORD

    referrer = await make_member("Referrer")
    response = await client.post("/api/v1/auth/signup", json={"email": "friend@example.com", "password": PASSWORD,
                                                            "display_name": "Friend", "referral": referrer.handle})
    assert response.status_code == 202
    friend_id = (await Member.select(Member.id).where(Member.email == "friend@example.com").first())["id"]
    assert await points.reward_referral(friend_id) == 200
    assert await points.reward_referral(friend_id) == 0
    me = await client.post("/api/v1/auth/signup", json={"email": "self@example.com", "password": PASSWORD,
                                                      "display_name": "Self", "referral": "no-such-handle"})
    assert me.status_code == 202
    me_id = (await Member.select(Member.id).where(Member.email == "self@example.com").first())["id"]
    assert await points.reward_referral(me_id) == 0
