"""JSON API for campaigns and pledges (DESIGN section 9)."""

from __future__ import annotations

from litestar import Request, delete, get, patch, post
from litestar.params import Parameter

from app.campaigns import delivery, service, stretch
from app.campaigns.schemas import (
    CampaignOut,
    DeliveryDateIn,
    DeliveryOut,
    DeliveryPostOut,
    GreenlightIn,
    MilestoneIn,
    PledgeIn,
    PledgeOut,
    PledgePatch,
    PledgeStartOut,
    StretchGoalIn,
    StretchGoalOut,
    VariantOut,
)
from app.campaigns.service import GreenlightTerms, VariantTerms
from app.i18n import gettext
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member


def campaign_out(row: dict) -> CampaignOut:
    return CampaignOut(
        id=row["id"], idea_id=row["idea"], title=row["idea.title"], status=row["status"], currency=row["currency"],
        price=row["price"], early_bird_price=row["early_bird_price"], early_bird_left=row["early_bird_left"],
        goal_units=row["goal_units"], pledged_units=row["pledged_units"], pledged_amount=row["pledged_amount"],
        backers=row["backers"], goal_reached=row["goal_reached"], starts_at=row["starts_at"],
        early_access_ends_at=row["early_access_ends_at"], deadline=row["ends_at"],
        estimated_delivery=row["estimated_delivery"],
        variants=[VariantOut(id=v["id"], name=v["name"], limit=v["limit_units"], left=v["left"])
                  for v in row.get("variants", [])],
        url=f"/ideas/{row['idea']}",
        stretch_goals=[StretchGoalOut(id=g["id"], metric=g["metric"], threshold=g["threshold"], current=g["current"],
                                      title=g["title"], description=g["description"], reached=g["reached"],
                                      reached_at=g["reached_at"]) for g in row.get("stretch_goals", [])],
    )


def pledge_out(row: dict) -> PledgeOut:
    return PledgeOut(id=row["id"], campaign_id=row["campaign"], variant_id=row["variant"], quantity=row["quantity"],
                     amount=row["amount"], status=row["status"], consent_version=row["consent_version"],
                     created_at=row["created_at"])


def _money(value) -> str:  # noqa: ANN001
    return "" if value is None else str(value)


@post("/staff/ideas/{idea_id:int}/greenlight", guards=[requires_staff], summary="Staff: greenlight an idea into a campaign")
async def api_greenlight(request: Request, idea_id: int, data: GreenlightIn) -> CampaignOut:
    terms = GreenlightTerms(
        price=_money(data.price), early_bird_price=_money(data.early_bird_price), early_bird_units=data.early_bird_units,
        goal_units=data.goal_units, duration_days=data.duration_days, ends_at=data.ends_at, starts_at=data.starts_at,
        estimated_delivery=data.estimated_delivery, variants=[VariantTerms(v.name, v.limit) for v in data.variants],
        vat_rate=data.vat_rate,
    )
    campaign_id = await service.greenlight(current_member(request), idea_id, terms)
    return campaign_out(await service.get_campaign(campaign_id))


@get("/campaigns", summary="Open campaigns; sort: ending, funded, almost, new")
async def api_campaigns(sort: str = "ending", limit: int = Parameter(default=24, ge=1, le=100)) -> list[CampaignOut]:
    return [campaign_out(r) for r in await service.list_campaigns(sort, limit)]


@get("/campaigns/{campaign_id:int}", summary="A campaign: state, goal, pledged units, backers, deadline")
async def api_campaign(campaign_id: int) -> CampaignOut:
    return campaign_out(await service.get_campaign(campaign_id))


@post("/campaigns/{campaign_id:int}/pledges", guards=[requires_member],
      summary="Start a pledge: returns the SetupIntent client secret for Stripe.js confirmCardSetup")
async def api_pledge(request: Request, campaign_id: int, data: PledgeIn) -> PledgeStartOut:
    start = await service.start_pledge(current_member(request), campaign_id, variant_id=data.variant,
                                       quantity=data.quantity, consent=data.consent)
    campaign = await service.get_campaign(campaign_id)
    return PledgeStartOut(pledge_id=start.pledge_id, amount=start.amount, currency=campaign["currency"],
                          setup_intent_client_secret=start.client_secret, publishable_key=start.publishable_key)


@post("/pledges/{pledge_id:int}/confirm", status_code=200, guards=[requires_member],
      summary="The server checks the SetupIntent with Stripe and activates the pledge")
async def api_confirm(request: Request, pledge_id: int) -> PledgeOut:
    return pledge_out(await service.confirm_pledge(current_member(request), pledge_id))


@patch("/pledges/{pledge_id:int}", guards=[requires_member], summary="Change variant or quantity before the deadline")
async def api_change(request: Request, pledge_id: int, data: PledgePatch) -> PledgeOut:
    return pledge_out(await service.change_pledge(current_member(request), pledge_id, variant_id=data.variant,
                                                  quantity=data.quantity))


@delete("/pledges/{pledge_id:int}", status_code=200, guards=[requires_member], summary="Cancel before the deadline")
async def api_cancel(request: Request, pledge_id: int) -> PledgeOut:
    member = current_member(request)
    await service.cancel_pledge(member, pledge_id)
    return pledge_out(await service.get_pledge(member, pledge_id))


@get("/me/pledges", guards=[requires_member], summary="The member's pledges")
async def api_my_pledges(request: Request) -> list[PledgeOut]:
    return [pledge_out(r) for r in await service.my_pledges(current_member(request))]


@post("/staff/campaigns/{campaign_id:int}/close", status_code=200, guards=[requires_staff],
      summary="Staff: end the campaign now (settles as at the deadline)")
async def api_close(request: Request, campaign_id: int) -> CampaignOut:
    result = await service.close_campaign(campaign_id, actor_id=current_member(request).id, early=True)
    if result is None:
        raise service.Conflict(gettext("This campaign is not open."))
    return campaign_out(await service.get_campaign(campaign_id))


@post("/staff/campaigns/{campaign_id:int}/stretch-goals", guards=[requires_staff],
      summary="Staff: add a stretch goal (units, amount in major units, or backers); one already reached unlocks at once")
async def api_stretch_add(request: Request, campaign_id: int, data: StretchGoalIn) -> CampaignOut:
    await stretch.add_goal(current_member(request), campaign_id, stretch.GoalInput(
        metric=data.metric, threshold=_money(data.threshold), title=data.title, description=data.description))
    return campaign_out(await service.get_campaign(campaign_id))


@delete("/staff/campaigns/{campaign_id:int}/stretch-goals/{goal_id:int}", status_code=200, guards=[requires_staff],
        summary="Staff: remove a stretch goal not yet reached (a reached one stays: 409)")
async def api_stretch_remove(request: Request, campaign_id: int, goal_id: int) -> CampaignOut:
    await stretch.remove_goal(current_member(request), campaign_id, goal_id)
    return campaign_out(await service.get_campaign(campaign_id))


async def delivery_out(campaign_id: int) -> DeliveryOut:
    campaign = await service.get_campaign(campaign_id)
    posts = await delivery.timeline(campaign)
    return DeliveryOut(campaign_id=campaign_id, estimated_delivery=campaign["estimated_delivery"], posts=[
        DeliveryPostOut(id=p["id"], kind=p["kind"], heading=p["heading"], title=p["title"], body=p["body"],
                        old_date=p["old_date"], new_date=p["new_date"], wave=p["wave"], shipped=p["shipped"],
                        created_at=p["created_at"]) for p in posts])


@get("/campaigns/{campaign_id:int}/delivery", summary="A campaign's public delivery timeline (newest first)")
async def api_delivery(campaign_id: int) -> DeliveryOut:
    return await delivery_out(campaign_id)


@post("/staff/campaigns/{campaign_id:int}/delivery/milestones", guards=[requires_staff],
      summary="Staff: post a production milestone on the delivery timeline (backers are emailed)")
async def api_milestone(request: Request, campaign_id: int, data: MilestoneIn) -> DeliveryOut:
    await delivery.post_milestone(current_member(request), campaign_id, delivery.MilestoneInput(data.title, data.body))
    return await delivery_out(campaign_id)


@post("/staff/campaigns/{campaign_id:int}/delivery/date", guards=[requires_staff],
      summary="Staff: move the estimated delivery, with the reason backers are emailed (the old date stays on the timeline)")
async def api_delivery_date(request: Request, campaign_id: int, data: DeliveryDateIn) -> DeliveryOut:
    await delivery.change_date(current_member(request), campaign_id, delivery.DateChangeInput(data.new_date, data.reason))
    return await delivery_out(campaign_id)


ROUTES = [api_delivery, api_milestone, api_delivery_date, api_stretch_add, api_stretch_remove, api_greenlight, api_campaigns, api_campaign, api_pledge, api_confirm, api_change, api_cancel,
          api_my_pledges, api_close]
