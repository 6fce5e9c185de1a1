"""Catalog pages: /shop and the staff product editor; /api/v1/products. The product page and its
questions are composed in app/pages/product.py."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from app.errors import Conflict, FormError, NotFound
from app.i18n import gettext
from app.ideas.tables import IdeaImage
from app.shop import catalog
from app.shop.catalog import PAGE_SIZE, ProductInput, ProductQuery, VariantInput
from app.shop.catalog_schemas import (
    ProductImageOut,
    ProductList,
    ProductOut,
    ProductSummaryOut,
    ProductVariantOut,
)
from app.shop.wishlist import hearted_product_ids
from app.web.guards import requires_staff
from app.web.responses import current_member, form_text, is_htmx, redirect, render

UPLOAD_LIMIT = 60 * 1024 * 1024  # 10 images of 5 MB plus the form
RECENT_MAX_AGE = 90 * 86400
BLANK_VARIANT_ROWS = 3


# ---- optional pieces from the other shop areas ----------------------------------------------


async def _hearted(viewer, ids: list[int]) -> set[int]:  # noqa: ANN001
    """Hearted product ids (app/shop/wishlist.py)."""
    if viewer is None or not ids:
        return set()
    return set(await hearted_product_ids(viewer, ids))


# ---- the shop list -------------------------------------------------------------------------


def _page_number(value: str | None) -> int:
    try:
        return min(10_000, max(1, int(value or 1)))
    except ValueError:
        return 1


def _query_from(request: Request) -> ProductQuery:
    params = request.query_params
    page = _page_number(params.get("page"))
    return ProductQuery(
        q=(params.get("q") or "")[:200], category=params.get("category") or "",
        min_price=(params.get("min_price") or "")[:20], max_price=(params.get("max_price") or "")[:20],
        rating=(params.get("rating") or "0")[:2], in_stock=params.get("in_stock") == "1",
        sort=params.get("sort") or "", offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
    )


@get("/shop", name="shop")
async def shop_list(request: Request) -> Response:
    viewer = current_member(request)
    query = _query_from(request)
    errors = catalog.clean_query(query)  # a bad filter is dropped and explained next to its field
    chosen_sort = query.sort if query.sort in catalog.SORTS else ""  # "": best match when searching, else popular
    page = await catalog.list_products(query)
    params = {k: v for k, v in {
        "q": query.q, "category": query.category, "min_price": query.min_price, "max_price": query.max_price,
        "rating": str(query.rating) if query.rating else "", "in_stock": "1" if query.in_stock else "",
        "sort": chosen_sort,
    }.items() if v}
    return render(request, "shop/list.html", {
        "page": page, "errors": errors, "params": params, "categories": await catalog.categories_in_shop(),
        "sorts": catalog.SORTS, "sort_labels": {key: gettext(label) for key, label in catalog.SORTS.items()},
        "ratings": catalog.RATING_FILTERS,
        "hearts": await _hearted(viewer, [p["id"] for p in page.items]),
    }, fragment="shop/_catalog_results.html")


# ---- the product page -----------------------------------------------------------------------


# ---- staff: the catalog editor ----------------------------------------------------------------


async def _product_form(request: Request) -> tuple[ProductInput, dict[str, str], list[dict[str, str]]]:
    form = await request.form()
    uploads: list[tuple[str, bytes]] = []
    for item in form.getall("images") if "images" in form else []:
        if isinstance(item, UploadFile) and item.filename:
            uploads.append((item.filename, await item.read()))
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    remove = [int(v) for v in form.getall("remove_image") if isinstance(v, str) and v.isdecimal()] \
        if "remove_image" in form else []
    variants, rows = [], []
    for index in range(catalog.MAX_VARIANTS + BLANK_VARIANT_ROWS):
        keys = [f"variant_{name}_{index}" for name in ("id", "name", "sku", "price", "stock", "remove", "made")]
        if not any(key in text for key in keys):
            continue
        row = {name: text.get(f"variant_{name}_{index}", "") for name in ("id", "name", "sku", "price", "stock", "remove", "made")}
        rows.append(row)
        variant_id = int(row["id"]) if row["id"].isdecimal() and len(row["id"]) < 10 else None
        variants.append(VariantInput(name=row["name"], sku=row["sku"], price=row["price"], stock=row["stock"],
                                     id=variant_id, remove=row["remove"] == "1", made_to_order=row["made"] == "1"))
    data = ProductInput(
        name=text.get("name", ""), summary=text.get("summary", ""), description=text.get("description", ""),
        details=text.get("details", ""), category=text.get("category", ""), price=text.get("price", ""),
        ships_in_days=text.get("ships_in_days", ""), status=text.get("status", "draft"), variants=variants,
        vat_rate=text.get("vat_rate", ""), manufacturer=text.get("manufacturer", ""),
        eu_responsible=text.get("eu_responsible", ""), safety_info=text.get("safety_info", ""),
        uploads=uploads, remove_images=remove,
    )
    return data, text, rows


def _values_from(data: ProductInput) -> tuple[dict[str, str], list[dict[str, str]]]:
    values = {"name": data.name, "summary": data.summary, "description": data.description, "details": data.details,
              "category": data.category, "price": str(data.price or ""), "ships_in_days": str(data.ships_in_days),
              "status": data.status, "vat_rate": str(data.vat_rate or ""), "manufacturer": data.manufacturer,
              "eu_responsible": data.eu_responsible, "safety_info": data.safety_info}
    rows = [{"id": "", "name": v.name, "sku": v.sku, "price": str(v.price or ""), "stock": str(v.stock or 0), "remove": "",
             "made": "1" if v.made_to_order else ""} for v in data.variants]
    return values, rows


def _with_blank_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    blank = {"id": "", "name": "", "sku": "", "price": "", "stock": "", "remove": "", "made": ""}
    return rows + [dict(blank) for _ in range(BLANK_VARIANT_ROWS)]


async def _form_page(request: Request, *, values: dict, rows: list, errors: dict, product: dict | None = None,
                     campaign: dict | None = None, idea_images: list | None = None, status_code: int = 200) -> Response:
    return render(request, "staff/product_form.html", {
        "product": product, "campaign": campaign, "idea_images": idea_images or [], "values": values,
        "rows": _with_blank_rows(rows), "errors": errors, "categories": await catalog.categories_in_shop(),
        "statuses": list(catalog.ProductStatus), "status_label": catalog.status_label, "max_images": catalog.MAX_IMAGES,
    }, status_code=status_code)


async def _campaign_form_extras(campaign_id: int) -> tuple[dict, list]:
    _, campaign = await catalog.campaign_defaults(campaign_id)
    images = await IdeaImage.select().where(IdeaImage.idea == campaign["idea"]).order_by(IdeaImage.position)
    return campaign, images


@get("/staff/products", guards=[requires_staff])
async def staff_products(request: Request, status: str = "") -> Response:
    if status not in {s.value for s in catalog.ProductStatus}:
        status = ""
    return render(request, "staff/products.html", {
        "products": await catalog.staff_products(status), "status": status, "counts": await catalog.status_counts(),
        "statuses": list(catalog.ProductStatus), "status_label": catalog.status_label,
        "publishable": await catalog.publishable_campaigns(),
    })


@get("/staff/products/new", guards=[requires_staff])
async def staff_product_new(request: Request, campaign: int | None = None) -> Response:
    if campaign is None:
        values = {"status": "draft", "ships_in_days": "3"}
        rows = [{"id": "", "name": "One size", "sku": "", "price": "", "stock": "0", "remove": "", "made": ""}]
        return await _form_page(request, values=values, rows=rows, errors={})
    try:
        data, campaign_row = await catalog.campaign_defaults(campaign)
    except NotFound:
        return redirect("/staff/products", flash=("error", gettext("That campaign doesn't exist.")))
    if await catalog.Product.exists().where(catalog.Product.campaign == campaign):
        return redirect("/staff/products", flash=("error", gettext("This campaign is already in the shop.")))
    values, rows = _values_from(data)
    _, images = await _campaign_form_extras(campaign)
    errors = {}
    if campaign_row["status"] not in catalog.PUBLISHABLE_CAMPAIGNS:
        errors["form"] = gettext("Only funded campaigns can be published; this one is %(status)s.",
                                 status=campaign_row["status_label"].lower())
    return await _form_page(request, values=values, rows=rows, errors=errors, campaign=campaign_row, idea_images=images)


@post("/staff/products", guards=[requires_staff], request_max_body_size=UPLOAD_LIMIT)
async def staff_product_create(request: Request) -> Response:
    staff = current_member(request)
    data, text, rows = await _product_form(request)
    campaign_id = int(text["campaign"]) if text.get("campaign", "").isdecimal() and len(text["campaign"]) < 10 else None
    try:
        if campaign_id is not None:
            product = await catalog.publish_from_campaign(staff, campaign_id, stock={}, data=data)
        else:
            product = await catalog.create_product(staff, data)
    except FormError as error:
        campaign, images = await _campaign_form_extras(campaign_id) if campaign_id is not None else (None, [])
        return await _form_page(request, values=text, rows=rows, errors=error.errors, campaign=campaign,
                                idea_images=images, status_code=400)
    except Conflict as error:
        return redirect("/staff/products", flash=("error", error.message))
    if product["status"] == catalog.ProductStatus.ACTIVE:
        message = gettext("“%(name)s” is in the shop.", name=product["name"])
    else:
        message = gettext("“%(name)s” is saved as %(status)s.", name=product["name"],
                          status=product["status_label"].lower())
    return redirect(f"/staff/products/{product['id']}/edit", flash=("success", message))


def _edit_values(product: dict) -> tuple[dict[str, str], list[dict[str, str]]]:
    values = {"name": product["name"], "summary": product["summary"], "description": product["description"],
              "details": product["details"], "category": product["category.slug"] or "",
              "price": catalog.major_units(product["price"]), "ships_in_days": str(product["ships_in_days"]),
              "vat_rate": str(product["vat_rate"]), "manufacturer": product["manufacturer"],
              "eu_responsible": product["eu_responsible"], "safety_info": product["safety_info"]}
    rows = [{"id": str(v["id"]), "name": v["name"], "sku": v["sku"], "price": catalog.major_units(v["price"]),
             "stock": str(v["stock"]), "remove": "", "made": "1" if v["made_to_order"] else ""}
            for v in product["variants"]]
    return values, rows


@get("/staff/products/{product_id:int}/edit", guards=[requires_staff])
async def staff_product_edit(request: Request, product_id: int) -> Response:
    product = await catalog.get_product_for_staff(current_member(request), product_id)
    values, rows = _edit_values(product)
    return await _form_page(request, values=values, rows=rows, errors={}, product=product)


@post("/staff/products/{product_id:int}/edit", guards=[requires_staff], request_max_body_size=UPLOAD_LIMIT)
async def staff_product_update(request: Request, product_id: int) -> Response:
    staff = current_member(request)
    data, text, rows = await _product_form(request)
    try:
        product = await catalog.update_product(staff, product_id, data)
    except FormError as error:
        product = await catalog.get_product_for_staff(staff, product_id)
        stock = {str(v["id"]): str(v["stock"]) for v in product["variants"]}
        for row in rows:  # existing rows show today's stock, whatever was posted
            if row["id"] in stock:
                row["stock"] = stock[row["id"]]
        return await _form_page(request, values=text, rows=rows, errors=error.errors, product=product, status_code=400)
    return redirect(f"/staff/products/{product_id}/edit",
                    flash=("success", gettext("“%(name)s” is saved.", name=product["name"])))


@post("/staff/products/{product_id:int}/status", guards=[requires_staff])
async def staff_product_status(request: Request, product_id: int) -> Response:
    form = await form_text(request)
    try:
        product = await catalog.set_status(current_member(request), product_id, form.get("status", ""))
    except (FormError, Conflict) as error:
        message = " ".join(error.errors.values()) if isinstance(error, FormError) else error.message
        return redirect(f"/staff/products/{product_id}/edit", flash=("error", message))
    back = form.get("next") if form.get("next", "").startswith("/staff/products") else f"/staff/products/{product_id}/edit"
    return redirect(back, flash=("success", gettext("“%(name)s” is now %(status)s.", name=product["name"],
                                                    status=product["status_label"].lower())))


@post("/staff/products/{product_id:int}/variants/{variant_id:int}/stock", guards=[requires_staff])
async def staff_variant_stock(request: Request, product_id: int, variant_id: int) -> Response:
    staff = current_member(request)
    form = await form_text(request)
    error_message, notice = "", ""
    try:
        variant = await catalog.set_stock(staff, variant_id, form.get("stock", ""), expected=form.get("expected"),
                                          product_id=product_id)
        notice = gettext("%(name)s: %(num)s in stock.", name=variant["name"], num=variant["stock"])
    except FormError as error:
        error_message = error.errors.get("stock", "")
    except Conflict as error:
        error_message = error.message
    if is_htmx(request):
        product = await catalog.get_product_for_staff(staff, product_id)
        return render(request, "staff/_product_stock.html", {"product": product, "stock_error": error_message,
                                                             "stock_error_variant": variant_id, "stock_notice": notice})
    if error_message:
        return redirect(f"/staff/products/{product_id}/edit#stock", flash=("error", error_message))
    return redirect(f"/staff/products/{product_id}/edit#stock", flash=("success", notice))


# ---- JSON API ---------------------------------------------------------------------------------


def _media(key: str | None) -> str | None:
    return f"/media/{key}" if key else None


def summary_out(row: dict) -> ProductSummaryOut:
    return ProductSummaryOut(
        id=row["id"], slug=row["slug"], name=row["name"], summary=row["summary"], price=row["price"],
        min_price=row["min_price"], max_price=row["max_price"], currency=row["currency"],
        rating_avg=row["rating_avg"], rating_count=row["rating_count"], stock=row["stock"], sold_out=row["sold_out"],
        category=row["category.slug"], thumb_url=_media(row["thumb_key"]), url=row["url"],
    )


def product_out(row: dict) -> ProductOut:
    return ProductOut(
        id=row["id"], slug=row["slug"], name=row["name"], summary=row["summary"], description=row["description"],
        details=row["details"], status=row["status"], price=row["price"], min_price=row["min_price"],
        max_price=row["max_price"], currency=row["currency"], category=row["category.slug"],
        ships_in_days=row["ships_in_days"], rating_avg=row["rating_avg"], rating_count=row["rating_count"],
        sold_count=row["sold_count"], stock=row["stock"], sold_out=row["sold_out"], published_at=row["published_at"],
        variants=[ProductVariantOut(id=v["id"], name=v["name"], sku=v["sku"], price=v["effective_price"],
                                    stock=v["stock"], sold_out=v["sold_out"]) for v in row["variants"]],
        images=[ProductImageOut(url=f"/media/{i['key']}", thumb_url=f"/media/{i['thumb_key']}", width=i["width"],
                                height=i["height"], alt=i["alt"] or row["name"]) for i in row["images"]],
        idea_url=row["idea_url"], url=row["url"], vat_rate=row["vat_rate"],
    )


@get("/products", summary="The catalog: search, filters and sorts, cursor-paginated")
async def api_products(
    q: str = "",
    category: str = "",
    sort: str = Parameter(default="", description="popular, newest, price_asc, price_desc, rating (relevance with q)"),
    min_price: str = Parameter(default="", description="major units, e.g. 200"),
    max_price: str = Parameter(default="", description="major units, e.g. 500"),
    rating: int = Parameter(default=0, description="4: four stars and up, 3: three and up"),
    in_stock: bool = False,
    cursor: str | None = None,
    limit: int = Parameter(default=24, ge=1, le=100),
) -> ProductList:
    offset = catalog.decode_cursor(cursor) if cursor else 0
    page = await catalog.list_products(ProductQuery(
        q=q[:200], category=category, sort=sort, min_price=min_price[:20], max_price=max_price[:20], rating=rating,
        in_stock=in_stock, offset=offset, limit=limit))
    return ProductList(
        items=[summary_out(r) for r in page.items], total=page.total,
        next_cursor=catalog.encode_cursor(page.next_offset) if page.next_offset is not None else None,
    )


@get("/products/{product_id:int}", summary="A product: variants with stock, images, rating")
async def api_product(request: Request, product_id: int) -> ProductOut:
    return product_out(await catalog.get_product_by_id(product_id, current_member(request)))


ROUTES = [shop_list, staff_products, staff_product_new,
          staff_product_create, staff_product_edit, staff_product_update, staff_product_status, staff_variant_stock]
API_ROUTES = [api_products, api_product]
