"""The staff dashboard, campaign funnels and creator analytics pages."""

from __future__ import annotations

from litestar import Request, Response, get

from app.i18n import gettext
from app.insight import charts, service
from app.insight.service import Series
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, render


def _chart(series: Series, *, chart_id: str, line: bool = False):  # noqa: ANN202 (Markup)
    if line:
        return charts.line_chart(series.labels, [(series.title, series.values)], title=series.title,
                                 currency=series.currency, chart_id=chart_id)
    return charts.bar_chart(series.labels, series.values, title=series.title, currency=series.currency,
                            chart_id=chart_id)


@get("/staff/dashboard", guards=[requires_staff])
async def staff_dashboard(request: Request) -> Response:
    days = service.period_days(request.query_params.get("days"))
    data = await service.staff_dashboard(days)
    series = data["series"]
    data["charts"] = [
        (s, _chart(s, chart_id=f"chart-{s.key}", line=s.key == "revenue"))
        for s in (series["revenue"], series["orders"], series["pledges"], series["votes"],
                  series["members"], series["verified"])
    ]
    return render(request, "insight/dashboard.html", {**data, "periods": service.PERIODS})


@get("/staff/campaigns/{campaign_id:int}/funnel", guards=[requires_staff])
async def campaign_funnel(request: Request, campaign_id: int) -> Response:
    days = service.period_days(request.query_params.get("days"))
    funnel = await service.campaign_funnel(campaign_id)
    series = await service.idea_series(funnel["campaign"]["idea"], days)
    chart = charts.line_chart(series[0].labels, [(s.title, s.values) for s in series],
                              title=gettext("Views, votes and pledges per day"), chart_id="chart-campaign", wide=True)
    return render(request, "insight/funnel.html", {"funnel": funnel, "chart": chart, "days": days,
                                                   "periods": service.PERIODS})


@get("/ideas/{idea_id:int}/analytics", guards=[requires_member])
async def idea_analytics(request: Request, idea_id: int) -> Response:
    days = service.period_days(request.query_params.get("days"))
    data = await service.idea_analytics(current_member(request), idea_id, days)
    series = data["series"]
    data["chart"] = charts.line_chart(series["views"].labels, [(s.title, s.values) for s in series.values()],
                                      title=gettext("Views, votes and pledges per day"), chart_id="chart-idea", wide=True)
    return render(request, "insight/idea.html", {**data, "periods": service.PERIODS})


ROUTES: list = [staff_dashboard, campaign_funnel, idea_analytics]
