"""HTML pages for campaigns: greenlight form, campaign list, pledge flow, my pledges, payment
fixes, staff campaign page, and the live progress stream (server-sent events)."""

from __future__ import annotations

import datetime as dt

from litestar import Request, Response, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.campaigns import delivery, live, service, settlement, stretch
from app.campaigns.service import GreenlightTerms, VariantTerms
from app.errors import Conflict, Forbidden, FormError
from app.i18n import gettext
from app.ideas import service as ideas
from app.payments import cards
from app.payments.gateway import GatewayError, PaymentOutcome, gateway
from app.settings import get_settings
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, event_stream, is_htmx, redirect, render
from app.web.templating import render_text


async def _form(request: Request) -> dict:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _variants_from(form: dict) -> list[VariantTerms]:
    variants = []
    for index in range(20):
        name = (form.get(f"variant_name_{index}") or "").strip()
        limit = (form.get(f"variant_limit_{index}") or "").strip()
        if name:
            variants.append(VariantTerms(name, int(limit) if limit.isdecimal() else None))
    return variants


@get("/staff/ideas/{idea_id:int}/greenlight", guards=[requires_staff])
async def greenlight_page(request: Request, idea_id: int) -> Response:
    idea = await ideas.get_idea(idea_id, current_member(request))
    delivery = (dt.date.today() + dt.timedelta(days=120)).isoformat()
    values = {"price": "", "goal_units": "100", "duration_days": "30", "estimated_delivery": delivery,
              "early_bird_price": "", "early_bird_units": "0", "variant_name_0": "S", "variant_name_1": "M",
              "variant_name_2": "L", "variant_name_3": "XL"}
    return render(request, "campaigns/greenlight.html", {"idea": idea, "values": values, "errors": {}})


@post("/staff/ideas/{idea_id:int}/greenlight", guards=[requires_staff])
async def greenlight_submit(request: Request, idea_id: int) -> Response:
    form = await _form(request)
    terms = GreenlightTerms(
        price=form.get("price", ""), early_bird_price=form.get("early_bird_price", ""),
        early_bird_units=form.get("early_bird_units", "0"), goal_units=form.get("goal_units", ""),
        duration_days=form.get("duration_days", "30"), estimated_delivery=form.get("estimated_delivery", ""),
        variants=_variants_from(form), vat_rate=form.get("vat_rate", ""),
    )
    try:
        await service.greenlight(current_member(request), idea_id, terms)
    except FormError as error:
        idea = await ideas.get_idea(idea_id, current_member(request))
        return render(request, "campaigns/greenlight.html", {"idea": idea, "values": form, "errors": error.errors},
                      status_code=400)
    except Conflict as error:
        return redirect(f"/ideas/{idea_id}", flash=("error", error.message))
    return redirect(f"/ideas/{idea_id}", flash=("success", gettext("Greenlit! The pre-order campaign is set up.")))


@get("/campaigns")
async def campaign_list(request: Request, sort: str = "ending") -> Response:
    try:
        rows = await service.list_campaigns(sort)
    except FormError:
        sort, rows = "ending", await service.list_campaigns("ending")
    thumbs = {}
    items = [{"id": r["idea"]} for r in rows]
    await ideas.attach_thumbnails(items)
    for item in items:
        thumbs[item["id"]] = item.get("thumb_key")
    return render(request, "campaigns/list.html", {"campaigns": rows, "sort": sort, "thumbs": thumbs},
                  fragment="campaigns/_list_items.html")


async def panel_context(campaign: dict, member) -> dict:  # noqa: ANN001
    mine = await service.open_pledge_of(member, campaign["id"]) if member else None
    return {"campaign": campaign, "my_pledge": mine,
            "can_early": bool(member and member.points_lifetime >= service.EARLY_ACCESS_LEVEL)}


@get("/campaigns/{campaign_id:int}/progress")
async def campaign_progress(request: Request, campaign_id: int) -> Response:
    campaign = await service.get_campaign(campaign_id)
    return render(request, "campaigns/_progress.html", {"campaign": campaign})


@get("/campaigns/{campaign_id:int}/live", opt={"skip_compression": True})
async def campaign_live(campaign_id: int) -> ServerSentEvent:
    """Server-sent events: the progress fragment each time the campaign's numbers change."""
    await service.get_campaign(campaign_id)  # 404 for an unknown campaign

    async def progress() -> ServerSentEventMessage:
        campaign = await service.get_campaign(campaign_id)
        html = render_text("campaigns/_progress.html", {"campaign": campaign})
        return ServerSentEventMessage(event="progress", data=html.replace("\n", " "))

    return event_stream(live.subscribe(campaign_id), progress)


@post("/campaigns/{campaign_id:int}/pledge", guards=[requires_member])
async def pledge_submit(request: Request, campaign_id: int) -> Response:
    member = current_member(request)
    form = await _form(request)
    campaign = await service.get_campaign(campaign_id)
    try:
        start = await service.start_pledge(member, campaign_id, variant_id=form.get("variant"),
                                           quantity=form.get("quantity", "1"), consent=form.get("consent") == "yes")
    except FormError as error:
        return redirect(f"/ideas/{campaign['idea']}#pledge", flash=("error", " ".join(error.errors.values())))
    except (Conflict, Forbidden) as error:
        return redirect(f"/ideas/{campaign['idea']}#pledge", flash=("error", error.message))
    except GatewayError:
        return redirect(f"/ideas/{campaign['idea']}#pledge",
                        flash=("error", gettext("Payments are unavailable right now; nothing was reserved. Please try again.")))
    return redirect(f"/pledges/{start.pledge_id}/card")


async def _pledge_page_context(member, pledge_id: int) -> dict:  # noqa: ANN001
    pledge = await service.get_pledge(member, pledge_id)
    campaign = await service.get_campaign(pledge["campaign"])
    variant = next((v for v in campaign["variants"] if v["id"] == pledge["variant"]), None)
    return {"pledge": pledge, "campaign": campaign, "variant": variant}


@get("/pledges/{pledge_id:int}/card", guards=[requires_member])
async def pledge_card_page(request: Request, pledge_id: int) -> Response:
    member = current_member(request)
    ctx = await _pledge_page_context(member, pledge_id)
    if ctx["pledge"]["status"] != "pending":
        return redirect("/me/pledges")
    try:
        intent = await gateway().retrieve_setup_intent(ctx["pledge"]["setup_intent_id"])
    except GatewayError:
        return redirect("/me/pledges", flash=("error", gettext("Payments are unavailable right now. Please try again in a minute.")))
    ctx.update(client_secret=intent.client_secret, publishable_key=cards.publishable_key(), errors={})
    return render(request, "campaigns/card.html", ctx)


@post("/pledges/{pledge_id:int}/confirm", guards=[requires_member])
async def pledge_confirm(request: Request, pledge_id: int) -> Response:
    member = current_member(request)
    form = await _form(request)
    try:
        pledge = await service.confirm_pledge(member, pledge_id, setup_intent_id=form.get("setup_intent") or None)
    except FormError as error:
        return redirect(f"/pledges/{pledge_id}/card", flash=("error", " ".join(error.errors.values())))
    except Conflict as error:
        return redirect("/me/pledges", flash=("error", error.message))
    return redirect("/me/pledges", flash=("success", gettext(
        "Thank you! Your pledge of %(quantity)s unit(s) is active. Your card is charged only if the campaign is funded.",
        quantity=pledge["quantity"])))


@get("/me/pledges", guards=[requires_member])
async def my_pledges(request: Request) -> Response:
    member = current_member(request)
    rows = await service.my_pledges(member)
    variants = await service.variants_of(sorted({row["campaign"] for row in rows if row["editable"]}))
    return render(request, "campaigns/my_pledges.html", {"pledges": rows, "variants": variants,
                                                         "max_quantity": service.MAX_QUANTITY})


@post("/pledges/{pledge_id:int}/change", guards=[requires_member])
async def pledge_change(request: Request, pledge_id: int) -> Response:
    member = current_member(request)
    form = await _form(request)
    try:
        pledge = await service.change_pledge(member, pledge_id, variant_id=form.get("variant"),
                                             quantity=form.get("quantity"))
    except (FormError, Conflict, Forbidden) as error:
        message = " ".join(error.errors.values()) if isinstance(error, FormError) else error.message
        if is_htmx(request):
            return await _pledge_row(request, member, pledge_id, error=message)
        return redirect("/me/pledges", flash=("error", message))
    if is_htmx(request):
        return await _pledge_row(request, member, pledge["id"], notice=gettext("Saved."))
    return redirect("/me/pledges", flash=("success", gettext("Your pledge is changed.")))


async def _pledge_row(request: Request, member, pledge_id: int, error: str = "", notice: str = "") -> Response:  # noqa: ANN001
    rows = [r for r in await service.my_pledges(member) if r["id"] == pledge_id]
    variants = {}
    if rows and rows[0]["editable"]:
        variants[rows[0]["campaign"]] = (await service.get_campaign(rows[0]["campaign"]))["variants"]
    return render(request, "campaigns/_pledge_row.html", {"p": rows[0] if rows else None, "variants": variants,
                                                          "row_error": error, "row_notice": notice,
                                                          "max_quantity": service.MAX_QUANTITY})


@post("/pledges/{pledge_id:int}/cancel", guards=[requires_member])
async def pledge_cancel(request: Request, pledge_id: int) -> Response:
    try:
        await service.cancel_pledge(current_member(request), pledge_id)
    except Conflict as error:
        return redirect("/me/pledges", flash=("error", error.message))
    return redirect("/me/pledges", flash=("info", gettext("Your pledge is cancelled. Nothing will be charged.")))


@get("/pledges/{pledge_id:int}/fix", guards=[requires_member])
async def pledge_fix_page(request: Request, pledge_id: int) -> Response:
    member = current_member(request)
    ctx = await _pledge_page_context(member, pledge_id)
    if ctx["pledge"]["status"] != "payment_failed":
        return redirect("/me/pledges", flash=("info", gettext("This pledge has no payment to fix.")))
    attempt = await settlement.last_attempt(pledge_id)
    try:
        setup = await cards.start_card_setup(member, metadata={"pledge_id": str(pledge_id), "purpose": "fix"})
    except GatewayError:
        return redirect("/me/pledges", flash=("error", gettext("Payments are unavailable right now. Please try again in a minute.")))
    if ctx["pledge"]["failure_message"]:  # our own texts are translated; Stripe's come as Stripe wrote them
        ctx["pledge"]["failure_message"] = gettext(ctx["pledge"]["failure_message"])
    deadline = (ctx["pledge"]["failed_at"] or dt.datetime.now(dt.UTC))
    ctx.update(attempt=attempt, client_secret=setup.client_secret, setup_intent_id=setup.id,
               publishable_key=cards.publishable_key(),
               needs_authentication=bool(attempt and attempt["status"] == "needs_authentication" and attempt["client_secret"]),
               fix_days=get_settings().payment_fix_days, failed_at=deadline)
    return render(request, "campaigns/fix.html", ctx)


@post("/pledges/{pledge_id:int}/fix/authenticated", guards=[requires_member])
async def pledge_fix_authenticated(request: Request, pledge_id: int) -> Response:
    try:
        result = await settlement.complete_authentication(current_member(request), pledge_id)
    except Conflict as error:
        return redirect("/me/pledges", flash=("error", error.message))
    if result.outcome is PaymentOutcome.PAID:
        return redirect("/me/pledges", flash=("success", gettext("Thank you! Your payment went through.")))
    return redirect(f"/pledges/{pledge_id}/fix",
                    flash=("error", gettext("The payment was not authenticated. Try again or use another card.")))


@post("/pledges/{pledge_id:int}/fix/card", guards=[requires_member])
async def pledge_fix_card(request: Request, pledge_id: int) -> Response:
    form = await _form(request)
    try:
        result = await settlement.pay_with_new_card(current_member(request), pledge_id, form.get("setup_intent", ""))
    except FormError as error:
        return redirect(f"/pledges/{pledge_id}/fix", flash=("error", " ".join(error.errors.values())))
    except Conflict as error:
        return redirect("/me/pledges", flash=("error", error.message))
    if result is not None and result.outcome is PaymentOutcome.PAID:
        return redirect("/me/pledges", flash=("success", gettext("Thank you! Your payment went through.")))
    message = (gettext(result.message) if result is not None and result.message  # Stripe's own text stays as it is
               else gettext("That card was declined too. Try another card."))
    return redirect(f"/pledges/{pledge_id}/fix", flash=("error", message))


@get("/staff/campaigns/{campaign_id:int}", guards=[requires_staff])
async def staff_campaign(request: Request, campaign_id: int) -> Response:
    return await _staff_campaign_page(request, campaign_id)


async def _staff_campaign_page(request: Request, campaign_id: int, extra: dict | None = None,
                               status_code: int = 200) -> Response:
    campaign = await service.get_campaign(campaign_id)
    summary = await settlement.settlement_summary(campaign_id)
    for row in summary["failed"]:
        row["failure_message"] = gettext(row["failure_message"]) if row["failure_message"] else row["failure_message"]
    labels = {status: gettext(text) for status, text in service.PLEDGE_LABELS.items()}
    return render(request, "campaigns/staff.html", {"campaign": campaign, "summary": summary, "labels": labels,
                                                    "stretch_editable": stretch.EDITABLE_STATUSES,
                                                    "delivery": await delivery.timeline(campaign),
                                                    "today": dt.date.today(), **(extra or {})},
                  status_code=status_code)


@post("/staff/campaigns/{campaign_id:int}/delivery/milestones", guards=[requires_staff])
async def staff_milestone(request: Request, campaign_id: int) -> Response:
    form = await _form(request)
    try:
        await delivery.post_milestone(current_member(request), campaign_id, delivery.MilestoneInput(
            title=form.get("title", ""), body=form.get("body", "")))
    except FormError as error:
        return await _staff_campaign_page(request, campaign_id, {"milestone_errors": error.errors,
                                                                 "milestone_values": form}, status_code=400)
    except Conflict as error:
        return redirect(f"/staff/campaigns/{campaign_id}#delivery", flash=("error", error.message))
    return redirect(f"/staff/campaigns/{campaign_id}#delivery",
                    flash=("success", gettext("Milestone posted; backers are emailed.")))


@post("/staff/campaigns/{campaign_id:int}/delivery/date", guards=[requires_staff])
async def staff_delivery_date(request: Request, campaign_id: int) -> Response:
    form = await _form(request)
    try:
        await delivery.change_date(current_member(request), campaign_id, delivery.DateChangeInput(
            new_date=form.get("new_date", ""), reason=form.get("reason", "")))
    except FormError as error:
        return await _staff_campaign_page(request, campaign_id, {"date_errors": error.errors, "date_values": form},
                                          status_code=400)
    except Conflict as error:
        return redirect(f"/staff/campaigns/{campaign_id}#delivery", flash=("error", error.message))
    return redirect(f"/staff/campaigns/{campaign_id}#delivery",
                    flash=("success", gettext("Estimated delivery changed; backers are emailed with the reason.")))


@post("/staff/campaigns/{campaign_id:int}/stretch-goals", guards=[requires_staff])
async def staff_stretch_add(request: Request, campaign_id: int) -> Response:
    form = await _form(request)
    data = stretch.GoalInput(metric=form.get("metric", ""), threshold=form.get("threshold", ""),
                             title=form.get("title", ""), description=form.get("description", ""))
    try:
        await stretch.add_goal(current_member(request), campaign_id, data)
    except FormError as error:
        return await _staff_campaign_page(request, campaign_id, {"stretch_errors": error.errors, "stretch_values": form},
                                          status_code=400)
    except Conflict as error:
        return redirect(f"/staff/campaigns/{campaign_id}#stretch", flash=("error", error.message))
    return redirect(f"/staff/campaigns/{campaign_id}#stretch", flash=("success", gettext("Stretch goal added.")))


@post("/staff/campaigns/{campaign_id:int}/stretch-goals/{goal_id:int}/delete", guards=[requires_staff])
async def staff_stretch_remove(request: Request, campaign_id: int, goal_id: int) -> Response:
    try:
        await stretch.remove_goal(current_member(request), campaign_id, goal_id)
    except Conflict as error:
        return redirect(f"/staff/campaigns/{campaign_id}#stretch", flash=("error", error.message))
    return redirect(f"/staff/campaigns/{campaign_id}#stretch", flash=("info", gettext("Stretch goal removed.")))


@post("/staff/campaigns/{campaign_id:int}/close", guards=[requires_staff])
async def staff_close(request: Request, campaign_id: int) -> Response:
    result = await service.close_campaign(campaign_id, actor_id=current_member(request).id, early=True)
    if result is None:
        return redirect(f"/staff/campaigns/{campaign_id}", flash=("error", gettext("This campaign is not open.")))
    return redirect(f"/staff/campaigns/{campaign_id}", flash=("success", gettext("Campaign closed: %(status)s.", status=service.label(result))))


@post("/staff/campaigns/{campaign_id:int}/production", guards=[requires_staff])
async def staff_production(request: Request, campaign_id: int) -> Response:
    form = await _form(request)
    try:
        await service.mark_production(current_member(request), campaign_id, service.CampaignStatus(form.get("to", "")))
    except (ValueError, FormError):
        return redirect(f"/staff/campaigns/{campaign_id}", flash=("error", gettext("Choose a production step.")))
    except Conflict as error:
        return redirect(f"/staff/campaigns/{campaign_id}", flash=("error", error.message))
    return redirect(f"/staff/campaigns/{campaign_id}", flash=("success", gettext("Campaign updated.")))


ROUTES = [staff_production, greenlight_page, greenlight_submit, campaign_list, campaign_progress, campaign_live, pledge_submit,
          pledge_card_page, pledge_confirm, my_pledges, pledge_change, pledge_cancel, pledge_fix_page,
          pledge_fix_authenticated, pledge_fix_card, staff_campaign, staff_close, staff_stretch_add, staff_stretch_remove,
          staff_milestone, staff_delivery_date]
