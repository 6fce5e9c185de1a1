"""Notice and action (DSA): anyone reports once, staff decide once with a statement of reasons to
the author and the outcome to each notifier, the author appeals once, and the queue and trail show
it all. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from app.accounts import personal_data
from app.community import activity
from app.community import service as community
from app.community.tables import Comment
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.ideas import service as ideas
from app.ideas.tables import Idea
from app.mail.tables import EmailMessage
from app.moderation import service as moderation
from app.moderation.service import NoticeInput
from app.moderation.tables import Decision, Notice
from app.points.tables import PointsEntry
from app.shop import collections, reviews
from app.shop.collections import CollectionInput
from app.shop.tables import Collection, Product
from tests.factories import csrf_from, login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order, token_of

GOOD = NoticeInput(category="rules", reason="Spam: an advert with a phone number.", good_faith=True)


async def _emails(kind: str) -> list[dict]:
    return await EmailMessage.select(EmailMessage.recipient, EmailMessage.subject, EmailMessage.text_body).where(
        EmailMessage.kind == kind).order_by(EmailMessage.id)


async def test_a_visitor_reports_a_comment_without_javascript_and_bad_input_is_refused_by_the_field(client):
    author = await make_member("Idea Author")
    writer = await make_member("Spam Writer")
    comment_id = await community.add_comment(writer, await make_idea(author), "Cheap watches at example.invalid")
    idea_page = await client.get(f"/ideas/{(await Comment.select(Comment.idea).first())['idea']}")
    assert f'href="/report/comment/{comment_id}"' in idea_page.text  # visitors see the link too
    form = await client.get(f"/report/comment/{comment_id}")
    assert form.status_code == 200 and "Cheap watches at example.invalid" in form.text
    token = csrf_from(form.text)
    bad = await client.post(f"/report/comment/{comment_id}", data={
        "category": "nonsense", "reason": "bad", "email": "not-an-email", "_csrf_token": token})
    assert bad.status_code == 400
    for message in ("Choose whether it is illegal or against our rules.", "at least 10 characters",
                    "Enter an email address like name@example.com", "Confirm that you believe"):
        assert message in bad.text
    assert await Notice.count() == 0
    data = {"category": "illegal", "reason": "It sells counterfeit watches, which is illegal.", "name": "Eva",
            "email": "Eva@Example.com", "good_faith": "yes", "_csrf_token": token}
    done = await client.post(f"/report/comment/{comment_id}", data=data)
    assert done.status_code == 200 and "we received your report" in done.text
    again = await client.post(f"/report/comment/{comment_id}", data=data)
    assert "You already reported this" in again.text
    notices = await Notice.select(Notice.category, Notice.email, Notice.name, Notice.reporter)
    assert notices == [{"category": "illegal", "email": "eva@example.com", "name": "Eva", "reporter": None}]
    receipts = await _emails("moderation_notice_received")
    assert [r["recipient"] for r in receipts] == ["eva@example.com"]
    assert "counterfeit watches" in receipts[0]["text_body"]
    # the author cannot report their own comment; content that is not shown cannot be reported
    with pytest.raises(Conflict):
        await moderation.report(writer, "comment", comment_id, GOOD)
    assert (await client.get("/report/comment/999999")).status_code == 404
    assert (await client.get(f"/report/gadget/{comment_id}")).status_code == 404


async def test_members_report_once_however_many_times_they_press_it():
    author, writer = await make_member("Author"), await make_member("Writer")
    comment_id = await community.add_comment(writer, await make_idea(author), "Buy cheap watches")
    reporters = [await make_member(f"Reporter {n}") for n in range(3)]
    results = await asyncio.gather(*(moderation.report(r, "comment", comment_id, GOOD) for r in reporters for _ in range(3)))
    assert sum(new for _, new in results) == 3
    assert await Notice.count() == 3
    assert len(await _emails("moderation_notice_received")) == 3
    queue = await moderation.queue(await make_member("Queue Staff", staff=True))
    assert [(g["kind"], g["target"], g["count"]) for g in queue["reported"]] == [("comment", comment_id, 3)]


async def test_staff_remove_once_the_author_gets_the_statement_of_reasons_and_reporters_the_outcome(client):
    author, writer = await make_member("Author"), await make_member("Rude Writer")
    idea_id = await make_idea(author)
    comment_id = await community.add_comment(writer, idea_id, "You are all idiots")
    reporters = [await make_member(f"Reporter {n}") for n in range(2)]
    for reporter in reporters:
        await moderation.report(reporter, "comment", comment_id, GOOD)
    await moderation.report(None, "comment", comment_id, NoticeInput(
        category="rules", reason="Insults people in the thread.", email="visitor@example.com", good_faith=True),
        client_ip="192.0.2.1")
    staff = await make_member("Moderator", staff=True)
    with pytest.raises(Forbidden):
        await moderation.decide(writer, "comment", comment_id, action="remove", ground="rules", statement="x" * 20)
    with pytest.raises(FormError) as refused:
        await moderation.decide(staff, "comment", comment_id, action="remove", statement="short")
    assert set(refused.value.errors) == {"ground", "statement"}
    statement = "Insulting other members breaks rule 2: criticise designs, not people."
    results = await asyncio.gather(*(moderation.decide(staff, "comment", comment_id, action="remove", ground="rules",
                                                       statement=statement) for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))
    assert await Decision.count() == 1
    row = await Comment.select(Comment.hidden_at, Comment.hidden_reason).where(Comment.id == comment_id).first()
    assert row["hidden_at"] is not None and row["hidden_reason"] == statement
    points = sorted(e["points"] for e in await PointsEntry.select(PointsEntry.points).where(PointsEntry.member == writer.id))
    assert points == [-5, 5]
    to_author = await _emails("moderation_decision")
    assert [e["recipient"] for e in to_author] == [writer.email.lower()]
    body = to_author[0]["text_body"]
    assert statement in body and "community rules" in body and "no automated means" in body and "appeal" in body
    told = sorted(e["recipient"] for e in await _emails("moderation_notice_decided"))
    assert told == sorted([r.email.lower() for r in reporters] + ["visitor@example.com"])
    assert await Notice.count().where(Notice.decision.is_null()) == 0
    assert (await moderation.queue(staff))["reported"] == []
    # the trail shows every report and the decision, with who decided
    await login(client, staff.email)
    trail = await client.get(f"/staff/moderation/comment/{comment_id}")
    assert trail.status_code == 200
    for text in ("Reporter 0", "visitor@example.com", "Insults people in the thread.", statement, "Moderator", "Removed"):
        assert text in trail.text
    queue_page = await client.get("/staff/moderation")
    assert queue_page.status_code == 200 and "No open reports." in queue_page.text and "Waterproof commuter backpack" in queue_page.text


async def test_a_removed_reviews_author_gets_a_statement_of_reasons_and_the_rating_leaves(client):
    product = await make_product("Wool beanie")
    fair, spammer = await make_member("Fair Buyer"), await make_member("Spam Buyer")
    for buyer in (fair, spammer):
        await make_order(buyer, [product])
    await reviews.submit_review(fair, product["id"], rating=5, title="Cosy")
    spam = await reviews.submit_review(spammer, product["id"], rating=1, title="Call me for a deal")
    await moderation.report(fair, "review", spam["id"], GOOD)
    staff = await make_member("Shop Moderator", staff=True)
    await login(client, staff.email)
    token = await token_of(client, f"/staff/moderation/review/{spam['id']}")
    decided = await client.post(f"/staff/moderation/review/{spam['id']}/decide", data={
        "action": "remove", "ground": "rules", "statement": "Adverts and phone numbers are not reviews.",
        "_csrf_token": token})
    assert decided.status_code == 303
    assert (await Product.select(Product.rating_count, Product.rating_sum).where(Product.id == product["id"]).first()) == {
        "rating_count": 1, "rating_sum": 5}
    emails = await _emails("moderation_decision")
    assert [e["recipient"] for e in emails] == [spammer.email.lower()]
    assert "Adverts and phone numbers are not reviews." in emails[0]["text_body"]
    client.cookies.clear()
    await login(client, spammer.email)
    own = await client.get(f"/shop/{product['slug']}/reviews")
    assert "Our team hid your review" in own.text and 'href="/moderation/decisions"' in own.text
    mine = await client.get("/moderation/decisions")
    decision = await Decision.select(Decision.id).first()
    assert f"/moderation/decisions/{decision['id']}" in mine.text
    page = await client.get(f"/moderation/decisions/{decision['id']}")
    assert "Statement of reasons" in page.text and "Adverts and phone numbers are not reviews." in page.text
    assert "Appeal this decision" in page.text
    # nobody else reads it
    client.cookies.clear()
    await login(client, fair.email)
    assert (await client.get(f"/moderation/decisions/{decision['id']}")).status_code == 404


async def test_the_author_appeals_once_and_a_reversed_decision_puts_the_idea_back(client):
    author = await make_member("Idea Owner")
    idea_id = await make_idea(author, title="Jacket with a famous logo")
    await moderation.report(None, "idea", idea_id, NoticeInput(
        category="illegal", reason="It copies a registered trademark.", good_faith=True), client_ip="192.0.2.7")
    staff = await make_member("Idea Moderator", staff=True)
    decision = await moderation.decide(staff, "idea", idea_id, action="remove", ground="illegal",
                                       statement="The logo on the photo is another company's registered trademark.")
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "removed"
    assert (await client.get(f"/ideas/{idea_id}")).status_code == 404
    assert "the content is illegal where we operate" in (await _emails("moderation_decision"))[0]["text_body"]
    other = await make_member("Someone Else")
    with pytest.raises(NotFound):
        await moderation.appeal(other, decision["id"], "I want it back, it is fine.")
    with pytest.raises(FormError):
        await moderation.appeal(author, decision["id"], "no")
    results = await asyncio.gather(*(moderation.appeal(author, decision["id"], "The logo is my own drawing, not theirs.")
                                     for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))
    queue = await moderation.queue(staff)
    assert [d["id"] for d in queue["appeals"]] == [decision["id"]]
    # the author's page shows the idea's removal and the appeal waiting
    await login(client, author.email)
    own = await client.get(f"/ideas/{idea_id}")
    assert "Our team removed this idea" in own.text
    assert "A person on our team reviews the decision" in (await client.get(f"/moderation/decisions/{decision['id']}")).text
    answers = await asyncio.gather(*(moderation.answer_appeal(staff, decision["id"], outcome="reversed",
                                                              answer="You showed us the drawing: it is your own logo.")
                                     for _ in range(2)), return_exceptions=True)
    assert sum(isinstance(a, dict) for a in answers) == 1
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "voting"
    client.cookies.clear()
    assert (await client.get(f"/ideas/{idea_id}")).status_code == 200
    answered = await _emails("moderation_appeal_answered")
    assert [e["recipient"] for e in answered] == [author.email.lower()]
    assert "reversed our decision" in answered[0]["text_body"]
    assert (await moderation.queue(staff))["appeals"] == []


async def test_keep_settles_the_reports_and_a_collection_is_unpublished_when_removed(client):
    staff = await make_member("Curator", staff=True)
    collection_id = await collections.create_collection(staff, CollectionInput(title="Winter picks", published=True))
    reporter = await make_member("Collection Reporter")
    await moderation.report(reporter, "collection", collection_id, GOOD)
    with pytest.raises(Conflict):  # nothing removed yet: nothing to restore
        await moderation.decide(staff, "collection", collection_id, action="restore", statement="Nothing to restore here")
    await moderation.decide(staff, "collection", collection_id, action="keep", statement="")
    assert "decided to keep it" in (await _emails("moderation_notice_decided"))[0]["text_body"]
    with pytest.raises(Conflict):  # no open reports left to keep
        await moderation.decide(staff, "collection", collection_id, action="keep")
    assert await _emails("moderation_decision") == []  # a collection has no member author
    await moderation.decide(staff, "collection", collection_id, action="remove", ground="rules",
                            statement="The cover photo shows a product we do not sell.")
    slug = (await Collection.select(Collection.slug).where(Collection.id == collection_id).first())["slug"]
    assert (await client.get(f"/collections/{slug}")).status_code == 404
    await moderation.decide(staff, "collection", collection_id, action="restore", statement="The cover is replaced now.")
    assert (await client.get(f"/collections/{slug}")).status_code == 200
    # a draft was never removed: "restoring" it would publish it behind the curator's back
    draft = await collections.create_collection(staff, CollectionInput(title="Spring drafts", published=False))
    with pytest.raises(Conflict):
        await moderation.decide(staff, "collection", draft, action="restore", statement="Publish this draft please")
    assert (await Collection.select(Collection.published).where(Collection.id == draft).first())["published"] is False


async def test_a_greenlit_idea_is_not_removed_here_and_the_appeal_window_closes():
    author = await make_member("Greenlit Author")
    staff = await make_member("Careful Staff", staff=True)
    greenlit = await make_idea(author)
    await ideas.move_idea(greenlit, ideas.IdeaStatus.GREENLIT, actor_id=staff.id)
    with pytest.raises(Conflict) as refused:
        await moderation.decide(staff, "idea", greenlit, action="remove", ground="rules", statement="Should not work here")
    assert "cancel its campaign first" in refused.value.message
    writer = await make_member("Late Appellant")
    comment_id = await community.add_comment(writer, await make_idea(author), "Rude words")
    decision = await moderation.decide(staff, "comment", comment_id, action="remove", ground="rules",
                                       statement="Rude words break our rules.")
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=moderation.APPEAL_DAYS + 1)
    with pytest.raises(Conflict) as closed:
        await moderation.appeal(writer, decision["id"], "Please look again at it.", now=late)
    assert "six months" in closed.value.message


async def test_reports_and_decisions_are_personal_data_and_erasure_drops_the_reporters_name():
    author, writer = await make_member("Author"), await make_member("Writer")
    reporter = await make_member("Erased Reporter")
    comment_id = await community.add_comment(writer, await make_idea(author), "Spam spam spam")
    await moderation.report(reporter, "comment", comment_id, GOOD)
    staff = await make_member("Moderator", staff=True)
    await moderation.decide(staff, "comment", comment_id, action="remove", ground="rules", statement="Spam is removed.")
    part = next(p for p in personal_data.parts() if p.name == "moderation")
    assert len((await part.export(reporter.id, {}))["reports_sent"]) == 1
    assert (await part.export(writer.id, {}))["moderation_decisions"][0]["statement"] == "Spam is removed."
    await part.erase(personal_data.Erasure(member_id=reporter.id, email=reporter.email, display_name="", handle="",
                                           stripe_customer_id="", remove_content=False))
    assert await Notice.select(Notice.reporter, Notice.email).first() == {"reporter": None, "email": ""}


async def test_reports_on_content_deleted_since_are_settled_and_only_moderation_brings_an_idea_back(client):
    author, writer = await make_member("Author"), await make_member("Deleting Writer")
    staff = await make_member("Settling Staff", staff=True)
    idea_id = await make_idea(author, title="Idea with a deleted comment")
    comment_id = await community.add_comment(writer, idea_id, "Rude, then deleted")
    reporter = await make_member("Patient Reporter")
    await moderation.report(reporter, "comment", comment_id, GOOD)
    await community.delete_comment(writer, comment_id)
    await login(client, staff.email)
    trail = await client.get(f"/staff/moderation/comment/{comment_id}")
    assert trail.status_code == 200 and "Deleted since it was reported." in trail.text
    with pytest.raises(Conflict):
        await moderation.decide(staff, "comment", comment_id, action="remove", ground="rules", statement="Too late now.")
    await moderation.decide(staff, "comment", comment_id, action="settle")
    told = await _emails("moderation_notice_decided")
    assert [t["recipient"] for t in told] == [reporter.email.lower()] and "no longer shown" in told[0]["text_body"]
    assert (await moderation.queue(staff))["reported"] == []
    # a removed idea leaves the feed, loses its points, and the review queue cannot put it back
    assert idea_id in [item["idea"] for item in await activity.recent_activity()]  # "is open for votes"
    decision = await moderation.decide(staff, "idea", idea_id, action="remove", ground="rules",
                                       statement="It duplicates an idea already greenlit.")
    assert idea_id not in [item["idea"] for item in await activity.recent_activity()]
    assert [e["points"] for e in await PointsEntry.select(PointsEntry.points).where(
        (PointsEntry.member == author.id) & PointsEntry.reason.is_in(["idea_accepted", "idea_removed"]))] == [100, -100]
    with pytest.raises(ideas.IllegalMove):
        await ideas.review(staff, idea_id, "approve")
    # a restore replaces the removal: the old decision can no longer be appealed
    await moderation.decide(staff, "idea", idea_id, action="restore", statement="It is different enough after all.")
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "voting"
    assert idea_id in [item["idea"] for item in await activity.recent_activity()]  # back, not announced again
    assert len([i for i in await activity.recent_activity() if i["idea"] == idea_id]) == 1
    with pytest.raises(Conflict):
        await moderation.appeal(author, decision["id"], "Please restore my idea, it is original.")
