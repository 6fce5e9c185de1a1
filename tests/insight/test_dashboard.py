"""The staff dashboard: per-day numbers equal the rows behind them, staff only, a fixed number
of queries whatever the number of days with data."""

from __future__ import annotations

import datetime as dt

from app.campaigns.tables import ChargeAttempt, Pledge
from app.db import raw, utcnow
from app.ideas import service as ideas
from app.insight import service as insight
from app.jobs import service as jobs
from app.mail.tables import EmailMessage
from app.orders.tables import Refund
from app.settings import get_settings
from app.web.templating import money
from tests.campaigns.helpers import make_campaign
from tests.factories import login, make_idea, make_member
from tests.insight.helpers import chart_numbers, day_of, days_ago, move_to
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order
from tests.support.queries import count_queries


async def _staff(client):
    staff = await make_member("Dashboard Staff", staff=True)
    await login(client, staff.email)
    return staff


async def _votes(idea_id: int, days: list[int]) -> None:
    """One vote per entry, cast by a new member and moved to `days_ago(n)`."""
    for n in days:
        voter = await make_member()
        await ideas.vote(voter, idea_id)
        row = (await raw("SELECT id FROM vote WHERE member = {} AND idea = {}", voter.id, idea_id))[0]
        await move_to("vote", row["id"], days_ago(n))


async def _pledge(campaign_id: int, variant_id: int, *, amount: int = 50_000, status: str = "active",
                  card: bool = True, when: dt.datetime | None = None, **extra) -> int:
    member = await make_member()
    rows = await Pledge.insert(Pledge(
        campaign=campaign_id, member=member.id, variant=variant_id, quantity=1, amount=amount, status=status,
        payment_method_id="pm_test" if card else "", created_at=when or utcnow(), **extra,
    )).returning(Pledge.id)
    return rows[0]["id"]


async def test_numbers_per_day_equal_the_rows(client):
    await _staff(client)
    author = await make_member("Idea Author")
    idea_id = await make_idea(author, title="Folding kayak")
    await _votes(idea_id, [0, 0, 2, 2, 2, 9, 45])  # 45 days ago: outside 30, inside 90

    campaign_id, campaign = await make_campaign(goal=50)
    variant = campaign["variants"][0]["id"]
    await _pledge(campaign_id, variant, when=days_ago(1))
    await _pledge(campaign_id, variant, when=days_ago(1))
    await _pledge(campaign_id, variant, when=days_ago(4))
    await _pledge(campaign_id, variant, card=False, status="pending", when=days_ago(4))  # never saved a card
    paid = await _pledge(campaign_id, variant, status="paid", when=days_ago(6))
    await ChargeAttempt.insert(ChargeAttempt(pledge=paid, attempt=1, idempotency_key="pledge-1-1", amount=50_000,
                                             status="paid", finished_at=days_ago(3)))
    await ChargeAttempt.insert(ChargeAttempt(pledge=paid, attempt=2, idempotency_key="pledge-1-2", amount=50_000,
                                             status="declined", finished_at=days_ago(3)))

    buyer = await make_member("Shop Buyer")
    product = {**await make_product("Trail mug", price=20_000), "price": 20_000}
    first = await make_order(buyer, [product], status="paid")
    second = await make_order(buyer, [product], status="paid", quantity=2)
    await make_order(buyer, [product], status="placed")  # never paid
    await move_to("shop_order", first, days_ago(3), "paid_at")
    await move_to("shop_order", second, days_ago(0), "paid_at")
    await Refund.insert(Refund(order=second, amount=5_000, idempotency_key="r1", status="succeeded",
                               created_at=days_ago(0)))
    await Refund.insert(Refund(order=second, amount=7_000, idempotency_key="r2", status="failed",
                               created_at=days_ago(0)))

    page = (await client.get("/staff/dashboard")).text
    votes = chart_numbers(page, "chart-votes")
    assert len(votes) == 30 + 1  # 30 days and the total
    assert (votes[day_of(0)], votes[day_of(2)], votes[day_of(9)], votes[day_of(1)]) == ("2", "3", "1", "0")
    assert votes["Total"] == "6"
    pledges = chart_numbers(page, "chart-pledges")
    assert (pledges[day_of(1)], pledges[day_of(4)], pledges[day_of(6)], pledges["Total"]) == ("2", "1", "1", "4")
    orders = chart_numbers(page, "chart-orders")
    assert (orders[day_of(3)], orders[day_of(0)], orders["Total"]) == ("1", "1", "2")
    revenue = chart_numbers(page, "chart-revenue")
    currency = get_settings().currency
    assert revenue[day_of(3)] == money(50_000 + 20_000, currency)  # the pledge charge and the first order
    assert revenue[day_of(0)] == money(40_000 - 5_000, currency)  # the second order minus the refund
    assert revenue["Total"] == money(105_000, currency)
    assert revenue[day_of(1)] == money(0, currency)

    page_90 = (await client.get("/staff/dashboard?days=90")).text
    votes_90 = chart_numbers(page_90, "chart-votes")
    assert len(votes_90) == 90 + 1 and votes_90[day_of(45)] == "1" and votes_90["Total"] == "7"
    assert 'aria-current="page">Last 90 days' in page_90


async def test_members_and_verified_members_per_day(client):
    staff = await _staff(client)
    late = await make_member("Late Verifier", verified=False)
    await move_to("member", late.id, days_ago(5))
    await move_to("member", late.id, days_ago(2), "email_verified_at")
    never = await make_member("Never Verified", verified=False)
    await move_to("member", never.id, days_ago(5))
    await move_to("member", staff.id, days_ago(2))
    await move_to("member", staff.id, days_ago(2), "email_verified_at")

    series = {s.key: s for s in await insight.daily_series(30)}
    members = dict(zip(series["members"].labels, series["members"].values, strict=True))
    verified = dict(zip(series["verified"].labels, series["verified"].values, strict=True))
    day = lambda n: (utcnow().date() - dt.timedelta(days=n)).isoformat()  # noqa: E731
    assert (members[day(5)], members[day(2)], series["members"].total) == (2, 1, 3)
    assert (verified[day(2)], verified[day(5)], series["verified"].total) == (2, 0, 2)
    page = (await client.get("/staff/dashboard")).text
    assert chart_numbers(page, "chart-members")[day_of(5)] == "2"
    assert "67% of members" in page  # 2 of 3 verified


async def test_dashboard_is_for_staff_only(client):
    anonymous = await client.get("/staff/dashboard")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    member = await make_member("Curious Member")
    await login(client, member.email)
    response = await client.get("/staff/dashboard")
    assert response.status_code == 403
    assert "Revenue" not in response.text
    assert "/staff/dashboard" not in (await client.get("/")).text  # no staff menu either


async def test_bad_period_falls_back_to_30_days(client):
    await _staff(client)
    for bad in ("abc", "7", "-1", "90000000000000000000"):
        response = await client.get(f"/staff/dashboard?days={bad}")
        assert response.status_code == 200
        assert len(chart_numbers(response.text, "chart-votes")) == 31
        assert 'aria-current="page">Last 30 days' in response.text


async def test_staff_menu_links_the_dashboard(client):
    await _staff(client)
    home = (await client.get("/")).text
    panel = home.split('<div class="menu-panel menu-panel-left">')[1]
    assert panel.lstrip().startswith('<a href="/staff/dashboard">Dashboard</a>')


async def test_momentum_campaigns_to_watch_failed_payments_and_queues(client):
    await _staff(client)
    author = await make_member("Momentum Author")
    hot = await make_idea(author, title="Heated gloves")
    cold = await make_idea(author, title="Ice scraper")
    await _votes(hot, [0, 1, 2])
    await _votes(cold, [1, 10, 11, 12, 13])  # more votes, but only one this week

    near_goal, campaign = await make_campaign(goal=4, days=20)
    variant = campaign["variants"][0]["id"]
    await raw("UPDATE campaign SET pledged_units = 3, status = 'live' WHERE id = {}", near_goal)
    ending, _ = await make_campaign(goal=100, days=20)
    await raw("UPDATE campaign SET status = 'live', ends_at = {} WHERE id = {}",
              utcnow() + dt.timedelta(days=1), ending)
    quiet, _ = await make_campaign(goal=100, days=20)
    await raw("UPDATE campaign SET status = 'live' WHERE id = {}", quiet)

    failed = await _pledge(near_goal, variant, amount=12_300, status="payment_failed",
                           failure_message="Your card was declined.", failed_at=utcnow() - dt.timedelta(days=2))
    await jobs.enqueue("noop", {"n": 1})
    await jobs.enqueue("noop", {"n": 2}, run_at=utcnow() - dt.timedelta(hours=1))
    await EmailMessage.insert(EmailMessage(kind="test", subject_ref="t:1", recipient="a@example.com", subject="Hi",
                                           text_body="Hi", html_body="<p>Hi</p>", status="failed"))

    data = await insight.staff_dashboard(30)
    assert [(i["title"], i["recent"]) for i in data["momentum"]] == [("Heated gloves", 3), ("Ice scraper", 1)]
    watched = {c["id"]: c for c in data["campaigns"]}
    assert set(watched) == {near_goal, ending}
    assert watched[near_goal]["percent"] == 75 and watched[ending]["ending_soon"]
    assert data["failed"]["count"] == 1 and data["failed"]["rows"][0]["id"] == failed
    queued = await raw("SELECT COUNT(*) AS n FROM job WHERE status = 'queued'")
    assert data["queues"]["job_queued"] == queued[0]["n"] >= 2
    assert data["queues"]["job_overdue"] >= 1 and data["queues"]["email_failed"] == 1

    page = (await client.get("/staff/dashboard")).text
    failed_section = page.split('id="failed"')[1].split("</section>")[0]
    assert f'href="/staff/campaigns/{near_goal}"' in failed_section
    assert "Your card was declined." in failed_section and money(12_300, "SEK") in failed_section
    watch_section = page.split('id="watch"')[1].split("</section>")[0]
    assert f"/staff/campaigns/{ending}/funnel" in watch_section and f"/staff/campaigns/{quiet}\"" not in watch_section
    assert "Heated gloves" in page.split('id="momentum"')[1].split("</section>")[0]


async def test_query_count_does_not_grow_with_days_of_data(client):
    await _staff(client)
    author = await make_member("Busy Author")
    idea_id = await make_idea(author)
    campaign_id, campaign = await make_campaign(goal=100)
    variant = campaign["variants"][0]["id"]
    buyer = await make_member("Busy Buyer")
    product = {**await make_product("Daily mug", price=10_000), "price": 10_000}

    async def one_day_of_everything(n: int) -> None:
        await _votes(idea_id, [n])
        await _pledge(campaign_id, variant, when=days_ago(n))
        order = await make_order(buyer, [product], status="paid")
        await move_to("shop_order", order, days_ago(n), "paid_at")
        await Refund.insert(Refund(order=order, amount=1_000, idempotency_key=f"q{n}", status="succeeded",
                                   created_at=days_ago(n)))

    await one_day_of_everything(0)
    await client.get("/staff/dashboard")  # warm up (first-request work)
    with count_queries() as one_day:
        assert (await client.get("/staff/dashboard?days=90")).status_code == 200
    for n in range(1, 60, 3):
        await one_day_of_everything(n)
    with count_queries() as many_days:
        page = await client.get("/staff/dashboard?days=90")
    assert chart_numbers(page.text, "chart-votes")["Total"] == "21"
    assert many_days.count == one_day.count, many_days.statements
    assert many_days.count <= 15
