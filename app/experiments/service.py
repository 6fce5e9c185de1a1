"""Experiments: deterministic assignment, exposures once per subject, conversions once, results.

- A *subject* is who is being tested: "m:<member id>" for a member, "v:<random>" for a visitor
  (a signed, long-lived `cm_ab` cookie, set the first time a running experiment is shown). At
  login or sign-up a member whose `ab_subject` is still empty keeps the visitor's subject (else
  "m:<id>"), so the variant seen before logging in is the one seen after.
- Assignment is `sha256(key + ":" + subject) mod total weight`: no row is needed to know a
  variant, the same subject always gets the same one, in every process.
- An *exposure* is written only when a variant is actually shown (the template called
  `experiment("key")`, or a handler called `variant_for`): one row per (experiment, subject),
  `INSERT ... ON CONFLICT DO NOTHING` on the unique index, and only while the experiment runs.
- A *conversion* sets `converted_at` once, by a conditional update (`converted_at IS NULL`,
  exposed before now, experiment still running with that goal), from one-line hooks in the
  services where a goal event happens (`record_goal`).
- Definitions of live experiments are cached per process (templates are sync and cannot query):
  refreshed every REFRESH_SECONDS and at once in the process where staff change one. Draft and
  unknown experiments show the caller's default; a stopped one shows its shipped winner; neither
  writes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.accounts.tables import Member
from app.db import as_aware, raw, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound
from app.experiments.tables import Experiment, ExperimentExposure
from app.i18n import N_, gettext, ngettext
from app.settings import get_settings

if TYPE_CHECKING:
    from app.accounts.service import CurrentMember

log = logging.getLogger("crowdmade.experiments")

GOALS = {
    "vote": N_("Votes for an idea"),
    "pledge": N_("Pledges (card saved)"),
    "add_to_cart": N_("Adds to cart"),
    "order_paid": N_("Paid shop orders"),
    "signup": N_("Sign-ups"),
}
STATUS_LABELS = {"draft": N_("Draft"), "running": N_("Running"), "stopped": N_("Stopped")}
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,59}$")
# Everyone sees the same price (honest prices): a variant may change words, never an amount of
# money, a discount or a price (in English or Swedish).
PRICE_RE = re.compile(r"(\d[\d\s.,]*\s*(kr\b|sek\b|eur\b|usd\b|€|\$|£|:-|%|off\b))|([€$£]\s*\d)|"
                      r"\b(prices?|pris(er|et)?|discounts?|rabatt(er)?|rea|sale|cheaper|billigare)\b", re.IGNORECASE)
MAX_VARIANTS = 4
MAX_WEIGHT = 1000
MIN_EXPOSURES = 100  # per variant, before the numbers mean much
MIN_CONVERSIONS = 10  # per variant
Z_95 = 1.959963984540054

COOKIE = "cm_ab"
COOKIE_MAX_AGE = 2 * 365 * 86400


# ---- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: difference of conversion rates (variant - control) with a
    95% interval (normal approximation, unpooled standard error) and a two-sided
    two-proportion z-test (pooled standard error)."""

    diff: float
    low: float
    high: float
    z: float | None
    p_value: float | None
    relative: float | None  # diff / control rate

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


def rate(conversions: int, exposures: int) -> float | None:
    return conversions / exposures if exposures else None


def compare(control_conversions: int, control_exposures: int, conversions: int, exposures: int) -> Comparison | None:
    if control_exposures <= 0 or exposures <= 0:
        return None
    p1 = control_conversions / control_exposures
    p2 = conversions / exposures
    diff = p2 - p1
    se = math.sqrt(p1 * (1 - p1) / control_exposures + p2 * (1 - p2) / exposures)
    pooled = (control_conversions + conversions) / (control_exposures + exposures)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_exposures + 1 / exposures))
    if se_pooled > 0:
        z = diff / se_pooled
        p_value = math.erfc(abs(z) / math.sqrt(2))  # = 2 * (1 - Phi(|z|))
    else:  # both rates 0 % or both 100 %: no evidence either way
        z, p_value = None, None
    return Comparison(diff=diff, low=diff - Z_95 * se, high=diff + Z_95 * se, z=z, p_value=p_value,
                      relative=diff / p1 if p1 else None)


# ---- assignment ---------------------------------------------------------------------------------


def assign(key: str, subject: str, variants: list[dict[str, Any]]) -> str:
    """The variant of `subject`: hash(key + subject) mod total weight, walked over the weights."""
    total = sum(int(v["weight"]) for v in variants)
    if total <= 0:
        return variants[0]["name"]
    digest = hashlib.sha256(f"{key}:{subject}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        point -= int(variant["weight"])
        if point < 0:
            return variant["name"]
    return variants[-1]["name"]  # unreachable


@dataclass(frozen=True)
class Live:
    """What a template needs to know about a running or shipped experiment."""

    id: int
    key: str
    status: str
    goal: str
    variants: list[dict[str, Any]]
    winner: str

    def shown(self, subject: str | None, default: str | None) -> str:
        if self.status == "running" and subject:
            return assign(self.key, subject, self.variants)
        if self.status == "stopped" and self.winner:
            return self.winner
        return default if default is not None else self.variants[0]["name"]


@dataclass
class _Cache:
    by_key: dict[str, Live] = field(default_factory=dict)
    loaded_at: float | None = None


_cache = _Cache()


def refresh_seconds() -> float | None:
    """How old the cached definitions may get before a page reloads them; None: never (tests
    run in one process, where every change invalidates the cache itself, and a reload would make
    per-page query counts depend on the clock)."""
    return None if get_settings().crowdmade_env == "test" else 5.0


def invalidate() -> None:
    _cache.loaded_at = None


async def live_experiments() -> dict[str, Live]:
    """Running and shipped experiments by key, from the per-process cache (one query per
    refresh, none per page)."""
    ttl = refresh_seconds()
    if _cache.loaded_at is None or (ttl is not None and time.monotonic() - _cache.loaded_at > ttl):
        rows = await Experiment.select(
            Experiment.id, Experiment.key, Experiment.status, Experiment.goal, Experiment.variants, Experiment.winner
        ).where(Experiment.status.is_in(["running", "stopped"]))
        _cache.by_key = {
            r["key"]: Live(r["id"], r["key"], r["status"], r["goal"], _variants(r["variants"]), r["winner"])
            for r in rows
        }
        _cache.loaded_at = time.monotonic()
    return _cache.by_key


def _variants(value: Any) -> list[dict[str, Any]]:
    data = json.loads(value) if isinstance(value, str) else (value or [])
    return [{"name": str(v["name"]), "weight": int(v["weight"])} for v in data]


# ---- subjects -----------------------------------------------------------------------------------


def _sign(nonce: str) -> str:
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"ab:{nonce}".encode(), hashlib.sha256).hexdigest()[:20]


def new_visitor_cookie_value() -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(nonce)}"


def subject_from_cookie(value: str | None) -> str | None:
    """The visitor subject in a `cm_ab` cookie; None if missing or not signed by us."""
    if not value or value.count(".") != 1:
        return None
    nonce, signature = value.split(".")
    if not nonce or len(nonce) > 30 or not hmac.compare_digest(signature, _sign(nonce)):
        return None
    return f"v:{nonce}"


def visitor_subject(request: Any) -> str | None:
    """The subject of this browser before login (from its `cm_ab` cookie), if it has one."""
    state = request.scope.get("state", {})
    ctx = state.get("experiments")
    if ctx is not None and ctx.new_cookie:
        return subject_from_cookie(ctx.new_cookie)
    return subject_from_cookie(request.cookies.get(COOKIE))


_member_subjects: OrderedDict[int, str] = OrderedDict()  # only non-empty ab_subject: never changes again
_MEMBER_CACHE_MAX = 10_000


async def member_subject(member_id: int) -> str:
    cached = _member_subjects.get(member_id)
    if cached:
        return cached
    row = await Member.select(Member.ab_subject).where(Member.id == member_id).first()
    stored = (row or {}).get("ab_subject") or ""
    if not stored:
        return f"m:{member_id}"
    _member_subjects[member_id] = stored
    if len(_member_subjects) > _MEMBER_CACHE_MAX:
        _member_subjects.popitem(last=False)
    return stored


async def adopt_subject(request: Any, member_id: int) -> str:
    """At login: a member without a stored subject keeps this browser's visitor subject (or
    "m:<id>" when it has none), once; from then on that is the member's subject."""
    if member_id in _member_subjects:
        return _member_subjects[member_id]
    subject = visitor_subject(request) or f"m:{member_id}"
    await Member.update({Member.ab_subject: subject}).where((Member.id == member_id) & (Member.ab_subject == ""))
    return await member_subject(member_id)


class RequestExperiments:
    """One request's view of the experiments: the subject, the variants shown, the exposures to
    write and the visitor cookie to set. Lives in `request.scope["state"]["experiments"]`."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.live: dict[str, Live] = {}
        self.subject: str | None = None
        self.new_cookie: str | None = None
        self.pending: dict[int, tuple[str, str]] = {}  # experiment id -> (subject, variant)
        self.prepared = False

    @classmethod
    def of(cls, request: Any) -> RequestExperiments:
        state = request.scope.setdefault("state", {})
        ctx = state.get("experiments")
        if ctx is None:
            ctx = state["experiments"] = cls(request)
        return ctx

    async def prepare(self) -> None:
        """Load what a sync template call needs: the live definitions and, when something runs,
        the member's stored subject."""
        self.live = await live_experiments()
        if self.subject is None and any(e.status == "running" for e in self.live.values()):
            member: CurrentMember | None = self.request.scope.get("state", {}).get("member")
            if member is not None:
                self.subject = await member_subject(member.id)
            else:
                self.subject = subject_from_cookie(self.request.cookies.get(COOKIE))
        self.prepared = True

    def _visitor_subject(self) -> str:
        if self.subject is None:
            self.new_cookie = new_visitor_cookie_value()
            self.subject = subject_from_cookie(self.new_cookie)
        return self.subject

    def variant(self, key: str, default: str | None = None) -> str:
        """The variant to show (sync, for templates): records an exposure when it runs."""
        found = self.live.get(key)
        if found is None:
            return default if default is not None else "control"
        if found.status != "running":
            return found.shown(None, default)
        subject = self._visitor_subject()
        name = found.shown(subject, default)
        self.pending.setdefault(found.id, (subject, name))
        return name

    async def flush(self) -> None:
        """Write the buffered exposures (one transaction); never fails the page."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        try:
            await record_exposures([(exp_id, subject, variant) for exp_id, (subject, variant) in pending.items()])
        except Exception:  # a page must not fail because a measurement could not be written
            log.exception("could not record %d experiment exposure(s)", len(pending))

    def cookie_header(self) -> str | None:
        if not self.new_cookie:
            return None
        parts = [f"{COOKIE}={self.new_cookie}", "Path=/", f"Max-Age={COOKIE_MAX_AGE}", "HttpOnly", "SameSite=Lax"]
        if get_settings().is_production:
            parts.append("Secure")
        return "; ".join(parts)


async def variant_for(request: Any, key: str, default: str | None = None) -> str:
    """For handlers: the variant this request's subject sees, its exposure written now. A new
    visitor's cookie is set by the page `render()` returns (see app/experiments/web.py)."""
    ctx = RequestExperiments.of(request)
    await ctx.prepare()
    name = ctx.variant(key, default)
    await ctx.flush()
    return name


async def record_exposures(rows: list[tuple[int, str, str]], now: dt.datetime | None = None) -> int:
    """Insert exposures once per (experiment, subject), only into a running experiment (the
    cache of another process may lag a stop). Returns how many rows were new."""
    now = now or utcnow()
    written = 0
    async with write_transaction():
        for experiment_id, subject, variant in rows:
            inserted = await raw(
                "INSERT INTO experiment_exposure (experiment, subject, variant, exposed_at) "
                "SELECT {}, {}, {}, {} WHERE EXISTS (SELECT 1 FROM experiment WHERE id = {} AND status = 'running') "
                "ON CONFLICT (experiment, subject) DO NOTHING RETURNING id",
                experiment_id, subject, variant, now, experiment_id,
            )
            written += len(inserted)
    return written


async def record_goal(goal: str, *, member_id: int | None = None, subject: str | None = None,
                      now: dt.datetime | None = None) -> int:
    """The goal event happened for this member (or subject): each running experiment with this
    goal in which the subject was exposed before now converts, once. Call it after the write that
    makes the event true, inside its transaction. Returns the conversions recorded."""
    live = await live_experiments()
    if not any(e.status == "running" and e.goal == goal for e in live.values()):
        return 0  # nothing measures this goal: no query on the hot path
    if subject is None:
        if member_id is None:
            return 0
        subject = await member_subject(member_id)
    now = now or utcnow()
    converted = await raw(
        "UPDATE experiment_exposure SET converted_at = {} "
        "WHERE subject = {} AND converted_at IS NULL AND exposed_at <= {} "
        "AND experiment IN (SELECT id FROM experiment WHERE status = 'running' AND goal = {}) RETURNING id",
        now, subject, now, goal,
    )
    return len(converted)


# ---- staff: define, start, stop -----------------------------------------------------------------


@dataclass
class ExperimentInput:
    key: str = ""
    title: str = ""
    description: str = ""
    goal: str = ""
    variants: list[tuple[str, str]] = field(default_factory=list)  # (name, weight) as typed


def clean_input(data: ExperimentInput) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    errors: dict[str, str] = {}
    key = (data.key or "").strip().lower()
    title = " ".join((data.title or "").split())
    description = (data.description or "").strip()
    goal = (data.goal or "").strip()
    if not KEY_RE.match(key):
        errors["key"] = gettext("Use 2-60 lowercase letters, digits, dashes or underscores, like pledge_button.")
    if not title:
        errors["title"] = gettext("Give the experiment a title.")
    elif len(title) > 120:
        errors["title"] = gettext("Keep the title under 120 characters.")
    if len(description) > 2000:
        errors["description"] = gettext("Keep the description under 2,000 characters.")
    if goal not in GOALS:
        errors["goal"] = gettext("Choose the event that counts as a conversion.")
    variants: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, (name, weight) in enumerate(data.variants[:MAX_VARIANTS], start=1):
        name = " ".join((name or "").split())
        weight = (weight or "").strip()
        if not name and not weight:
            continue
        if not name:
            problems.append(gettext("Variant %(n)s needs a name.", n=index))
            continue
        if len(name) > 40:
            problems.append(gettext("Variant %(n)s: names are at most 40 characters.", n=index))
            continue
        if name.lower() in seen:
            problems.append(gettext("Variant %(n)s: “%(name)s” is used twice.", n=index, name=name))
            continue
        if PRICE_RE.search(name):
            problems.append(gettext("Variant %(n)s: experiments may not vary prices or discounts; every member sees "
                                    "the same price. Test words, not amounts.", n=index))
            continue
        try:
            number = int(weight or "50")  # the form's placeholder
        except ValueError:
            number = -1
        if not 1 <= number <= MAX_WEIGHT:
            problems.append(gettext("Variant %(n)s: the weight is a whole number from 1 to %(max)s.", n=index, max=MAX_WEIGHT))
            continue
        seen.add(name.lower())
        variants.append({"name": name, "weight": number})
    if problems:
        errors["variants"] = " ".join(problems)
    elif len(variants) < 2:
        errors["variants"] = gettext("An experiment needs at least two variants: the control (first) and one to test.")
    if errors:
        raise FormError(errors)
    return {"key": key, "title": title, "description": description, "goal": goal}, variants


async def create_experiment(staff: CurrentMember, data: ExperimentInput) -> str:
    fields, variants = clean_input(data)
    rows = await Experiment.insert(Experiment(variants=variants, status="draft", **fields)).on_conflict(
        target=Experiment.key, action="DO NOTHING").returning(Experiment.id)
    if not rows:
        raise FormError({"key": gettext("An experiment with this key exists already: choose another key.")})
    log.info("experiment created key=%s by=%s", fields["key"], staff.id)
    return fields["key"]


async def get_experiment(key: str) -> dict[str, Any]:
    row = await Experiment.select().where(Experiment.key == key).first()
    if row is None:
        raise NotFound(gettext("No such experiment."))
    row["variants"] = _variants(row["variants"])
    row["status_label"] = gettext(STATUS_LABELS.get(row["status"], row["status"]))
    row["goal_label"] = gettext(GOALS.get(row["goal"], row["goal"]))
    return row


async def start_experiment(staff: CurrentMember, key: str) -> None:
    await get_experiment(key)
    moved = await Experiment.update({Experiment.status: "running", Experiment.started_at: utcnow()}).where(
        (Experiment.key == key) & (Experiment.status == "draft")).returning(Experiment.id)
    if not moved:
        raise Conflict(gettext("Only a draft experiment can be started."))
    invalidate()
    log.info("experiment started key=%s by=%s", key, staff.id)


async def stop_experiment(staff: CurrentMember, key: str, winner: str) -> None:
    """Stop measuring and ship `winner`: from now on everyone sees it."""
    experiment = await get_experiment(key)
    names = [v["name"] for v in experiment["variants"]]
    if winner not in names:
        raise FormError({"winner": gettext("Choose the variant everyone should see from now on.")})
    moved = await Experiment.update(
        {Experiment.status: "stopped", Experiment.stopped_at: utcnow(), Experiment.winner: winner}
    ).where((Experiment.key == key) & (Experiment.status == "running")).returning(Experiment.id)
    if not moved:
        raise Conflict(gettext("Only a running experiment can be stopped."))
    invalidate()
    log.info("experiment stopped key=%s winner=%s by=%s", key, winner, staff.id)


async def delete_experiment(staff: CurrentMember, key: str) -> None:
    """A draft, or a stopped experiment with its results (the site goes back to its default)."""
    await get_experiment(key)
    async with write_transaction():
        deleted = await Experiment.delete().where(
            (Experiment.key == key) & Experiment.status.is_in(["draft", "stopped"])).returning(Experiment.id)
        if not deleted:
            raise Conflict(gettext("Stop the experiment before deleting it."))
        await ExperimentExposure.delete().where(ExperimentExposure.experiment == deleted[0]["id"])
    invalidate()
    log.info("experiment deleted key=%s by=%s", key, staff.id)


async def list_experiments() -> list[dict[str, Any]]:
    rows = await Experiment.select(
        Experiment.id, Experiment.key, Experiment.title, Experiment.goal, Experiment.status, Experiment.winner,
        Experiment.variants, Experiment.started_at, Experiment.stopped_at, Experiment.created_at,
    ).order_by(Experiment.created_at, ascending=False)
    counts = {r["experiment"]: r for r in await raw(
        "SELECT experiment, COUNT(*) AS exposures, COUNT(converted_at) AS conversions "
        "FROM experiment_exposure GROUP BY experiment")}
    order = {"running": 0, "draft": 1, "stopped": 2}
    for row in rows:
        row["variants"] = _variants(row["variants"])
        row["status_label"] = gettext(STATUS_LABELS.get(row["status"], row["status"]))
        row["goal_label"] = gettext(GOALS.get(row["goal"], row["goal"]))
        found = counts.get(row["id"], {})
        row["exposures"] = int(found.get("exposures") or 0)
        row["conversions"] = int(found.get("conversions") or 0)
    return sorted(rows, key=lambda r: order.get(r["status"], 3))


# ---- results ------------------------------------------------------------------------------------


@dataclass
class VariantResult:
    name: str
    weight: int
    share: float  # of the total weight
    exposures: int
    conversions: int
    is_control: bool
    comparison: Comparison | None = None

    @property
    def rate(self) -> float | None:
        return rate(self.conversions, self.exposures)


@dataclass
class Results:
    experiment: dict[str, Any]
    variants: list[VariantResult]
    warnings: list[str]
    running_days: float | None

    @property
    def exposures(self) -> int:
        return sum(v.exposures for v in self.variants)

    @property
    def conversions(self) -> int:
        return sum(v.conversions for v in self.variants)

    @property
    def best_rate(self) -> float:
        return max((v.rate or 0.0 for v in self.variants), default=0.0)


async def results(key: str) -> Results:
    experiment = await get_experiment(key)
    counts = {r["variant"]: r for r in await raw(
        "SELECT variant, COUNT(*) AS exposures, COUNT(converted_at) AS conversions FROM experiment_exposure "
        "WHERE experiment = {} GROUP BY variant", experiment["id"])}
    total_weight = sum(v["weight"] for v in experiment["variants"]) or 1
    variants = [
        VariantResult(name=v["name"], weight=v["weight"], share=v["weight"] / total_weight,
                      exposures=int(counts.get(v["name"], {}).get("exposures") or 0),
                      conversions=int(counts.get(v["name"], {}).get("conversions") or 0), is_control=index == 0)
        for index, v in enumerate(experiment["variants"])
    ]
    control = variants[0]
    for variant in variants[1:]:
        variant.comparison = compare(control.conversions, control.exposures, variant.conversions, variant.exposures)
    warnings = []
    if experiment["status"] != "draft":
        few_exposures = [v.name for v in variants if v.exposures < MIN_EXPOSURES]
        few_conversions = [v.name for v in variants if v.conversions < MIN_CONVERSIONS]
        if few_exposures:
            warnings.append(ngettext("Too few exposures to trust the numbers yet: %(names)s has fewer than %(min)s.",
                                     "Too few exposures to trust the numbers yet: %(names)s have fewer than %(min)s.",
                                     len(few_exposures), names=", ".join(few_exposures), min=MIN_EXPOSURES))
        if few_conversions:
            warnings.append(ngettext(
                "Too few conversions: %(names)s has fewer than %(min)s. Wait before deciding; an early difference is often noise.",
                "Too few conversions: %(names)s have fewer than %(min)s. Wait before deciding; an early difference is often noise.",
                len(few_conversions), names=", ".join(few_conversions), min=MIN_CONVERSIONS))
    started = as_aware(experiment["started_at"])
    ended = as_aware(experiment["stopped_at"]) or utcnow()
    days = (ended - started).total_seconds() / 86400 if started else None
    return Results(experiment=experiment, variants=variants, warnings=warnings, running_days=days)
