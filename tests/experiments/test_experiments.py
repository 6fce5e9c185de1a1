"""A/B experiments: staff pages, the variant shown, exposures and conversions counted once."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

from app.db import utcnow
from app.experiments import service
from app.experiments.service import ExperimentInput, RequestExperiments
from app.experiments.tables import ExperimentExposure
from app.ideas import service as ideas
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import csrf_from, login, make_idea, make_member

DEFAULT_LABEL = "Pre-order: continue to card"
VARIANTS = [("Pre-order now", "50"), ("Back this project", "50")]


class FakeRequest:
    """Just what RequestExperiments reads from a request (a visitor's page render)."""

    def __init__(self, cookies: dict | None = None, member=None) -> None:
        self.scope = {"state": {"member": member}}
        self.cookies = cookies or {}


async def _experiment(key: str = "pledge_button", goal: str = "pledge", *, start: bool = True,
                      variants=VARIANTS) -> dict:
    staff = await make_member("Experiment Staff", staff=True)
    await service.create_experiment(staff, ExperimentInput(key=key, title="Pledge button text", goal=goal,
                                                           variants=list(variants)))
    if start:
        await service.start_experiment(staff, key)
    return await service.get_experiment(key)


def _members_by_variant(members, key: str = "pledge_button", variants=VARIANTS) -> dict[str, list]:
    spec = [{"name": n, "weight": int(w)} for n, w in variants]
    grouped: dict[str, list] = {}
    for member in members:
        grouped.setdefault(service.assign(key, f"m:{member.id}", spec), []).append(member)
    return grouped


def _button(html: str) -> str:
    match = re.search(r'<form method="post" action="/campaigns/\d+/pledge".*?<button[^>]*type="submit">([^<]+)</button>',
                      html, re.S)
    assert match, "no pledge button on the page"
    return match.group(1).strip()


async def _exposures(experiment_id: int) -> list[dict]:
    return await ExperimentExposure.select().where(ExperimentExposure.experiment == experiment_id)


# ---- staff pages -----------------------------------------------------------------------------------


async def test_only_staff_reach_the_experiment_pages(client):
    assert (await client.get("/staff/experiments", follow_redirects=False)).status_code in (302, 303, 401)
    member = await make_member("Curious Member")
    await login(client, member.email)
    assert (await client.get("/staff/experiments")).status_code == 403
    token = csrf_from((await client.get("/")).text)
    response = await client.post("/staff/experiments", data={"_csrf_token": token, "key": "x1", "title": "X"})
    assert response.status_code == 403


async def test_staff_create_start_read_stop_ship_and_delete(client):
    staff = await make_member("Sam Staff", staff=True)
    await login(client, staff.email)
    page = await client.get("/staff/experiments")
    assert page.status_code == 200 and "No experiments yet" in page.text
    token = csrf_from(page.text)

    bad = await client.post("/staff/experiments", data={
        "_csrf_token": token, "key": "Pledge Button!", "title": "", "goal": "nonsense",
        "variant_name_0": "Only one", "variant_weight_0": "50"})
    assert bad.status_code == 400
    assert "lowercase letters, digits" in bad.text
    assert "Give the experiment a title." in bad.text
    assert "Choose the event that counts" in bad.text
    assert "at least two variants" in bad.text
    assert 'value="Only one"' in bad.text  # what was typed stays
    bad_weight = await client.post("/staff/experiments", data={
        "_csrf_token": token, "key": "pledge_button", "title": "Button", "goal": "pledge",
        "variant_name_0": "A", "variant_weight_0": "50", "variant_name_1": "a", "variant_weight_1": "5",
        "variant_name_2": "C", "variant_weight_2": "fifty"})
    assert bad_weight.status_code == 400
    assert "whole number from 1 to 1000" in bad_weight.text and "is used twice" in bad_weight.text
    # Honest prices: a variant may test words, never a price or a discount per person.
    for priced in ("Pre-order for 399 kr", "Save 10%", "Rea: back it now", "Lower price today"):
        refused = await client.post("/staff/experiments", data={
            "_csrf_token": token, "key": "pledge_button", "title": "Button", "goal": "pledge",
            "variant_name_0": "Pre-order now", "variant_weight_0": "50", "variant_name_1": priced, "variant_weight_1": "50"})
        assert refused.status_code == 400 and "experiments may not vary prices or discounts" in refused.text, priced

    created = await client.post("/staff/experiments", data={
        "_csrf_token": token, "key": "pledge_button", "title": "Pledge button text", "goal": "pledge",
        "description": "Plain words convert better.",
        "variant_name_0": "Pre-order now", "variant_weight_0": "50",
        "variant_name_1": "Back this project", "variant_weight_1": "50"}, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"] == "/staff/experiments/pledge_button"
    again = await client.post("/staff/experiments", data={
        "_csrf_token": token, "key": "pledge_button", "title": "Again", "goal": "vote",
        "variant_name_0": "A", "variant_name_1": "B"})
    assert again.status_code == 400 and "exists already" in again.text

    detail = await client.get("/staff/experiments/pledge_button")
    assert "Draft" in detail.text and "Start experiment" in detail.text
    await client.post("/staff/experiments/pledge_button/start", data={"_csrf_token": token})
    detail = await client.get("/staff/experiments/pledge_button")
    assert "Running" in detail.text and "Stop and ship" in detail.text
    assert "Too few exposures" in detail.text  # nobody has seen it yet
    assert (await client.get("/staff/experiments/no_such_thing")).status_code == 404

    wrong = await client.post("/staff/experiments/pledge_button/stop", data={"_csrf_token": token, "winner": "Nope"})
    assert wrong.status_code == 400 and "Choose the variant everyone should see" in wrong.text
    await client.post("/staff/experiments/pledge_button/stop", data={"_csrf_token": token, "winner": "Back this project"})
    detail = await client.get("/staff/experiments/pledge_button")
    assert "Stopped" in detail.text and "Shipped: everyone now sees" in detail.text
    listing = await client.get("/staff/experiments")
    assert "Pledge button text" in listing.text and "shipped “Back this project”" in listing.text

    deleted = await client.post("/staff/experiments/pledge_button/delete", data={"_csrf_token": token},
                                follow_redirects=False)
    assert deleted.status_code == 303
    assert (await client.get("/staff/experiments/pledge_button")).status_code == 404


async def test_a_running_experiment_cannot_be_deleted_or_started_twice(client):
    staff = await make_member("Sam Staff", staff=True)
    await _experiment()
    await login(client, staff.email)
    token = csrf_from((await client.get("/staff/experiments")).text)
    refused = await client.post("/staff/experiments/pledge_button/delete", data={"_csrf_token": token}, follow_redirects=True)
    assert "Stop the experiment before deleting it." in refused.text
    refused = await client.post("/staff/experiments/pledge_button/start", data={"_csrf_token": token}, follow_redirects=True)
    assert "Only a draft experiment can be started." in refused.text


# ---- what members see, and exposures --------------------------------------------------------------


async def test_members_see_their_variant_consistently_and_are_exposed_once(client, stripe):
    _, campaign = await make_campaign(goal=10)
    experiment = await _experiment()
    members = [await make_member(f"Backer {n}") for n in range(8)]
    grouped = _members_by_variant(members)
    assert set(grouped) == {"Pre-order now", "Back this project"}
    page = f"/ideas/{campaign['idea']}"
    for name in ("Pre-order now", "Back this project"):
        member = grouped[name][0]
        await login(client, member.email)
        assert _button((await client.get(page)).text) == name
        assert _button((await client.get(page)).text) == name  # a second visit: the same variant
        client.cookies.clear()
    rows = await _exposures(experiment["id"])
    assert sorted((r["subject"], r["variant"]) for r in rows) == sorted(
        (f"m:{grouped[n][0].id}", n) for n in ("Pre-order now", "Back this project"))


async def test_nothing_is_exposed_where_the_variant_is_not_shown(client):
    _, campaign = await make_campaign(goal=10)
    experiment = await _experiment()
    visitor_page = await client.get(f"/ideas/{campaign['idea']}")
    assert "Log in to pre-order" in visitor_page.text  # a visitor sees no pledge button
    await client.get("/ideas")
    assert await _exposures(experiment["id"]) == []
    assert "cm_ab" not in visitor_page.headers.get("set-cookie", "")


async def test_draft_and_stopped_experiments_show_the_default_or_the_winner_without_writes(client):
    _, campaign = await make_campaign(goal=10)
    member = await make_member("Steady Backer")
    await login(client, member.email)
    page = f"/ideas/{campaign['idea']}"
    assert _button((await client.get(page)).text) == DEFAULT_LABEL  # no experiment at all
    experiment = await _experiment(start=False)
    assert _button((await client.get(page)).text) == DEFAULT_LABEL  # a draft changes nothing
    staff = await make_member("Ship Staff", staff=True)
    await service.start_experiment(staff, "pledge_button")
    await service.stop_experiment(staff, "pledge_button", "Back this project")
    assert _button((await client.get(page)).text) == "Back this project"
    assert await _exposures(experiment["id"]) == []


async def test_a_visitor_keeps_the_variant_after_signing_up_and_converts(client):
    experiment = await _experiment(key="signup_pitch", goal="signup")
    visitor = RequestExperiments(FakeRequest())
    await visitor.prepare()
    shown = visitor.variant("signup_pitch", "default")
    assert shown in ("Pre-order now", "Back this project")
    await visitor.flush()
    cookie = visitor.cookie_header()
    assert cookie and cookie.startswith("cm_ab=") and "HttpOnly" in cookie and "Max-Age=" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    subject = service.subject_from_cookie(value)

    client.cookies.set("cm_ab", value)
    token = csrf_from((await client.get("/signup")).text)
    response = await client.post("/signup", data={"_csrf_token": token, "email": "vera.visitor@example.com",
                                                  "password": "a long enough passphrase 2026",
                                                  "display_name": "Vera Visitor"}, follow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    rows = await _exposures(experiment["id"])
    assert [(r["subject"], r["variant"]) for r in rows] == [(subject, shown)]
    assert rows[0]["converted_at"] is not None  # the sign-up converted the visitor who saw the variant

    from app.accounts.tables import Member

    member = await Member.select(Member.id, Member.ab_subject).where(Member.email == "vera.visitor@example.com").first()
    assert member["ab_subject"] == subject
    # Logged in now: the same subject, so the same variant, and still one exposure.
    again = RequestExperiments(FakeRequest(member=await _current(member["id"])))
    await again.prepare()
    assert again.variant("signup_pitch", "default") == shown
    await again.flush()
    assert again.cookie_header() is None
    assert len(await _exposures(experiment["id"])) == 1


async def _current(member_id: int):
    from app.accounts import service as accounts

    return await accounts.get_member(member_id)


async def test_login_keeps_the_visitors_subject_once(client):
    member = await make_member("Logging In")
    value = service.new_visitor_cookie_value()
    client.cookies.set("cm_ab", value)
    await login(client, member.email)
    assert await service.member_subject(member.id) == service.subject_from_cookie(value)
    # Another browser later: the member's subject no longer changes.
    client.cookies.clear()
    client.cookies.set("cm_ab", service.new_visitor_cookie_value())
    await login(client, member.email)
    service._member_subjects.clear()
    assert await service.member_subject(member.id) == service.subject_from_cookie(value)
    # Without any cookie, a member is "m:<id>" for good.
    other = await make_member("No Cookie")
    client.cookies.clear()
    await login(client, other.email)
    assert await service.member_subject(other.id) == f"m:{other.id}"


# ---- conversions ---------------------------------------------------------------------------------


async def test_a_vote_converts_an_exposed_member_once_and_nobody_else(client):
    experiment = await _experiment(key="vote_button", goal="vote")
    author = await make_member("Idea Author")
    ideas_ = [await make_idea(author, title=f"Idea {n}") for n in range(2)]
    seen, unseen = await make_member("Saw It"), await make_member("Never Saw It")
    ctx = RequestExperiments(FakeRequest(member=seen))
    await ctx.prepare()
    ctx.variant("vote_button")
    await ctx.flush()
    await ideas.vote(seen, ideas_[0])
    await ideas.vote(unseen, ideas_[0])
    rows = await _exposures(experiment["id"])
    assert len(rows) == 1 and rows[0]["subject"] == f"m:{seen.id}" and rows[0]["converted_at"] is not None
    first = rows[0]["converted_at"]
    await ideas.vote(seen, ideas_[1])  # a second goal event does not convert again
    assert (await _exposures(experiment["id"]))[0]["converted_at"] == first


async def test_an_event_before_the_exposure_does_not_convert():
    experiment = await _experiment(key="late", goal="vote")
    member = await make_member("Late Viewer")
    await service.record_exposures([(experiment["id"], f"m:{member.id}", "Pre-order now")])
    earlier = utcnow() - dt.timedelta(minutes=5)
    assert await service.record_goal("vote", member_id=member.id, now=earlier) == 0
    assert await service.record_goal("pledge", member_id=member.id) == 0  # another goal
    assert await service.record_goal("vote", member_id=member.id) == 1


async def test_a_pledge_converts_and_the_results_page_shows_it(client, stripe):
    idea_id, campaign = await make_campaign(goal=10)
    experiment = await _experiment()
    backer = await make_member("Bea Backer")
    await login(client, backer.email)
    shown = _button((await client.get(f"/ideas/{idea_id}")).text)
    await pledge_with_card(backer, campaign["id"], campaign["variants"][0]["id"])
    rows = await _exposures(experiment["id"])
    assert rows[0]["variant"] == shown and rows[0]["converted_at"] is not None

    staff = await make_member("Results Staff", staff=True)
    client.cookies.clear()
    await login(client, staff.email)
    page = await client.get("/staff/experiments/pledge_button")
    row = re.search(rf'<tr data-variant="{re.escape(shown)}">(.*?)</tr>', page.text, re.S).group(1)
    assert re.search(r'data-testid="exposures">1<', row) and re.search(r'data-testid="conversions">1<', row)
    assert "100.0 %" in row
    assert "Too few conversions" in page.text


async def test_add_to_cart_converts_members_and_visitors():
    from app.shop import cart
    from tests.shop.helpers import make_product

    experiment = await _experiment(key="product_order", goal="add_to_cart")
    product = await make_product(variants={"M": 5})
    member = await make_member("Cart Member")
    visitor_subject = service.subject_from_cookie(service.new_visitor_cookie_value())
    await service.record_exposures([(experiment["id"], f"m:{member.id}", "Pre-order now"),
                                    (experiment["id"], visitor_subject, "Back this project")])
    await cart.add_to_cart(f"m:{member.id}", product["variants"]["M"], 1, member_id=member.id)
    await cart.add_to_cart("a.visitor-session", product["variants"]["M"], 1, ab_subject=visitor_subject)
    rows = await _exposures(experiment["id"])
    assert all(r["converted_at"] is not None for r in rows) and len(rows) == 2


async def test_a_stopped_experiment_neither_exposes_nor_converts():
    experiment = await _experiment(key="over", goal="vote")
    member = await make_member("After The End")
    await service.record_exposures([(experiment["id"], f"m:{member.id}", "Pre-order now")])
    staff = await make_member("Stop Staff", staff=True)
    await service.stop_experiment(staff, "over", "Pre-order now")
    late = await make_member("Too Late")
    # Another process whose cache still says "running" writes nothing either.
    assert await service.record_exposures([(experiment["id"], f"m:{late.id}", "Pre-order now")]) == 0
    assert await service.record_goal("vote", member_id=member.id) == 0
    assert len(await _exposures(experiment["id"])) == 1


# ---- exactness under concurrency ------------------------------------------------------------------


async def test_fifty_concurrent_exposures_of_one_subject_make_one_row():
    experiment = await _experiment(key="burst", goal="vote")
    member = await make_member("Many Tabs")

    async def open_page() -> None:
        ctx = RequestExperiments(FakeRequest(member=member))
        await ctx.prepare()
        ctx.variant("burst")
        await ctx.flush()

    await asyncio.gather(*(open_page() for _ in range(50)))
    written = await asyncio.gather(*(
        service.record_exposures([(experiment["id"], f"m:{member.id}", "Pre-order now")]) for _ in range(50)))
    assert sum(written) == 0  # the pages already wrote the one row
    rows = await _exposures(experiment["id"])
    assert len(rows) == 1


async def test_concurrent_conversions_convert_once():
    experiment = await _experiment(key="double_click", goal="vote")
    member = await make_member("Double Clicker")
    await service.record_exposures([(experiment["id"], f"m:{member.id}", "Back this project")])
    results = await asyncio.gather(*(service.record_goal("vote", member_id=member.id) for _ in range(30)))
    assert sum(results) == 1
    rows = await _exposures(experiment["id"])
    assert len(rows) == 1 and rows[0]["converted_at"] is not None
