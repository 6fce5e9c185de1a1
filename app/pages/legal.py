"""The shop's own pages: terms, privacy policy, accessibility statement and company details,
editable by staff, linked from the footer and from the checkout and pledge forms (the
withdrawal form is /withdraw, app/orders/withdrawal_routes.py).

Until staff write their own, each page shows a built-in text in the visitor's language
(templates/legal/<slug>.html, with the seller's details from the settings). A staff edit stores
the page's title and text (paragraphs, as typed) and who changed it when; clearing the text
brings the built-in one back.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.db import utcnow, write_transaction
from app.errors import FormError, NotFound
from app.i18n import N_, gettext
from app.pages.tables import SitePage
from app.web.guards import requires_staff
from app.web.responses import current_member, form_text, redirect, render

PAGES = {  # slug -> its title until staff give another
    "terms": N_("Terms of purchase"),
    "privacy": N_("Privacy policy"),
    "accessibility": N_("Accessibility statement"),
    "company": N_("Company details"),
}
MAX_TEXT = 50_000


async def page(slug: str) -> dict[str, Any]:
    if slug not in PAGES:
        raise NotFound(gettext("Page not found"))
    row = await SitePage.select(SitePage.title, SitePage.body, SitePage.updated_at, SitePage.updated_by.display_name).where(
        SitePage.slug == slug).first()
    if row and row["body"].strip():
        paragraphs = [p.strip() for p in row["body"].replace("\r\n", "\n").split("\n\n") if p.strip()]
        return {"slug": slug, "title": row["title"], "paragraphs": paragraphs, "custom": True,
                "updated_at": row["updated_at"], "updated_by": row["updated_by.display_name"], "body": row["body"]}
    return {"slug": slug, "title": gettext(PAGES[slug]), "paragraphs": [], "custom": False, "updated_at": None,
            "updated_by": None, "body": ""}


async def save(staff: Any, slug: str, title: str, body: str) -> None:
    if slug not in PAGES:
        raise NotFound(gettext("Page not found"))
    title = " ".join((title or "").split())
    body = (body or "").strip()
    errors = {}
    if not 2 <= len(title) <= 120:
        errors["title"] = gettext("Give the page a title of 2 to 120 characters.")
    if len(body) > MAX_TEXT:
        errors["body"] = gettext("Keep the text under %(num)s characters.", num=format(MAX_TEXT, ","))
    if errors:
        raise FormError(errors)
    async with write_transaction():
        existing = await SitePage.select(SitePage.id).where(SitePage.slug == slug).first()
        values = {SitePage.title: title, SitePage.body: body, SitePage.updated_at: utcnow(), SitePage.updated_by: staff.id}
        if existing:
            await SitePage.update(values).where(SitePage.id == existing["id"])
        else:
            await SitePage.insert(SitePage(slug=slug, title=title, body=body, updated_at=utcnow(), updated_by=staff.id))


# ---- routes -------------------------------------------------------------------------------------


@get("/terms", name="terms")
async def terms_page(request: Request) -> Response:
    return render(request, "legal/page.html", {"page": await page("terms")})


@get("/privacy")
async def privacy_page(request: Request) -> Response:
    return render(request, "legal/page.html", {"page": await page("privacy")})


@get("/accessibility")
async def accessibility_page(request: Request) -> Response:
    return render(request, "legal/page.html", {"page": await page("accessibility")})


@get("/company")
async def company_page(request: Request) -> Response:
    return render(request, "legal/page.html", {"page": await page("company")})


@get("/staff/pages", guards=[requires_staff])
async def staff_pages(request: Request) -> Response:
    return render(request, "legal/staff_list.html", {"pages": [await page(slug) for slug in PAGES]})


@get("/staff/pages/{slug:str}", guards=[requires_staff])
async def staff_page_form(request: Request, slug: str) -> Response:
    shown = await page(slug)
    return render(request, "legal/staff_form.html", {"page": shown, "values": {"title": shown["title"],
                                                                                "body": shown["body"]}, "errors": {}})


@post("/staff/pages/{slug:str}", guards=[requires_staff])
async def staff_page_save(request: Request, slug: str) -> Response:
    form = await form_text(request)
    try:
        await save(current_member(request), slug, form.get("title", ""), form.get("body", ""))
    except FormError as error:
        return render(request, "legal/staff_form.html", {"page": await page(slug), "values": form,
                                                         "errors": error.errors}, status_code=400)
    return redirect(f"/staff/pages/{slug}", flash=("success", gettext("Saved. The page shows your text now.")))


ROUTES = [terms_page, privacy_page, accessibility_page, company_page, staff_pages, staff_page_form, staff_page_save]
