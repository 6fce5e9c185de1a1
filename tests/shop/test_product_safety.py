"""Product safety (the EU's GPSR): a product carries its manufacturer, the person responsible in
the EU and its warnings; the product page shows them, and a product without them never goes in
the shop (refused with a message by each field, nothing written)."""

from __future__ import annotations

import pytest

from app.errors import Conflict, FormError
from app.shop import catalog
from app.shop.tables import Product
from tests.factories import csrf_from, login, make_member
from tests.shop.helpers import SAFETY

FORM = {"name": "Trail bottle", "price": "199", "ships_in_days": "2", "variant_name_0": "Steel", "variant_stock_0": "5"}


async def test_a_product_goes_in_the_shop_only_with_its_safety_information(client):
    staff = await make_member("Safety Staff", staff=True)
    await login(client, staff.email)
    page = await client.get("/staff/products/new")
    token = csrf_from(page.text)
    refused = await client.post("/staff/products", data={**FORM, "status": "active", "_csrf_token": token})
    assert refused.status_code == 400
    for text in ("Name the manufacturer", "Name the person responsible in the EU", "Write the safety warnings"):
        assert text in refused.text
    assert await Product.count() == 0  # nothing half-written

    draft = await client.post("/staff/products", data={**FORM, "status": "draft", "_csrf_token": token})
    assert draft.status_code == 303  # a draft may wait for its safety information
    product = await Product.select().first()
    put = await client.post(f"/staff/products/{product['id']}/status", data={"status": "active", "_csrf_token": token})
    flashed = await client.get(put.headers["location"])
    assert "Before it goes in the shop, fill in the product safety information" in flashed.text
    assert "manufacturer, responsible person in the EU, safety information" in flashed.text
    assert (await Product.select(Product.status).first())["status"] == "draft"

    variant = (await catalog.get_product_for_staff(staff, product["id"]))["variants"][0]
    saved = await client.post(f"/staff/products/{product['id']}/edit", data={
        **FORM, **SAFETY, "variant_id_0": str(variant["id"]), "_csrf_token": token})
    assert saved.status_code == 303
    put = await client.post(f"/staff/products/{product['id']}/status", data={"status": "active", "_csrf_token": token})
    assert "is now in the shop" in (await client.get(put.headers["location"])).text
    shown = await client.get(f"/shop/{product['slug']}")
    assert "Product safety" in shown.text and "Industrigatan 8" in shown.text and "Keep away from open flames" in shown.text

    # Once in the shop, the information cannot be taken away.
    cleared = await client.post(f"/staff/products/{product['id']}/edit", data={
        **FORM, **SAFETY, "safety_info": "", "variant_id_0": str(variant["id"]), "_csrf_token": token})
    assert cleared.status_code == 400 and "Write the safety warnings" in cleared.text
    assert (await Product.select(Product.safety_info).first())["safety_info"] == SAFETY["safety_info"]


async def test_the_service_refuses_the_same_way():
    staff = await make_member("Service Staff", staff=True)
    data = {"name": "Lamp", "price": "499", "status": "active", "variants": [{"name": "White", "stock": 2}]}
    with pytest.raises(FormError) as error:
        await catalog.create_product(staff, data)
    assert set(error.value.errors) == {"manufacturer", "eu_responsible", "safety_info"}
    made = await catalog.create_product(staff, {**data, "status": "draft"})
    with pytest.raises(Conflict):
        await catalog.set_status(staff, made["id"], "active")
    made = await catalog.create_product(staff, {**data, **SAFETY, "name": "Lamp two"})
    assert made["status"] == "active" and made["manufacturer"] == SAFETY["manufacturer"]
