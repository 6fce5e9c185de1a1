"""The staff page of the integrity audit. The audit reads every domain's tables, so it and its
page sit with the composition root (app/asgi.py), above the domains, not in the HTTP glue."""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Template

from app.audit import run_audit
from app.web.guards import requires_staff
from app.web.responses import render


@get("/staff/audit", guards=[requires_staff])
async def staff_audit(request: Request) -> Template:
    report = await run_audit(stripe=request.query_params.get("stripe") == "1")
    return render(request, "staff/audit.html", {"report": report, "groups": report.by_check()})


ROUTES = [staff_audit]
