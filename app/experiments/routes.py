"""Staff experiment pages: define, start, stop and ship; results with a 95% interval."""

from __future__ import annotations

from litestar import Request, Response, get, post

from app.errors import Conflict, FormError
from app.experiments import service
from app.experiments.service import ExperimentInput
from app.i18n import gettext
from app.web.guards import requires_staff
from app.web.responses import current_member, redirect, render


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _variant_rows(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": values.get(f"variant_name_{i}", ""), "weight": values.get(f"variant_weight_{i}", "")}
            for i in range(service.MAX_VARIANTS)]


async def _list_context(values: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> dict:
    if values is None:
        values = {"goal": "pledge"}
    return {"experiments": await service.list_experiments(), "values": values, "rows": _variant_rows(values),
            "errors": errors or {}, "goals": service.GOALS}


@get("/staff/experiments", guards=[requires_staff])
async def experiments_page(request: Request) -> Response:
    return render(request, "experiments/list.html", await _list_context())


@post("/staff/experiments", guards=[requires_staff])
async def experiment_create(request: Request) -> Response:
    form = await _form(request)
    data = ExperimentInput(
        key=form.get("key", ""), title=form.get("title", ""), description=form.get("description", ""),
        goal=form.get("goal", ""),
        variants=[(form.get(f"variant_name_{i}", ""), form.get(f"variant_weight_{i}", ""))
                  for i in range(service.MAX_VARIANTS)],
    )
    try:
        key = await service.create_experiment(current_member(request), data)
    except FormError as error:
        return render(request, "experiments/list.html", await _list_context(form, error.errors), status_code=400)
    return redirect(f"/staff/experiments/{key}",
                    flash=("success", gettext("Experiment saved as a draft. Check it, then start it to show the variants.")))


@get("/staff/experiments/{key:str}", guards=[requires_staff])
async def experiment_page(request: Request, key: str) -> Response:
    return render(request, "experiments/detail.html", {"results": await service.results(key), "errors": {}})


@post("/staff/experiments/{key:str}/start", guards=[requires_staff])
async def experiment_start(request: Request, key: str) -> Response:
    try:
        await service.start_experiment(current_member(request), key)
    except Conflict as error:
        return redirect(f"/staff/experiments/{key}", flash=("error", error.message))
    return redirect(f"/staff/experiments/{key}", flash=("success", gettext("Experiment started: visitors now see their variants.")))


@post("/staff/experiments/{key:str}/stop", guards=[requires_staff])
async def experiment_stop(request: Request, key: str) -> Response:
    form = await _form(request)
    winner = form.get("winner", "")
    try:
        await service.stop_experiment(current_member(request), key, winner)
    except FormError as error:
        return render(request, "experiments/detail.html", {"results": await service.results(key), "errors": error.errors},
                      status_code=400)
    except Conflict as error:
        return redirect(f"/staff/experiments/{key}", flash=("error", error.message))
    return redirect(f"/staff/experiments/{key}", flash=("success", gettext("Experiment stopped. Everyone now sees “%(winner)s”.", winner=winner)))


@post("/staff/experiments/{key:str}/delete", guards=[requires_staff])
async def experiment_delete(request: Request, key: str) -> Response:
    try:
        await service.delete_experiment(current_member(request), key)
    except Conflict as error:
        return redirect(f"/staff/experiments/{key}", flash=("error", error.message))
    return redirect("/staff/experiments", flash=("info", gettext("Experiment %(key)s deleted; the site shows its default again.", key=key)))


ROUTES: list = [experiments_page, experiment_create, experiment_page, experiment_start, experiment_stop,
                experiment_delete]
