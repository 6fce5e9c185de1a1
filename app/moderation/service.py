"""Notice and action (EU Digital Services Act, articles 16, 17 and 20).

- **Notices.** Anyone, a member or a visitor, reports an idea, comment, review or collection as
  illegal or against the rules, with the reason. One notice per notifier per content (a unique
  key); a notifier who gives an address gets a receipt and, later, the decision.
- **Decisions.** Staff remove the content, keep it (the notices are settled, nothing happens to
  it) or restore it. A removal or a restoration sends the author a statement of reasons: what
  was decided, on which ground, the facts, that a person decided, and how to appeal.
- **One appeal.** The author may appeal a removal once, within six months; staff uphold it or
  reverse it (the content comes back), and the author is told. Each is one conditional update.
- **The queue.** Open notices grouped by content (illegal ones first), appeals waiting, recent
  decisions; each content has its trail: every notice, decision and appeal, with who and when.

The content itself stays with its domain: a removal calls that domain's own function (an idea
moves to `removed` through its state machine; a comment or review is hidden and its points go
back; a collection is unpublished), inside the transaction that writes the decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from app import i18n
from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.community import service as community
from app.community.tables import Comment
from app.db import as_aware, raw, utcnow, write_transaction
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.i18n import N_, gettext
from app.ideas import service as ideas
from app.ideas.tables import Idea
from app.mail.service import queue_email
from app.moderation.tables import Decision, Notice
from app.points import service as points
from app.settings import get_settings
from app.shop import collections, reviews
from app.shop.catalog import ProductStatus
from app.shop.tables import Collection, Review

log = logging.getLogger("crowdmade.moderation")

KINDS = ("idea", "comment", "review", "collection")
KIND_LABELS = {"idea": N_("idea"), "comment": N_("comment"), "review": N_("review"), "collection": N_("collection")}
CATEGORIES = {"illegal": N_("Illegal content"), "rules": N_("Against our rules")}
ACTIONS = {"remove": N_("Removed"), "keep": N_("Kept: no action"), "restore": N_("Restored"),
           "settle": N_("Settled: no longer on the site")}
OUTCOMES = {"upheld": N_("Decision upheld"), "reversed": N_("Decision reversed: the content is back")}
APPEAL_DAYS = 183  # at least six months (DSA article 20)
REASON_MIN, REASON_MAX = 10, 2000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IDEA_REMOVABLE = (ideas.IdeaStatus.VOTING.value, ideas.IdeaStatus.ARCHIVED.value)


def kind_label(kind: str) -> str:
    return gettext(KIND_LABELS.get(kind, kind))


def category_label(category: str) -> str:
    return gettext(CATEGORIES.get(category, category))


def action_label(action: str) -> str:
    return gettext(ACTIONS.get(action, action))


def outcome_label(outcome: str) -> str:
    return gettext(OUTCOMES.get(outcome, outcome))


def _staff(member: CurrentMember | None) -> CurrentMember:
    if member is None or not member.is_staff:
        raise Forbidden(gettext("Staff only."))
    return member


# ---- the content, whatever its kind ------------------------------------------------------------


@dataclass
class Content:
    kind: str
    target: int
    author_id: int | None  # None: staff's own (a collection)
    title: str
    excerpt: str
    url: str
    removed: bool
    visible: bool  # what a visitor can see (and so report)
    state: str = ""  # the idea's status, for the removal rule
    gone: bool = False  # deleted since it was reported (by its author, staff or an erasure)

    @property
    def label(self) -> str:
        return kind_label(self.kind)


async def locate(kind: str, target: int) -> Content:
    """The content a notice or decision is about, or NotFound (also for a kind we don't know)."""
    if kind == "idea":
        idea = await Idea.select(Idea.id, Idea.title, Idea.summary, Idea.author, Idea.status).where(
            Idea.id == target).first()
        if idea is None:
            raise NotFound(gettext("Idea not found"))
        removed = idea["status"] == ideas.IdeaStatus.REMOVED
        return Content(kind, target, idea["author"], idea["title"], idea["summary"], f"/ideas/{target}", removed,
                       idea["status"] in ideas.PUBLIC_STATUSES, idea["status"])
    if kind == "comment":
        row = await Comment.select(Comment.id, Comment.body, Comment.author, Comment.idea, Comment.hidden_at,
                                   Comment.deleted_at, Comment.idea.title, Comment.idea.status).where(
            Comment.id == target).first()
        if row is None or row["deleted_at"]:
            raise NotFound(gettext("Comment not found"))
        removed = row["hidden_at"] is not None
        return Content(kind, target, row["author"], row["idea.title"], row["body"][:400],
                       f"/ideas/{row['idea']}#comment-{target}", removed,
                       not removed and row["idea.status"] in ideas.PUBLIC_STATUSES)
    if kind == "review":
        row = await Review.select(Review.id, Review.title, Review.body, Review.member, Review.hidden,
                                  Review.product.slug, Review.product.name, Review.product.status).where(
            Review.id == target).first()
        if row is None:
            raise NotFound(gettext("Review not found"))
        return Content(kind, target, row["member"], row["product.name"], (row["title"] + " " + row["body"]).strip()[:400],
                       f"/shop/{row['product.slug']}#review-{target}", row["hidden"],
                       not row["hidden"] and row["product.status"] == ProductStatus.ACTIVE)
    if kind == "collection":
        row = await Collection.select(Collection.id, Collection.slug, Collection.title, Collection.body,
                                      Collection.published).where(Collection.id == target).first()
        if row is None:
            raise NotFound(gettext("Collection not found"))
        return Content(kind, target, None, row["title"], row["body"][:400], f"/collections/{row['slug']}",
                       not row["published"], row["published"])
    raise NotFound(gettext("There is nothing like that to report."))


async def locate_for_staff(kind: str, target: int) -> Content:
    """Like `locate`, but content deleted since it was reported is still there to settle: its
    reports are open and an appeal about it waits (an unknown kind is still NotFound)."""
    if kind not in KINDS:
        raise NotFound(gettext("There is nothing like that to report."))
    try:
        return await locate(kind, target)
    except NotFound:
        last = await Decision.select(Decision.title, Decision.author).where(
            (Decision.kind == kind) & (Decision.target == target)).order_by(Decision.id, ascending=False).first()
        if last is None and not await Notice.exists().where((Notice.kind == kind) & (Notice.target == target)):
            raise
        return Content(kind, target, last["author"] if last else None, last["title"] if last else gettext("(deleted)"),
                       "", "", removed=False, visible=False, gone=True)


async def _latest(kind: str, target: int) -> dict[str, Any] | None:
    return await Decision.select(Decision.id, Decision.action).where(
        (Decision.kind == kind) & (Decision.target == target)).order_by(Decision.id, ascending=False).first()


async def _latest_decision(kind: str, target: int) -> int:
    row = await _latest(kind, target)
    return row["id"] if row else 0


async def _latest_action(kind: str, target: int) -> str:
    row = await _latest(kind, target)
    return row["action"] if row else ""


async def _remove(content: Content, staff: CurrentMember, statement: str) -> None:
    """Take the content down through its own domain, exactly once (a second staff member
    deciding at the same moment gets a Conflict, and their decision is not written)."""
    already = Conflict(gettext("This %(kind)s was already removed.", kind=content.label))
    if content.kind == "idea":
        if content.state not in IDEA_REMOVABLE and content.state != ideas.IdeaStatus.REMOVED:
            raise Conflict(gettext("A greenlit idea or one on pre-order is not removed here: cancel its campaign first."))
        try:
            await ideas.remove_idea(content.target, actor_id=staff.id, reason=statement)
        except ideas.IllegalMove:
            raise already from None
        if content.author_id:  # a removed idea earns nothing, as a removed comment or review: once
            await points.reverse(content.author_id, original_key=f"idea_accepted:{content.target}",
                                 reason="idea_removed", reference=f"idea:{content.target}")
    elif content.kind == "comment":
        if not await community.hide_comment(staff, content.target, statement[:500]):
            raise already
    elif content.kind == "review":
        if not (await reviews.set_hidden(staff, content.target, hidden=True, reason=statement[:500]))["changed"]:
            raise already
    elif not await collections.set_published(staff, content.target, False):
        raise already


async def _restore(content: Content, staff: CurrentMember) -> bool:
    """Put removed content back (where an idea was before its removal). False if it was not removed."""
    if content.kind == "idea":
        return await ideas.restore_idea(content.target, actor_id=staff.id)
    if content.kind == "comment":
        return await community.restore_comment(staff, content.target)
    if content.kind == "review":
        return (await reviews.set_hidden(staff, content.target, hidden=False))["changed"]
    return await collections.set_published(staff, content.target, True)


# ---- notices --------------------------------------------------------------------------------


@dataclass
class NoticeInput:
    category: str = ""
    reason: str = ""
    name: str = ""
    email: str = ""
    good_faith: bool = False


def _notice_errors(data: NoticeInput, *, visitor: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    if data.category not in CATEGORIES:
        errors["category"] = gettext("Choose whether it is illegal or against our rules.")
    reason = data.reason.strip()
    if len(reason) < REASON_MIN:
        errors["reason"] = gettext("Explain what is wrong and why (at least %(min)s characters).", min=REASON_MIN)
    elif len(reason) > REASON_MAX:
        errors["reason"] = gettext("Keep it under %(max)s characters.", max=REASON_MAX)
    if visitor:
        email = data.email.strip()
        if email and (len(email) > 255 or not EMAIL_RE.match(email)):
            errors["email"] = gettext("Enter an email address like name@example.com, or leave it empty.")
        if len(data.name.strip()) > 120:
            errors["name"] = gettext("Keep your name under 120 characters.")
    if not data.good_faith:
        errors["good_faith"] = gettext("Confirm that you believe what you report is accurate and complete.")
    return errors


def notifier_key(viewer: CurrentMember | None, client_ip: str, email: str) -> str:
    """A member reports a content once; a visitor once per address and email (hashed: the key
    is for uniqueness only, the address itself is not kept)."""
    if viewer is not None:
        return f"m:{viewer.id}"
    return "v:" + hashlib.sha256(f"{client_ip}|{email.strip().lower()}".encode()).hexdigest()[:40]


async def report(viewer: CurrentMember | None, kind: str, target: int, data: NoticeInput, *,
                 client_ip: str = "") -> tuple[dict[str, Any], bool]:
    """Write the notice (once per notifier) and its receipt. Returns (notice, whether it is new)."""
    content = await locate(kind, target)
    if not content.visible:
        raise NotFound(gettext("There is nothing like that to report."))
    if viewer is not None and content.author_id == viewer.id:
        raise Conflict(gettext("You can't report your own %(kind)s.", kind=content.label))
    errors = _notice_errors(data, visitor=viewer is None)
    if errors:
        raise FormError(errors)
    email = viewer.email if viewer is not None else data.email.strip().lower()
    key = notifier_key(viewer, client_ip, email)
    async with write_transaction():
        if not (await locate(kind, target)).visible:  # removed meanwhile: nothing left to report
            raise NotFound(gettext("There is nothing like that to report."))
        inserted = await Notice.insert(Notice(
            kind=kind, target=target, category=data.category, reason=data.reason.strip(),
            reporter=viewer.id if viewer is not None else None, name="" if viewer else data.name.strip(),
            email="" if viewer else email, notifier_key=key,
        )).on_conflict(target=(Notice.kind, Notice.target, Notice.notifier_key), action="DO NOTHING").returning(Notice.id)
        if inserted and email:
            await queue_email(
                kind="moderation_notice_received", subject_ref=f"notice:{inserted[0]['id']}", to=email,
                subject=N_("We received your report · %(site)s"), subject_args={}, template="moderation/notice_received",
                context={"notice_id": inserted[0]["id"], "kind": kind, "received_at": utcnow(), "title": content.title,
                         "category": data.category, "reason": data.reason.strip(), "link": _absolute(content.url)},
                locale=viewer.locale if viewer is not None else None)
    if inserted:
        log.info("notice %s: %s %s reported (%s)", inserted[0]["id"], kind, target, data.category)
        notice_id = inserted[0]["id"]
    else:
        existing = await Notice.select(Notice.id).where(
            (Notice.kind == kind) & (Notice.target == target) & (Notice.notifier_key == key)).first()
        notice_id = existing["id"] if existing else 0
    return {"id": notice_id, "content": content}, bool(inserted)


def _absolute(path: str) -> str:
    return get_settings().base_url.rstrip("/") + path


# ---- decisions ------------------------------------------------------------------------------


def _statement_errors(action: str, ground: str, statement: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if action not in ACTIONS:
        errors["action"] = gettext("Choose what to do: remove it, keep it or restore it.")
    if action == "remove" and ground not in CATEGORIES:
        errors["ground"] = gettext("Say whether it is illegal or against our rules: the author is told.")
    if action in ("remove", "restore") and len(statement) < REASON_MIN:
        errors["statement"] = gettext(
            "Write the statement of reasons (at least %(min)s characters): the author receives it.", min=REASON_MIN)
    elif len(statement) > REASON_MAX:
        errors["statement"] = gettext("Keep it under %(max)s characters.", max=REASON_MAX)
    return errors


async def _emails_of(member_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not member_ids:
        return {}
    rows = await Member.select(Member.id, Member.email, Member.display_name, Member.locale).where(Member.id.is_in(member_ids))
    return {row["id"]: row for row in rows}


async def decide(staff: CurrentMember | None, kind: str, target: int, *, action: str, ground: str = "",
                 statement: str = "") -> dict[str, Any]:
    """One staff decision: the content's change, the decision row, the notices it settles, the
    statement of reasons to the author and the outcome to each notifier, in one transaction."""
    staff = _staff(staff)
    statement = (statement or "").strip()
    ground = ground if action == "remove" else ""
    errors = _statement_errors(action, ground, statement)
    if errors:
        raise FormError(errors)
    content = await locate_for_staff(kind, target)
    if action == "restore" and (not content.removed or (
            kind == "collection" and await _latest_action(kind, target) != "remove")):  # a draft is not removed
        raise Conflict(gettext("This %(kind)s is not removed: there is nothing to restore.", kind=content.label))
    if content.gone and action != "settle":
        raise Conflict(gettext("This %(kind)s was deleted: settle its reports.", kind=content.label))
    if action == "settle" and not (content.gone or content.removed):
        raise Conflict(gettext("This %(kind)s is on the site: remove it or keep it.", kind=content.label))
    async with write_transaction():
        if action == "remove":
            await _remove(content, staff, statement)
        elif action == "restore" and not await _restore(content, staff):
            raise Conflict(gettext("This %(kind)s is not removed: there is nothing to restore.", kind=content.label))
        row = (await Decision.insert(Decision(
            kind=kind, target=target, author=content.author_id, title=content.title[:200], action=action,
            ground=ground, statement=statement, staff=staff.id,
        )).returning(Decision.id, Decision.created_at))[0]
        settled = await Notice.update({Notice.decision: row["id"]}).where(
            (Notice.kind == kind) & (Notice.target == target) & Notice.decision.is_null()).returning(
            Notice.id, Notice.reporter, Notice.email)
        if action in ("keep", "settle") and not settled:
            raise Conflict(gettext("There are no open reports on this %(kind)s to decide on.", kind=content.label))
        people = await _emails_of([n for n in {content.author_id, *(s["reporter"] for s in settled)} if n])
        decision = {"id": row["id"], "kind": kind, "target": target, "action": action, "ground": ground,
                    "statement": statement, "title": content.title, "created_at": row["created_at"]}
        author = people.get(content.author_id or 0)
        if author is not None and action in ("remove", "restore"):
            with i18n.use_locale(author["locale"]):
                kind_words = kind_label(kind)
            await queue_email(
                kind="moderation_decision", subject_ref=f"decision:{row['id']}", to=author["email"],
                subject=(N_("Our team removed your %(kind)s · %(site)s") if action == "remove"
                         else N_("Your %(kind)s is back · %(site)s")),
                subject_args={"kind": kind_words}, template="moderation/decision", locale=author["locale"],
                context={**decision, "name": author["display_name"], "link": _absolute(content.url),
                         "decision_link": _absolute(f"/moderation/decisions/{row['id']}"), "appeal_days": APPEAL_DAYS})
        for notice in settled:
            to = notice["email"] or (people.get(notice["reporter"] or 0) or {}).get("email", "")
            if to:
                reporter = people.get(notice["reporter"] or 0)
                await queue_email(
                    kind="moderation_notice_decided", subject_ref=f"notice:{notice['id']}", to=to,
                    subject=N_("What we decided about your report · %(site)s"), subject_args={},
                    template="moderation/notice_decided", locale=reporter["locale"] if reporter else None,
                    context={**decision, "notice_id": notice["id"], "link": _absolute(content.url)})
    log.info("decision %s: %s %s %s by staff %s (%s notices)", row["id"], action, kind, target, staff.id, len(settled))
    return decision


# ---- the appeal -----------------------------------------------------------------------------


async def get_decision(decision_id: int, viewer: CurrentMember | None) -> dict[str, Any]:
    """A decision as its author (or staff) reads it; NotFound for anyone else."""
    row = await Decision.select(*Decision.all_columns(), Decision.staff.display_name).where(
        Decision.id == decision_id).first()
    if row is None or viewer is None or (row["author"] != viewer.id and not viewer.is_staff):
        raise NotFound(gettext("Decision not found"))
    return _readable(row, latest=await _latest_decision(row["kind"], row["target"]))


def _readable(row: dict[str, Any], now: dt.datetime | None = None, *, latest: int) -> dict[str, Any]:
    """The decision with what its author may still do: appeal a removal that still stands (no
    later decision about the content), once, within six months."""
    now = now or utcnow()
    row["appeal_until"] = as_aware(row["created_at"]) + dt.timedelta(days=APPEAL_DAYS)
    row["latest"] = row["id"] >= latest
    row["appealable"] = (row["action"] == "remove" and row["latest"] and not row["appealed_at"]
                         and now <= row["appeal_until"])
    row["kind_label"] = kind_label(row["kind"])
    return row


async def decisions_about(member: CurrentMember) -> list[dict[str, Any]]:
    """Every decision about the member's content, newest first (their statements of reasons)."""
    rows = await Decision.select(*Decision.all_columns(), Decision.staff.display_name).where(
        (Decision.author == member.id) & Decision.action.is_in(["remove", "restore"])).order_by(Decision.id, ascending=False)
    now = utcnow()
    # The latest decision about each of the member's contents, in one statement (a later one,
    # by any staff member, replaces a removal).
    latest = {(r["kind"], r["target"]): r["latest"] for r in await raw(
        "SELECT d.kind, d.target, MAX(d.id) AS latest FROM moderation_decision d WHERE EXISTS "
        "(SELECT 1 FROM moderation_decision m WHERE m.author = {} AND m.kind = d.kind AND m.target = d.target) "
        "GROUP BY d.kind, d.target", member.id)} if rows else {}
    return [_readable(row, now, latest=latest[(row["kind"], row["target"])]) for row in rows]


async def appeal(member: CurrentMember, decision_id: int, text: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The author appeals a removal: once, within six months."""
    decision = await get_decision(decision_id, member)
    if decision["author"] != member.id:
        raise NotFound(gettext("Decision not found"))
    if decision["action"] != "remove":
        raise Conflict(gettext("Only a removal can be appealed."))
    if not decision["latest"]:
        raise Conflict(gettext("A later decision replaced this one: there is nothing left to appeal."))
    text = (text or "").strip()
    if len(text) < REASON_MIN:
        raise FormError({"appeal": gettext("Tell us why the decision is wrong (at least %(min)s characters).", min=REASON_MIN)})
    if len(text) > REASON_MAX:
        raise FormError({"appeal": gettext("Keep it under %(max)s characters.", max=REASON_MAX)})
    now = now or utcnow()
    if now > decision["appeal_until"]:
        raise Conflict(gettext("The six months to appeal this decision have passed."))
    async with write_transaction():
        done = await Decision.update({Decision.appeal_text: text, Decision.appealed_at: now}).where(
            (Decision.id == decision_id) & Decision.appealed_at.is_null()).returning(Decision.id)
        if not done:
            raise Conflict(gettext("You have already appealed this decision: each decision is reviewed once."))
    log.info("decision %s appealed by member %s", decision_id, member.id)
    return await get_decision(decision_id, member)


async def answer_appeal(staff: CurrentMember | None, decision_id: int, *, outcome: str, answer: str) -> dict[str, Any]:
    """Staff answer an appeal once: upheld, or reversed (the content comes back); the author is told."""
    staff = _staff(staff)
    answer = (answer or "").strip()
    errors: dict[str, str] = {}
    if outcome not in OUTCOMES:
        errors["outcome"] = gettext("Choose whether the decision stands or is reversed.")
    if len(answer) < REASON_MIN:
        errors["answer"] = gettext("Explain the answer (at least %(min)s characters): the author receives it.", min=REASON_MIN)
    elif len(answer) > REASON_MAX:
        errors["answer"] = gettext("Keep it under %(max)s characters.", max=REASON_MAX)
    if errors:
        raise FormError(errors)
    decision = await get_decision(decision_id, staff)
    if not decision["appealed_at"]:
        raise Conflict(gettext("This decision has not been appealed."))
    async with write_transaction():
        done = await Decision.update({Decision.appeal_outcome: outcome, Decision.appeal_answer: answer,
                                      Decision.answered_at: utcnow(), Decision.answered_by: staff.id}).where(
            (Decision.id == decision_id) & Decision.appealed_at.is_not_null() & Decision.answered_at.is_null()).returning(
            Decision.id)
        if not done:
            raise Conflict(gettext("This appeal is already answered."))
        link = ""
        with_content = True
        try:
            content = await locate(decision["kind"], decision["target"])
            link = _absolute(content.url)
            # Only the removal that still stands is undone (a later decision is its own matter).
            if outcome == "reversed" and content.removed and decision["latest"]:
                await _restore(content, staff)
        except NotFound:
            with_content = False  # deleted since: the answer still goes to the author
        author = (await _emails_of([decision["author"]] if decision["author"] else [])).get(decision["author"] or 0)
        if author is not None:
            await queue_email(
                kind="moderation_appeal_answered", subject_ref=f"decision:{decision_id}", to=author["email"],
                subject=N_("The answer to your appeal · %(site)s"), subject_args={}, template="moderation/appeal_answered",
                locale=author["locale"],
                context={"name": author["display_name"], "kind": decision["kind"], "title": decision["title"],
                         "outcome": outcome, "answer": answer, "link": link if with_content else "",
                         "decision_link": _absolute(f"/moderation/decisions/{decision_id}")})
    log.info("appeal on decision %s %s by staff %s", decision_id, outcome, staff.id)
    return await get_decision(decision_id, staff)


# ---- the staff queue and the trail ------------------------------------------------------------


async def queue(staff: CurrentMember | None) -> dict[str, Any]:
    """Open notices grouped by content (illegal first, then the most reported, then the oldest),
    appeals waiting (oldest first) and the latest decisions."""
    _staff(staff)
    notices = await Notice.select(Notice.id, Notice.kind, Notice.target, Notice.category, Notice.reason,
                                  Notice.created_at).where(Notice.decision.is_null()).order_by(Notice.id).limit(2000)
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for notice in notices:
        group = groups.setdefault((notice["kind"], notice["target"]), {
            "kind": notice["kind"], "target": notice["target"], "count": 0, "illegal": 0, "first": notice["created_at"],
            "reasons": []})
        group["count"] += 1
        group["illegal"] += notice["category"] == "illegal"
        if len(group["reasons"]) < 3:
            group["reasons"].append(notice["reason"][:200])
    ordered = sorted(groups.values(), key=lambda g: (-g["illegal"], -g["count"], as_aware(g["first"])))[:100]
    for group in ordered:
        try:
            group["content"] = await locate_for_staff(group["kind"], group["target"])
        except NotFound:
            group["content"] = None
    appeals = await Decision.select(*Decision.all_columns(), Decision.author.display_name).where(
        Decision.appealed_at.is_not_null() & Decision.answered_at.is_null()).order_by(Decision.appealed_at).limit(100)
    recent = await Decision.select(*Decision.all_columns(), Decision.staff.display_name,
                                   Decision.answered_by.display_name).order_by(Decision.id, ascending=False).limit(30)
    return {"reported": ordered, "appeals": appeals, "recent": recent}


async def trail(staff: CurrentMember | None, kind: str, target: int) -> dict[str, Any]:
    """Everything that happened to one piece of content, oldest first."""
    _staff(staff)
    content = await locate_for_staff(kind, target)
    notices = await Notice.select(*Notice.all_columns(), Notice.reporter.display_name, Notice.reporter.handle).where(
        (Notice.kind == kind) & (Notice.target == target)).order_by(Notice.id)
    decisions = await Decision.select(*Decision.all_columns(), Decision.staff.display_name,
                                      Decision.answered_by.display_name).where(
        (Decision.kind == kind) & (Decision.target == target)).order_by(Decision.id)
    now = utcnow()
    events = [{"type": "notice", "at": as_aware(n["created_at"]), "row": n} for n in notices]
    latest = decisions[-1]["id"] if decisions else 0
    events += [{"type": "decision", "at": as_aware(d["created_at"]), "row": _readable(d, now, latest=latest)}
               for d in decisions]
    events.sort(key=lambda e: e["at"])
    return {"content": content, "notices": notices, "decisions": decisions, "events": events,
            "open": sum(1 for n in notices if n["decision"] is None)}
