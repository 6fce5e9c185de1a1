"""Privacy: export all my data, delete my account, marketing consents, sign-in by email link.

Service functions first (other domains may call `can_send_marketing`), then the HTML routes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from markupsafe import escape

from app import i18n
from app.accounts import service as accounts
from app.accounts.levels import level_for
from app.accounts.service import LOGIN_WINDOW_SECONDS, CurrentMember, new_token, normalize_email, token_hash
from app.accounts.tables import ApiToken, Consent, EmailToken, Member, Session
from app.db import as_aware, is_sqlite, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound, TooManyRequests
from app.i18n import N_, gettext, ngettext
from app.jobs.service import enqueue, job_handler
from app.mail.service import queue_email
from app.settings import get_settings
from app.throttle import counters
from app.web.guards import requires_member
from app.web.responses import current_member, redirect, render

log = logging.getLogger("crowdmade.privacy")

LOGIN_LINK_MINUTES = 15
DELETE_LINK_HOURS = 2
DELETED_NAME = "Deleted member"
CONTENT_CHOICES = {  # translated where shown
    "keep": N_("Keep my ideas, comments and reviews, shown under \u201cDeleted member\u201d"),
    "remove": N_("Remove my comments, reviews, questions and unpublished ideas"),
}
MARKETING_KIND = "marketing_email"
MARKETING_TEXT_VERSION = "2026-12-v1"
EXPORT_VERSION = 1


def marketing_text() -> str:
    """The consent text shown next to the box (in the page's language, as the member read it);
    its version is stored with every answer."""
    return gettext("Send me occasional emails from %(site)s about new campaigns, products and "
                   "offers. I can withdraw this at any time in my account settings.", site=get_settings().site_name)


# ---- marketing consent ---------------------------------------------------------------------


async def _lock_member(member_id: int) -> None:
    """Serialise writes that read then change one member (SQLite: the IMMEDIATE transaction does)."""
    if not is_sqlite():
        await Member.select(Member.id).where(Member.id == member_id).lock_rows()


async def can_send_marketing(member_id: int) -> bool:
    """True only for a live member with a confirmed email whose latest marketing answer is yes."""
    row = await Member.select(Member.marketing_opt_in, Member.email_verified_at).where(
        (Member.id == member_id) & Member.deleted_at.is_null()).first()
    return bool(row and row["marketing_opt_in"] and row["email_verified_at"] is not None)


async def set_marketing_consent(member_id: int, granted: bool) -> bool:
    """Give or withdraw marketing consent. Appends a Consent row (time, text, version) only when
    the answer changes, and keeps `Member.marketing_opt_in` equal to the latest row. Returns
    whether anything changed."""
    async with write_transaction():
        await _lock_member(member_id)
        row = await Member.select(Member.marketing_opt_in).where(
            (Member.id == member_id) & Member.deleted_at.is_null()).first()
        if row is None:
            raise NotFound(gettext("Member not found"))
        if bool(row["marketing_opt_in"]) == granted:
            return False
        await Consent.insert(Consent(member=member_id, kind=MARKETING_KIND, granted=granted,
                                     text_version=MARKETING_TEXT_VERSION, text=marketing_text()))
        await Member.update({Member.marketing_opt_in: granted}).where(Member.id == member_id)
    log.info("marketing consent member=%s granted=%s", member_id, granted)
    return True


async def consent_history(member_id: int) -> list[dict[str, Any]]:
    return await Consent.select(Consent.kind, Consent.granted, Consent.text_version, Consent.text,
                                Consent.created_at).where(Consent.member == member_id).order_by(
        Consent.id, ascending=False)


# ---- one-time email links ------------------------------------------------------------------


async def _valid_token(raw: str, purpose: str) -> dict[str, Any] | None:
    """Read (never use) a one-time token: its row if it is unused, unexpired and its member live."""
    if not raw:
        return None
    return await EmailToken.select(EmailToken.id, EmailToken.member, EmailToken.expires_at).where(
        (EmailToken.token_hash == token_hash(raw)) & (EmailToken.purpose == purpose)
        & EmailToken.used_at.is_null() & (EmailToken.expires_at > utcnow())
        & EmailToken.member.deleted_at.is_null()).first()


async def _use_token(raw: str, purpose: str) -> dict[str, Any]:
    """Mark a one-time token used (exactly once: a conditional update) and return its row."""
    rows = await EmailToken.update({EmailToken.used_at: utcnow()}).where(
        (EmailToken.token_hash == token_hash(raw or "")) & (EmailToken.purpose == purpose)
        & EmailToken.used_at.is_null() & (EmailToken.expires_at > utcnow())
    ).returning(EmailToken.id, EmailToken.member)
    if not rows:
        raise FormError({"token": gettext("This link is invalid, expired or was already used.")})
    return rows[0]


async def _new_email_token(member_id: int, purpose: str, lifetime: dt.timedelta) -> tuple[str, int]:
    raw, hashed = new_token()
    rows = await EmailToken.insert(EmailToken(token_hash=hashed, member=member_id, purpose=purpose,
                                              expires_at=utcnow() + lifetime)).returning(EmailToken.id)
    return raw, rows[0]["id"]


def _too_many(retry: int, what: str) -> TooManyRequests:
    """`what`: an already translated sentence."""
    minutes = max(1, retry // 60)
    later = ngettext("Try again in %(num)s minute.", "Try again in %(num)s minutes.", minutes)
    return TooManyRequests(f"{what} {later}", retry)


# ---- sign-in by email link ------------------------------------------------------------------


async def request_login_link(email: str, *, ip: str = "") -> str:
    """Email a one-time sign-in link if the account exists. The caller shows the same answer
    either way (no account discovery); requests are limited per address and per client like
    password logins. Returns the normalised email for the confirmation message."""
    settings = get_settings()
    email = normalize_email(email)
    if not accounts.EMAIL_RE.match(email):
        raise FormError({"link_email": gettext("Enter a valid email address, like you@example.com.")})
    for key, limit in ((f"loginlink:acct:{email}", settings.login_max_failures),
                       (f"loginlink:ip:{ip}", settings.login_max_failures * 4)):
        count, retry = await counters().hit(key, LOGIN_WINDOW_SECONDS)
        if count > limit:
            log.warning("login link throttled email=%s ip=%s", email, ip)
            raise _too_many(retry, gettext("Too many sign-in links were requested."))
    row = await Member.select(Member.id, Member.display_name).where(
        (Member.email == email) & Member.deleted_at.is_null()).first()
    if row is None:
        return email
    async with write_transaction():
        raw, token_id = await _new_email_token(row["id"], "login", dt.timedelta(minutes=LOGIN_LINK_MINUTES))
        await queue_email(
            kind="login_link", subject_ref=f"email_token:{token_id}", to=email,
            subject=N_("Your %(site)s sign-in link"), subject_args={}, template="login_link",
            context={"name": row["display_name"], "link": f"{settings.base_url}/login/link?token={raw}",
                     "minutes": LOGIN_LINK_MINUTES},
        )
    log.info("login link sent member=%s", row["id"])
    return email


async def sign_in_with_link(raw: str, *, ip: str = "") -> CurrentMember:
    """Use a sign-in link once. Bad links count as failed logins of the client address."""
    settings = get_settings()
    ip_key = f"login:ip:{ip}"
    ip_count, ip_retry = await counters().peek(ip_key)
    if ip_count + 1 > settings.login_max_failures * 4:
        raise _too_many(ip_retry, gettext("Too many failed attempts."))
    try:
        async with write_transaction():
            row = await _use_token(raw, "login")
            # Following the emailed link proves the address.
            await Member.update({Member.email_verified_at: utcnow()}).where(
                (Member.id == row["member"]) & Member.email_verified_at.is_null())
        member = await accounts.get_member(row["member"])
    except (FormError, NotFound):
        await counters().hit(ip_key, LOGIN_WINDOW_SECONDS)
        log.warning("login link refused ip=%s", ip)
        raise FormError({"token": gettext("This sign-in link is invalid, expired or was already used. Ask for a new one.")}) from None
    log.info("login ok by link member=%s ip=%s", member.id, ip)
    return member


# ---- export ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value or "{}")
        except ValueError:
            return {}
    return value


async def export_data(member_id: int) -> dict[str, Any]:
    """Everything we keep about the member, as plain data: their own rows only (no other
    member's email, address or private content; public titles of things they took part in)."""
    from app.campaigns.tables import Pledge, PledgeEvent
    from app.community.tables import CampaignUpdate, Comment, CommentReport, Follow
    from app.experiments.tables import ExperimentExposure
    from app.ideas.tables import Category, Idea, IdeaEvent, IdeaImage, Vote
    from app.mail.tables import EmailMessage
    from app.notifications.tables import Notification, NotificationSetting
    from app.orders.tables import Order, OrderEvent, OrderLine, Refund
    from app.points.tables import MemberBadge, PointsEntry, Voucher
    from app.shop.cart import member_owner
    from app.shop.tables import Address, CartLine, ProductQuestion, Review, WishlistItem

    profile = await Member.select(
        Member.id, Member.email, Member.email_verified_at, Member.display_name, Member.handle, Member.bio,
        Member.location, Member.points_balance, Member.points_lifetime, Member.wishlist_public,
        Member.marketing_opt_in, Member.locale, Member.is_staff, Member.created_at,
    ).where((Member.id == member_id) & Member.deleted_at.is_null()).first()
    if profile is None:
        raise NotFound(gettext("Member not found"))
    profile["level"] = level_for(profile["points_lifetime"]).level.name
    profile["email_verified"] = profile.pop("email_verified_at") is not None

    ideas = await Idea.select(
        Idea.id, Idea.title, Idea.summary, Idea.description, Idea.category.name, Idea.status, Idea.status_message,
        Idea.vote_count, Idea.created_at, Idea.updated_at, Idea.submitted_at, Idea.voting_starts_at,
        Idea.voting_ends_at).where(Idea.author == member_id).order_by(Idea.id)
    idea_ids = [i["id"] for i in ideas] or [0]
    events = await IdeaEvent.select(IdeaEvent.idea, IdeaEvent.from_status, IdeaEvent.to_status, IdeaEvent.message,
                                    IdeaEvent.created_at).where(IdeaEvent.idea.is_in(idea_ids)).order_by(IdeaEvent.id)
    images = await IdeaImage.select(IdeaImage.idea, IdeaImage.key, IdeaImage.width, IdeaImage.height).where(
        IdeaImage.idea.is_in(idea_ids)).order_by(IdeaImage.position)
    base = get_settings().base_url
    for idea in ideas:
        idea["category"] = idea.pop("category.name")
        idea["history"] = [{k: v for k, v in e.items() if k != "idea"} for e in events if e["idea"] == idea["id"]]
        idea["images"] = [f"{base}/media/{im['key']}" for im in images if im["idea"] == idea["id"]]

    votes = await Vote.select(Vote.idea, Vote.idea.title, Vote.created_at).where(
        Vote.member == member_id).order_by(Vote.id)
    comments = await Comment.select(
        Comment.id, Comment.idea, Comment.idea.title, Comment.parent, Comment.body, Comment.created_at,
        Comment.edited_at, Comment.deleted_at, Comment.hidden_at, Comment.hidden_reason,
    ).where(Comment.author == member_id).order_by(Comment.id)
    reports = await CommentReport.select(CommentReport.comment, CommentReport.reason, CommentReport.created_at).where(
        CommentReport.reporter == member_id).order_by(CommentReport.id)
    updates = await CampaignUpdate.select(CampaignUpdate.campaign, CampaignUpdate.title, CampaignUpdate.body,
                                          CampaignUpdate.visibility, CampaignUpdate.created_at).where(
        CampaignUpdate.author == member_id).order_by(CampaignUpdate.id)

    pledges = await Pledge.select(
        Pledge.id, Pledge.campaign, Pledge.campaign.idea.title, Pledge.campaign.currency, Pledge.variant.name,
        Pledge.quantity, Pledge.amount, Pledge.status, Pledge.consent_version, Pledge.consent_text, Pledge.consent_at,
        Pledge.failure_message, Pledge.created_at, Pledge.updated_at,
    ).where(Pledge.member == member_id).order_by(Pledge.id)
    pledge_events = await PledgeEvent.select(PledgeEvent.pledge, PledgeEvent.from_status, PledgeEvent.to_status,
                                             PledgeEvent.message, PledgeEvent.created_at).where(
        PledgeEvent.pledge.is_in([p["id"] for p in pledges] or [0])).order_by(PledgeEvent.id)
    for pledge in pledges:
        pledge["history"] = [{k: v for k, v in e.items() if k != "pledge"} for e in pledge_events
                             if e["pledge"] == pledge["id"]]

    orders = await Order.select(
        Order.id, Order.number, Order.kind, Order.status, Order.currency, Order.subtotal, Order.shipping,
        Order.discount, Order.total, Order.refunded, Order.voucher_code, Order.shipping_method, Order.ship_to,
        Order.carrier, Order.tracking_number, Order.created_at, Order.paid_at, Order.shipped_at,
        Order.delivered_at, Order.cancelled_at,
    ).where(Order.member == member_id).order_by(Order.id)
    order_ids = [o["id"] for o in orders] or [0]
    lines = await OrderLine.select(OrderLine.order, OrderLine.title, OrderLine.variant, OrderLine.quantity,
                                   OrderLine.unit_price, OrderLine.total).where(
        OrderLine.order.is_in(order_ids)).order_by(OrderLine.id)
    order_events = await OrderEvent.select(OrderEvent.order, OrderEvent.from_status, OrderEvent.to_status,
                                           OrderEvent.message, OrderEvent.created_at).where(
        OrderEvent.order.is_in(order_ids)).order_by(OrderEvent.id)
    refunds = await Refund.select(Refund.order, Refund.amount, Refund.status, Refund.reason, Refund.created_at).where(
        Refund.order.is_in(order_ids)).order_by(Refund.id)
    for order in orders:
        oid = order.pop("id")
        order["ship_to"] = _parsed(order["ship_to"])
        order["lines"] = [{k: v for k, v in x.items() if k != "order"} for x in lines if x["order"] == oid]
        order["history"] = [{k: v for k, v in x.items() if k != "order"} for x in order_events if x["order"] == oid]
        order["refunds"] = [{k: v for k, v in x.items() if k != "order"} for x in refunds if x["order"] == oid]

    follows = await Follow.select(Follow.kind, Follow.target, Follow.created_at).where(
        Follow.member == member_id).order_by(Follow.id)
    names: dict[str, dict[int, str]] = {"idea": {}, "member": {}, "category": {}}
    for kind, table, column in (("idea", Idea, Idea.title), ("member", Member, Member.display_name),
                                ("category", Category, Category.name)):
        targets = [f["target"] for f in follows if f["kind"] == kind]
        if targets:
            extra = (Idea.status.is_in(["voting", "greenlit", "campaign", "archived"]),) if kind == "idea" else ()
            where = table.id.is_in(targets)
            for condition in extra:
                where = where & condition
            names[kind] = {r["id"]: r[column._meta.name] for r in await table.select(table.id, column).where(where)}
    for f in follows:
        f["name"] = names.get(f["kind"], {}).get(f["target"], "")

    wishlist = await WishlistItem.select(WishlistItem.product.name, WishlistItem.idea.title,
                                         WishlistItem.created_at).where(
        WishlistItem.member == member_id).order_by(WishlistItem.id)
    reviews = await Review.select(Review.product.name, Review.rating, Review.title, Review.body, Review.hidden,
                                  Review.hidden_reason, Review.created_at, Review.updated_at).where(
        Review.member == member_id).order_by(Review.id)
    questions = await ProductQuestion.select(ProductQuestion.product.name, ProductQuestion.body,
                                             ProductQuestion.answer, ProductQuestion.answered_at,
                                             ProductQuestion.hidden, ProductQuestion.created_at).where(
        ProductQuestion.member == member_id).order_by(ProductQuestion.id)
    cart = await CartLine.select(CartLine.variant.product.name, CartLine.variant.name, CartLine.quantity,
                                 CartLine.added_at).where(CartLine.cart.owner == member_owner(member_id)).order_by(
        CartLine.id)
    addresses = await Address.select(Address.name, Address.line1, Address.line2, Address.postal_code, Address.city,
                                     Address.country, Address.phone, Address.is_default, Address.created_at).where(
        Address.member == member_id).order_by(Address.id)

    ledger = await PointsEntry.select(PointsEntry.points, PointsEntry.reason, PointsEntry.reference,
                                      PointsEntry.note, PointsEntry.created_at).where(
        PointsEntry.member == member_id).order_by(PointsEntry.id)
    vouchers = await Voucher.select(Voucher.code, Voucher.points, Voucher.amount, Voucher.currency, Voucher.status,
                                    Voucher.created_at, Voucher.spent_at).where(
        Voucher.member == member_id).order_by(Voucher.id)
    badges = await MemberBadge.select(MemberBadge.badge, MemberBadge.awarded_at).where(
        MemberBadge.member == member_id).order_by(MemberBadge.id)
    notifications = await Notification.select(Notification.kind, Notification.title, Notification.body,
                                              Notification.link, Notification.created_at, Notification.read_at).where(
        Notification.member == member_id).order_by(Notification.id)
    notification_settings = await NotificationSetting.select(NotificationSetting.kind, NotificationSetting.mode).where(
        NotificationSetting.member == member_id)
    emails = await EmailMessage.select(EmailMessage.kind, EmailMessage.subject, EmailMessage.status,
                                       EmailMessage.created_at, EmailMessage.sent_at).where(
        EmailMessage.recipient == profile["email"]).order_by(EmailMessage.id)
    tokens = await ApiToken.select(ApiToken.name, ApiToken.created_at, ApiToken.last_used_at).where(
        ApiToken.member == member_id).order_by(ApiToken.id)
    sessions = await Session.select(Session.created_at, Session.last_seen_at, Session.expires_at, Session.ip,
                                    Session.user_agent).where(Session.member == member_id).order_by(Session.id)
    experiments = await ExperimentExposure.select(ExperimentExposure.experiment.key, ExperimentExposure.variant,
                                                  ExperimentExposure.exposed_at, ExperimentExposure.converted_at).where(
        ExperimentExposure.subject == f"m:{member_id}").order_by(ExperimentExposure.id)

    return {
        "export": {"format_version": EXPORT_VERSION, "site": get_settings().site_name, "created_at": utcnow()},
        "profile": profile,
        "ideas": ideas,
        "votes": votes,
        "comments": comments,
        "comment_reports": reports,
        "campaign_updates": updates,
        "pledges": pledges,
        "orders": orders,
        "points": {"balance": profile["points_balance"], "lifetime": profile["points_lifetime"], "ledger": ledger,
                   "vouchers": vouchers},
        "badges": badges,
        "notifications": notifications,
        "notification_settings": notification_settings,
        "consents": await consent_history(member_id),
        "wishlist": wishlist,
        "cart": cart,
        "reviews": reviews,
        "product_questions": questions,
        "addresses": addresses,
        "api_tokens": tokens,
        "sessions": sessions,
        "follows": follows,
        "emails": emails,
        "experiments": experiments,
    }


def export_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False).encode()


# ---- account deletion -------------------------------------------------------------------------


async def deletion_blockers(member_id: int) -> list[str]:
    """Why the account cannot be deleted right now (empty: it can). Money in motion and goods
    still to deliver need the member's details; open pledges are cancelled, not blockers."""
    from app.campaigns.service import OPEN_STATUSES, PledgeStatus
    from app.campaigns.tables import Pledge
    from app.orders.tables import Order

    open_campaign = {s.value for s in OPEN_STATUSES}
    reasons: list[str] = []
    pledges = await Pledge.select(Pledge.status, Pledge.campaign.status, Pledge.campaign.ends_at,
                                  Pledge.campaign.idea.title).where(
        (Pledge.member == member_id)
        & Pledge.status.is_in([PledgeStatus.ACTIVE.value, PledgeStatus.CHARGING.value,
                               PledgeStatus.PAYMENT_FAILED.value]))
    now = utcnow()
    for p in pledges:
        title = p["campaign.idea.title"]
        if p["status"] == PledgeStatus.CHARGING:
            reasons.append(gettext("The payment for your pledge to \u201c%(title)s\u201d is in progress. "
                                   "You can delete your account once it is settled.", title=title))
        elif p["status"] == PledgeStatus.PAYMENT_FAILED:
            reasons.append(gettext("The payment for your pledge to \u201c%(title)s\u201d failed and is waiting for "
                                   "your card. Fix it or wait until the pledge is dropped, then delete your account.",
                                   title=title))
        elif p["campaign.status"] not in open_campaign or as_aware(p["campaign.ends_at"]) <= now:
            reasons.append(gettext("\u201c%(title)s\u201d has ended and your pledge is about to be charged. "
                                   "You can delete your account once the payment is settled.", title=title))
    orders = await Order.select(Order.number, Order.status).where(
        (Order.member == member_id) & Order.status.is_in(["placed", "paid", "in_production"])
        & (Order.paid_at.is_not_null() | (Order.status == "placed"))).order_by(Order.id)
    for o in orders:
        if o["status"] == "placed":
            reasons.append(gettext("Order %(number)s is waiting for its payment. Pay or cancel it first "
                                   "(an unpaid checkout is released automatically after a while).", number=o["number"]))
        else:
            reasons.append(gettext("Order %(number)s has not shipped yet, and we need your name and address to "
                                   "deliver it. You can delete your account once it has shipped or been cancelled.",
                                   number=o["number"]))
    return reasons


async def deletion_plan(member_id: int) -> dict[str, Any]:
    """What the confirmation page shows: blockers, and the pledges that will be cancelled."""
    from app.campaigns.service import PledgeStatus
    from app.campaigns.tables import Pledge

    cancel = await Pledge.select(Pledge.id, Pledge.campaign.idea.title, Pledge.quantity).where(
        (Pledge.member == member_id) & Pledge.status.is_in([PledgeStatus.PENDING.value, PledgeStatus.ACTIVE.value])
        & Pledge.campaign.status.is_in(["early_access", "live"]))
    return {"blockers": await deletion_blockers(member_id), "cancel": cancel}


async def request_deletion(member: CurrentMember) -> None:
    """Email the one-time link that confirms a deletion (the member must own the inbox)."""
    count, retry = await counters().hit(f"delete-link:{member.id}", 3600)
    if count > 5:
        raise _too_many(retry, gettext("We already sent several confirmation links."))
    settings = get_settings()
    async with write_transaction():
        raw, token_id = await _new_email_token(member.id, "delete", dt.timedelta(hours=DELETE_LINK_HOURS))
        await queue_email(
            kind="privacy_delete", subject_ref=f"email_token:{token_id}", to=member.email,
            subject=N_("Confirm the deletion of your %(site)s account"), subject_args={}, template="privacy_delete",
            context={"name": member.display_name, "link": f"{settings.base_url}/account/delete/confirm?token={raw}",
                     "hours": DELETE_LINK_HOURS},
        )
    log.info("deletion link sent member=%s", member.id)


async def member_for_deletion(raw: str) -> CurrentMember | None:
    row = await _valid_token(raw, "delete")
    if row is None:
        return None
    try:
        return await accounts.get_member(row["member"])
    except NotFound:
        return None


@dataclass
class DeletionResult:
    member_id: int
    cancelled_pledges: int = 0
    removed_ideas: int = 0
    stripe_customer_deleted: bool = False
    image_keys: list[str] = field(default_factory=list)


async def delete_account(raw: str, *, content: str = "keep") -> DeletionResult:
    """Delete the account whose confirmation link this is: exactly once (the token is used and the
    member row stamped by conditional updates under the member's lock). Open pledges are cancelled
    first; money in motion or goods to deliver refuse with a Conflict and a clear message."""
    from app.campaigns import service as campaigns
    from app.campaigns.service import PledgeStatus
    from app.campaigns.tables import Pledge

    if content not in CONTENT_CHOICES:
        raise FormError({"content": gettext("Choose what happens to your ideas and comments.")})
    row = await _valid_token(raw, "delete")
    if row is None:
        raise FormError({"token": gettext("This link is invalid, expired or was already used.")})
    member_id = row["member"]
    if reasons := await deletion_blockers(member_id):
        raise Conflict(" ".join(reasons))
    try:
        member = await accounts.get_member(member_id)
    except NotFound:  # deleted by a concurrent confirmation of the same link
        raise FormError({"token": gettext("This link is invalid, expired or was already used.")}) from None
    result = DeletionResult(member_id)
    open_pledges = await Pledge.select(Pledge.id).where(
        (Pledge.member == member_id) & Pledge.status.is_in([PledgeStatus.PENDING.value, PledgeStatus.ACTIVE.value])
        & Pledge.campaign.status.is_in(["early_access", "live"]))
    for pledge in open_pledges:
        await campaigns.cancel_pledge(member, pledge["id"])  # exactly once each; a repeat is a no-op
        result.cancelled_pledges += 1
    customer = ""
    async with write_transaction():
        await _lock_member(member_id)
        await _use_token(raw, "delete")
        if reasons := await deletion_blockers(member_id):  # a settlement may have started meanwhile
            raise Conflict(" ".join(reasons))
        old = await Member.select(Member.email, Member.display_name, Member.handle, Member.stripe_customer_id).where(
            (Member.id == member_id) & Member.deleted_at.is_null()).first()
        if old is None:
            raise FormError({"token": gettext("This account is already deleted.")})
        customer = old["stripe_customer_id"]
        await _erase(member_id, old, content, result)
        if customer:
            await enqueue("delete_stripe_customer", {"customer": customer},
                          unique_key=f"delete_stripe_customer:{customer}")
    log.info("account deleted member=%s content=%s", member_id, content)
    if customer:
        result.stripe_customer_deleted = await delete_stripe_customer(customer)
    _delete_files(result.image_keys)
    return result


async def delete_stripe_customer(customer: str) -> bool:
    """Best effort now; the job enqueued with the deletion retries while Stripe is down."""
    from app.payments.gateway import gateway

    try:
        await gateway().delete_customer(customer)
    except Exception as error:  # noqa: BLE001  (Stripe down: the queued job retries)
        log.warning("stripe customer %s not deleted yet: %s", customer, error)
        return False
    return True


@job_handler("delete_stripe_customer")
async def delete_stripe_customer_job(payload: dict[str, Any]) -> None:
    from app.payments.gateway import gateway

    await gateway().delete_customer(payload["customer"])  # raises while Stripe is down: retried


def _delete_files(keys: list[str]) -> None:
    from app.media.storage import storage

    for key in keys:
        try:
            storage().delete(key)
        except OSError as error:
            log.warning("could not delete %s: %s", key, error)


async def _erase(member_id: int, old: dict[str, Any], content: str, result: DeletionResult) -> None:
    """Every personal trace of the member, inside the deletion's transaction."""
    from app.community.tables import Comment, Follow
    from app.mail.tables import EmailMessage
    from app.notifications.tables import Notification, NotificationSetting
    from app.orders.tables import Order
    from app.shop.cart import member_owner
    from app.shop.tables import Address, Cart, ProductQuestion, WishlistItem

    now = utcnow()
    remove = content == "remove"
    await Member.update({
        Member.email: f"deleted-{member_id}@invalid", Member.display_name: DELETED_NAME,
        Member.handle: f"deleted-{member_id}", Member.bio: "", Member.location: "",
        Member.password_hash: "!deleted",  # no hash matches it: password login is impossible
        Member.is_staff: False, Member.is_admin: False, Member.email_verified_at: None,
        Member.stripe_customer_id: "", Member.wishlist_public: False, Member.marketing_opt_in: False,
        Member.ab_subject: "", Member.deleted_at: now,
    }).where(Member.id == member_id)
    for table in (Session, ApiToken, EmailToken, Consent, Notification, NotificationSetting, WishlistItem, Address):
        await table.delete().where(table.member == member_id)
    await Follow.delete().where((Follow.member == member_id) | ((Follow.kind == "member") & (Follow.target == member_id)))
    await Cart.delete().where((Cart.member == member_id) | (Cart.owner == member_owner(member_id)))
    await EmailMessage.delete().where(EmailMessage.recipient == old["email"])

    # Orders stay for accounting; the delivery name and address do not.
    for order in await Order.select(Order.id, Order.ship_to).where(Order.member == member_id):
        ship_to = _parsed(order["ship_to"]) or {}
        if isinstance(ship_to, dict) and ship_to:
            kept = {"name": DELETED_NAME, "country": str(ship_to.get("country", ""))}
            await Order.update({Order.ship_to: json.dumps(kept)}).where(Order.id == order["id"])

    await _scrub_name_elsewhere(member_id, old["display_name"], remove)
    await _scrub_mentions(old["handle"], f"deleted-{member_id}")

    if remove:
        await Comment.update({Comment.deleted_at: now}).where(
            (Comment.author == member_id) & Comment.deleted_at.is_null())
        await Comment.update({Comment.body: ""}).where(Comment.author == member_id)
        await ProductQuestion.update({ProductQuestion.hidden: True, ProductQuestion.body: ""}).where(
            ProductQuestion.member == member_id)
        await _remove_reviews(member_id)
        await _remove_ideas(member_id, result)


# How other members' notifications name the member who acted (app/community, app/shop/catalog).
# They are stored in each recipient's language, so the scrub knows the phrase in every language.
ACTOR_MESSAGES = (N_("%(name)s replied to your comment on %(title)s"), N_("%(name)s mentioned you on %(title)s"),
                  N_("%(name)s commented on your idea %(title)s"), N_("%(name)s asked about %(product)s"))


def actor_phrases() -> tuple[str, ...]:
    """What follows "<name> " in those titles, in every language ("replied to your comment on ", ...)."""
    phrases = set()
    for code in i18n.LANGUAGES:
        with i18n.use_locale(code):
            for message in ACTOR_MESSAGES:
                text = gettext(message)
                if text.startswith("%(name)s "):
                    phrases.add(text[len("%(name)s "):].split("%(")[0])
    return tuple(sorted(phrases))


async def _scrub_name_elsewhere(member_id: int, name: str, remove: bool) -> None:
    """Other members' bells and emails that name the member as the one who acted ("Ann replied to
    your comment ..."): renamed to "Deleted member", or gone with the removed content."""
    from app.db import raw
    from app.mail.tables import EmailMessage
    from app.notifications.tables import Notification

    prefix = f"{name} "
    phrases = actor_phrases()

    def names_actor(title: str) -> bool:
        return title.startswith(prefix) and title[len(prefix):].startswith(phrases)

    notes = [n for n in await raw(
        "SELECT id, title FROM notification WHERE member <> {} AND substr(title, 1, {}) = {}",
        member_id, len(prefix), prefix) if names_actor(n["title"])]
    mails = [m for m in await raw(
        "SELECT id, subject, text_body, html_body FROM email_message WHERE substr(subject, 1, {}) = {}",
        len(prefix), prefix) if names_actor(m["subject"])]
    if remove:
        if notes:
            await Notification.delete().where(Notification.id.is_in([n["id"] for n in notes]))
        if mails:
            await EmailMessage.delete().where(EmailMessage.id.is_in([m["id"] for m in mails]))
        return
    for note in notes:
        await Notification.update({Notification.title: DELETED_NAME + note["title"][len(name):]}).where(
            Notification.id == note["id"])
    for mail in mails:
        old, new = mail["subject"], DELETED_NAME + mail["subject"][len(name):]
        # The subject is the notification's title, which the bodies repeat word for word.
        await EmailMessage.update({
            EmailMessage.subject: new,
            EmailMessage.text_body: mail["text_body"].replace(old, new),
            EmailMessage.html_body: mail["html_body"].replace(str(escape(old)), str(escape(new))),
        }).where(EmailMessage.id == mail["id"])


async def _scrub_mentions(handle: str, replacement: str) -> None:
    """@mentions of the old handle (which someone else may take later) point at the deleted member."""
    from app.community.tables import Comment
    from app.db import raw

    pattern = re.compile(rf"(?<![\w@])@{re.escape(handle)}(?![a-z0-9_-])", re.IGNORECASE)
    rows = await raw("SELECT id, body FROM comment WHERE lower(body) LIKE {}", f"%@{handle.lower()}%")
    for row in rows:
        body = pattern.sub(f"@{replacement}", row["body"])
        if body != row["body"]:
            await Comment.update({Comment.body: body}).where(Comment.id == row["id"])


async def _remove_reviews(member_id: int) -> None:
    from app.shop.reviews import _lock_product, _move_rating
    from app.shop.tables import Review

    for review in await Review.select(Review.id, Review.product, Review.rating, Review.hidden).where(
            Review.member == member_id):
        await _lock_product(review["product"])
        hidden = await Review.update({Review.hidden: True, Review.hidden_reason: "Removed by its author"}).where(
            (Review.id == review["id"]) & Review.hidden.eq(False)).returning(Review.rating)
        if hidden:
            await _move_rating(review["product"], -1, -hidden[0]["rating"])
        await Review.update({Review.title: "", Review.body: ""}).where(Review.id == review["id"])


async def _remove_ideas(member_id: int, result: DeletionResult) -> None:
    """Unpublished ideas go; a public idea goes only when nobody else took part in it (no votes,
    no other member's comment, no campaign or product). The rest stays under "Deleted member"."""
    from app.campaigns.tables import Campaign
    from app.community.tables import Comment, Follow
    from app.ideas.service import PUBLIC_STATUSES
    from app.ideas.tables import Idea, IdeaImage
    from app.shop.tables import Product

    public = {s.value for s in PUBLIC_STATUSES}
    for idea in await Idea.select(Idea.id, Idea.status, Idea.vote_count).where(Idea.author == member_id):
        if idea["status"] in public and (
            idea["vote_count"] > 0
            or await Campaign.exists().where(Campaign.idea == idea["id"])
            or await Product.exists().where(Product.idea == idea["id"])
            or await Comment.exists().where((Comment.idea == idea["id"]) & (Comment.author != member_id))
        ):
            continue
        images = await IdeaImage.select(IdeaImage.key, IdeaImage.thumb_key).where(IdeaImage.idea == idea["id"])
        result.image_keys += [k for im in images for k in (im["key"], im["thumb_key"]) if k]
        await Follow.delete().where((Follow.kind == "idea") & (Follow.target == idea["id"]))
        await Idea.delete().where(Idea.id == idea["id"])
        result.removed_ideas += 1


# ---- routes -----------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _ip(request: Request) -> str:
    return request.scope.get("state", {}).get("client_ip", "")


@get("/account/export", guards=[requires_member])
async def export_download(request: Request) -> Response:
    member = current_member(request)
    data = await export_data(member.id)
    name = f"crowdmade-data-{member.handle}-{utcnow().date().isoformat()}.json"
    return Response(export_json(data), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def _consents_page(request: Request, *, status_code: int = 200) -> Response:
    member = current_member(request)
    row = await Member.select(Member.marketing_opt_in).where(Member.id == member.id).first()
    return render(request, "accounts/privacy_consents.html", {
        "opt_in": bool(row["marketing_opt_in"]), "history": await consent_history(member.id),
        "text": marketing_text(), "text_version": MARKETING_TEXT_VERSION,
    }, status_code=status_code)


@get("/account/consents", guards=[requires_member])
async def consents_page(request: Request) -> Response:
    return await _consents_page(request)


@post("/account/consents", guards=[requires_member])
async def consents_submit(request: Request) -> Response:
    data = await _form(request)
    granted = data.get("marketing_email") in ("on", "yes", "1", "true")
    changed = await set_marketing_consent(current_member(request).id, granted)
    if not changed:
        message = gettext("Nothing changed.")
    elif granted:
        message = gettext("Thanks: you will get our news by email. You can stop them here any time.")
    else:
        message = gettext("Done: we will not send you marketing emails.")
    return redirect("/account/consents", flash=("success" if changed else "info", message))


@post("/login/link")
async def login_link_request(request: Request) -> Response:
    data = await _form(request)
    try:
        email = await request_login_link(data.get("link_email", ""), ip=_ip(request))
    except (FormError, TooManyRequests) as error:
        errors = error.errors if isinstance(error, FormError) else {"link_email": error.message}
        return render(request, "accounts/login.html", {
            "values": {"link_email": data.get("link_email", "")}, "errors": errors, "next": ""},
            status_code=429 if isinstance(error, TooManyRequests) else 400)
    return render(request, "accounts/privacy_link_sent.html", {"email": email, "minutes": LOGIN_LINK_MINUTES})


@get("/login/link")
async def login_link_page(request: Request, token: str = "") -> Response:
    # A GET never signs in (mail scanners open links): the page's button does.
    return render(request, "accounts/privacy_login_link.html", {"token": token, "errors": {}})


@post("/login/link/confirm")
async def login_link_confirm(request: Request) -> Response:
    from app.accounts.routes import start_session

    data = await _form(request)
    try:
        member = await sign_in_with_link(data.get("token", ""), ip=_ip(request))
    except (FormError, TooManyRequests) as error:
        errors = error.errors if isinstance(error, FormError) else {"token": error.message}
        return render(request, "accounts/privacy_login_link.html", {"token": "", "errors": errors},
                      status_code=429 if isinstance(error, TooManyRequests) else 400)
    cookie = await start_session(request, member)
    return redirect("/", flash=("success", gettext("Welcome back, %(name)s.", name=member.display_name)), cookies=[cookie])


@get("/account/delete", guards=[requires_member])
async def delete_page(request: Request) -> Response:
    member = current_member(request)
    return render(request, "accounts/privacy_delete.html", {**await deletion_plan(member.id), "errors": {}})


@post("/account/delete", guards=[requires_member])
async def delete_request(request: Request) -> Response:
    member = current_member(request)
    plan = await deletion_plan(member.id)
    if plan["blockers"]:
        return render(request, "accounts/privacy_delete.html", {**plan, "errors": {}}, status_code=409)
    try:
        await request_deletion(member)
    except TooManyRequests as error:
        return render(request, "accounts/privacy_delete.html", {**plan, "errors": {"form": error.message}},
                      status_code=429)
    return redirect("/account/delete", flash=(
        "success", gettext("We sent a confirmation link to %(email)s. It works for %(hours)s hours, once.",
                           email=member.email, hours=DELETE_LINK_HOURS)))


async def _confirm_context(token: str, **extra: Any) -> dict[str, Any]:
    target = await member_for_deletion(token)
    plan = await deletion_plan(target.id) if target else {"blockers": [], "cancel": []}
    return {"token": token if target else "", "target": target, "choices": CONTENT_CHOICES, "content": "keep",
            "errors": {}, **plan, **extra}


@get("/account/delete/confirm")
async def delete_confirm_page(request: Request, token: str = "") -> Response:
    return render(request, "accounts/privacy_delete_confirm.html", await _confirm_context(token))


@post("/account/delete/confirm")
async def delete_confirm(request: Request) -> Response:
    from app.accounts.routes import anonymous_cookie

    data = await _form(request)
    token, content = data.get("token", ""), data.get("content", "keep")
    try:
        result = await delete_account(token, content=content)
    except (FormError, Conflict) as error:
        errors = error.errors if isinstance(error, FormError) else {"form": error.message}
        ctx = await _confirm_context(token, errors=errors, content=content)
        return render(request, "accounts/privacy_delete_confirm.html", ctx,
                      status_code=400 if isinstance(error, FormError) else 409)
    cookies: list[Cookie] = []
    viewer = current_member(request)
    if viewer is not None and viewer.id == result.member_id:
        cookies.append(anonymous_cookie(request))  # this browser's session ended with the account
    return redirect("/account/deleted", cookies=cookies)


@get("/account/deleted")
async def deleted_page(request: Request) -> Response:
    return render(request, "accounts/privacy_deleted.html")


ROUTES = [
    export_download,
    consents_page,
    consents_submit,
    login_link_request,
    login_link_page,
    login_link_confirm,
    delete_page,
    delete_request,
    delete_confirm_page,
    delete_confirm,
    deleted_page,
]
