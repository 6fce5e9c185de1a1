"""Privacy: export all my data, delete my account, marketing consents, sign-in by email link.

The services; the pages are in privacy_routes.py. Export and deletion ask each domain for its part
(app/accounts/personal_data.py): this module reads and erases accounts' own tables only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from markupsafe import escape

from app.accounts import personal_data
from app.accounts import service as accounts
from app.accounts.levels import level_for
from app.accounts.personal_data import DELETED_NAME, Erasure, names_actor
from app.accounts.service import LOGIN_WINDOW_SECONDS, CurrentMember, new_token, normalize_email, token_hash
from app.accounts.tables import ApiToken, Consent, EmailToken, Member, Session
from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound, TooManyRequests
from app.i18n import N_, gettext, ngettext
from app.mail.service import queue_email
from app.mail.tables import EmailMessage
from app.media.storage import storage
from app.settings import get_settings
from app.throttle import counters

log = logging.getLogger("crowdmade.privacy")

LOGIN_LINK_MINUTES = 15
DELETE_LINK_HOURS = 2
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


async def export_data(member_id: int) -> dict[str, Any]:
    """Everything we keep about the member, as plain data: their own rows only (no other
    member's email, address or private content; public titles of things they took part in).
    Each domain adds the sections it keeps (app/accounts/personal_data.py)."""
    profile = await Member.select(
        Member.id, Member.email, Member.email_verified_at, Member.display_name, Member.handle, Member.bio,
        Member.location, Member.points_balance, Member.points_lifetime, Member.wishlist_public,
        Member.marketing_opt_in, Member.locale, Member.is_staff, Member.created_at,
    ).where((Member.id == member_id) & Member.deleted_at.is_null()).first()
    if profile is None:
        raise NotFound(gettext("Member not found"))
    profile["level"] = level_for(profile["points_lifetime"]).level.name
    profile["email_verified"] = profile.pop("email_verified_at") is not None
    data: dict[str, Any] = {
        "export": {"format_version": EXPORT_VERSION, "site": get_settings().site_name, "created_at": utcnow()},
        "profile": profile,
    }
    for part in personal_data.parts():
        if part.export:
            data.update(await part.export(member_id, profile))
    return data


async def _export_own(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    """Accounts' own sections: consents, API tokens, sessions, and the emails sent to the member."""
    emails = await EmailMessage.select(EmailMessage.kind, EmailMessage.subject, EmailMessage.status,
                                       EmailMessage.created_at, EmailMessage.sent_at).where(
        EmailMessage.recipient == profile["email"]).order_by(EmailMessage.id)
    tokens = await ApiToken.select(ApiToken.name, ApiToken.created_at, ApiToken.last_used_at).where(
        ApiToken.member == member_id).order_by(ApiToken.id)
    sessions = await Session.select(Session.created_at, Session.last_seen_at, Session.expires_at, Session.ip,
                                    Session.user_agent).where(Session.member == member_id).order_by(Session.id)
    return {"consents": await consent_history(member_id), "api_tokens": tokens, "sessions": sessions,
            "emails": emails}


def export_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False).encode()


# ---- account deletion -------------------------------------------------------------------------


async def deletion_blockers(member_id: int) -> list[str]:
    """Why the account cannot be deleted right now (empty: it can). Money in motion and goods
    still to deliver need the member's details; open pledges are cancelled, not blockers."""
    reasons: list[str] = []
    for part in personal_data.parts():
        if part.blockers:
            reasons += await part.blockers(member_id)
    return reasons


async def deletion_plan(member_id: int) -> dict[str, Any]:
    """What the confirmation page shows: blockers, and what deleting cancels (open pledges)."""
    cancel: list[dict[str, Any]] = []
    for part in personal_data.parts():
        if part.pending:
            cancel += await part.pending(member_id)
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
    first; money in motion or goods to deliver refuse with a Conflict and a clear message. Each
    domain erases what it keeps (app/accounts/personal_data.py), inside one transaction."""
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
    for part in personal_data.parts():
        if part.prepare:
            result.cancelled_pledges += await part.prepare(member)
    async with write_transaction():
        await _lock_member(member_id)
        await _use_token(raw, "delete")
        if reasons := await deletion_blockers(member_id):  # a settlement may have started meanwhile
            raise Conflict(" ".join(reasons))
        old = await Member.select(Member.email, Member.display_name, Member.handle, Member.stripe_customer_id).where(
            (Member.id == member_id) & Member.deleted_at.is_null()).first()
        if old is None:
            raise FormError({"token": gettext("This account is already deleted.")})
        erasure = Erasure(member_id, old["email"], old["display_name"], old["handle"], old["stripe_customer_id"],
                          remove_content=content == "remove")
        for part in personal_data.parts():
            if part.erase:
                await part.erase(erasure)
    log.info("account deleted member=%s content=%s", member_id, content)
    for part in personal_data.parts():
        if part.after:
            await part.after(erasure)
    _delete_files(erasure.image_keys)
    result.removed_ideas = erasure.removed_ideas
    result.stripe_customer_deleted = erasure.stripe_customer_deleted
    result.image_keys = erasure.image_keys
    return result


def _delete_files(keys: list[str]) -> None:
    for key in keys:
        try:
            storage().delete(key)
        except OSError as error:
            log.warning("could not delete %s: %s", key, error)


async def _erase_own(erasure: Erasure) -> None:
    """Accounts' own traces: the member row pseudonymised, sessions, tokens, consents, the emails
    sent to the member, and other members' emails that name them as the one who acted."""
    member_id, name = erasure.member_id, erasure.display_name
    await Member.update({
        Member.email: f"deleted-{member_id}@invalid", Member.display_name: DELETED_NAME,
        Member.handle: f"deleted-{member_id}", Member.bio: "", Member.location: "",
        Member.password_hash: "!deleted",  # no hash matches it: password login is impossible
        Member.is_staff: False, Member.is_admin: False, Member.email_verified_at: None,
        Member.stripe_customer_id: "", Member.wishlist_public: False, Member.marketing_opt_in: False,
        Member.ab_subject: "", Member.deleted_at: utcnow(),
    }).where(Member.id == member_id)
    for table in (Session, ApiToken, EmailToken, Consent):
        await table.delete().where(table.member == member_id)
    await EmailMessage.delete().where(EmailMessage.recipient == erasure.email)
    prefix = f"{name} "
    mails = [m for m in await raw(
        "SELECT id, subject, text_body, html_body FROM email_message WHERE substr(subject, 1, {}) = {}",
        len(prefix), prefix) if names_actor(m["subject"], name)]
    if erasure.remove_content:
        if mails:
            await EmailMessage.delete().where(EmailMessage.id.is_in([m["id"] for m in mails]))
        return
    for mail in mails:
        old, new = mail["subject"], DELETED_NAME + mail["subject"][len(name):]
        # The subject is the notification's title, which the bodies repeat word for word.
        await EmailMessage.update({
            EmailMessage.subject: new,
            EmailMessage.text_body: mail["text_body"].replace(old, new),
            EmailMessage.html_body: mail["html_body"].replace(str(escape(old)), str(escape(new))),
        }).where(EmailMessage.id == mail["id"])


personal_data.register(personal_data.Part("accounts", order=10, export=_export_own, erase=_erase_own))
