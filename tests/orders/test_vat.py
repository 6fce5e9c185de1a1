"""VAT (moms): rates on products and campaigns, an order's VAT per rate recorded once when it is
paid (a pre-order when its charge is collected), the receipt, the staff's period report, and the
audit (app/orders/vat.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit import run_audit
from app.campaigns import service as campaigns
from app.campaigns import settlement
from app.campaigns.service import GreenlightTerms, validate_terms
from app.campaigns.tables import Campaign
from app.db import utcnow
from app.errors import FormError
from app.jobs import service as jobs
from app.mail.tables import EmailMessage
from app.orders import fulfilment, vat, withdrawal
from app.orders.tables import Order, OrderLine, OrderVat
from app.points import service as points
from app.shop import catalog, checkout
from app.shop.checkout import CheckoutInput
from app.shop.tables import Product
from tests.campaigns.helpers import make_campaign, pledge_with_card, save_card
from tests.factories import csrf_from, login, make_member
from tests.orders.helpers import make_preorders
from tests.shop.helpers import SAFETY, make_product

ADDRESS = {"name": "Vera Moms", "line1": "Storgatan 1", "line2": "", "postal_code": "111 22", "city": "Stockholm",
           "country": "SE", "phone": "+46 70 123 45 67"}
lines = st.lists(st.fixed_dictionaries({"vat_rate": st.sampled_from([25, 12, 6]),
                                        "total": st.integers(min_value=0, max_value=5_000_000)}), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(lines=lines, shipping=st.integers(min_value=0, max_value=20_000), discount_share=st.floats(0, 1))
def test_the_rates_add_up_to_what_was_charged(lines, shipping, discount_share):
    subtotal = sum(line["total"] for line in lines)
    discount = int(subtotal * discount_share)
    rows = vat.breakdown(lines, shipping=shipping, discount=discount)
    assert sum(r.gross for r in rows) == subtotal + shipping - discount
    assert {r.rate for r in rows} == {line["vat_rate"] for line in lines}
    for row in rows:
        assert row.gross >= 0 and row.vat == vat.vat_in(row.gross, row.rate) and row.net + row.vat == row.gross
        # VAT is the rate's share of the gross, to the öre: |gross × rate / (100 + rate) − vat| ≤ ½
        assert abs(row.gross * row.rate - row.vat * (100 + row.rate)) * 2 <= 100 + row.rate


def test_vat_inside_a_price_and_shares():
    assert vat.vat_in(12_500, 25) == 2_500 and vat.vat_in(11_200, 12) == 1_200 and vat.vat_in(10_600, 6) == 600
    assert vat.vat_in(100, 25) == 20 and vat.vat_in(1, 25) == 0 and vat.vat_in(3, 25) == 1  # 0.6 rounds up
    assert vat.share(100, {25: 1, 12: 1, 6: 1}) == {25: 34, 12: 33, 6: 33}
    assert vat.share(-4_900, {25: 30_000, 12: 10_000}) == {25: -3_675, 12: -1_225}


async def _buy(buyer, lines, **extra) -> str:
    placed = await checkout.place_order(buyer, CheckoutInput(lines=lines, address=dict(ADDRESS), shipping="standard",
                                                             **extra))
    if placed.status != "paid":
        await save_card(placed.setup_intent_client_secret)
        assert (await checkout.pay_order(buyer, placed.number)).status == "paid"
    return placed.number


async def test_an_order_at_two_rates_records_its_vat_once_and_the_receipt_shows_it(client, stripe):
    staff = await make_member("Vat Staff", staff=True)
    buyer = await make_member("Vera Moms")
    coat = await make_product("Rain coat", price=100_000, variants={"M": 5})
    honey = await make_product("Forest honey", price=20_000, variants={"Jar": 5})
    await Product.update({Product.vat_rate: 12}).where(Product.id == honey["id"])
    await points.award(buyer.id, "adjustment", key=f"vat-voucher:{buyer.id}", points=points.VOUCHER_POINTS)
    code = (await points.redeem_voucher(buyer.id))["code"]
    number = await _buy(buyer, [(coat["variants"]["M"], 1), (honey["variants"]["Jar"], 2)], voucher=code)
    order = await Order.select().where(Order.number == number).first()
    assert order["total"] == 100_000 + 40_000 + 4_900 - points.VOUCHER_AMOUNT
    line_rates = {r["title"]: r["vat_rate"] for r in await OrderLine.select().where(OrderLine.order == order["id"])}
    assert line_rates == {"Rain coat": 25, "Forest honey": 12}
    rows = {r["rate"]: r for r in await OrderVat.select().where(OrderVat.order == order["id"])}
    assert set(rows) == {25, 12} and sum(r["gross"] for r in rows.values()) == order["total"]
    # delivery and the voucher are shared 100 000 : 40 000 over the rates
    extra = 4_900 - points.VOUCHER_AMOUNT
    assert rows[12]["gross"] == 40_000 + vat.share(extra, {25: 100_000, 12: 40_000})[12]
    assert rows[25]["vat"] == vat.vat_in(rows[25]["gross"], 25) and rows[12]["vat"] == vat.vat_in(rows[12]["gross"], 12)
    # staff moving the order on never records it twice
    await fulfilment.set_status(staff, order["id"], "shipped", carrier="dhl", tracking_number="JD01")
    assert await OrderVat.count().where(OrderVat.order == order["id"]) == 2

    email = (await EmailMessage.select().where(EmailMessage.kind == "order_confirmation"))[0]["text_body"]
    assert f"/orders/{number}/receipt" in email
    assert "of which VAT 25 %" in email and "of which VAT 12 %" in email

    await login(client, buyer.email)
    page = await client.get(f"/orders/{number}")
    assert f'href="/orders/{number}/receipt"' in page.text
    receipt = await client.get(f"/orders/{number}/receipt")
    assert receipt.status_code == 200
    text = receipt.text
    assert "Crowdmade AB" in text and "559999-0000" in text and "SE559999000001" in text
    for row in rows.values():
        assert f"{row['vat'] / 100:.2f}".replace(".", ",") in text.replace("\xa0", " ")
    assert "12 %" in text and "25 %" in text and "Vera Moms" in text
    other = await make_member("Nosy")
    await login(client, other.email)
    assert (await client.get(f"/orders/{number}/receipt")).status_code == 404
    assert (await run_audit()).ok


async def test_a_preorders_vat_is_recorded_when_its_charge_is_collected(stripe):
    backer = await make_member("Book Backer")
    made = await make_preorders([backer], price="300")
    order = made["orders"][0]
    rows = await OrderVat.select().where(OrderVat.order == order["id"])
    assert [(r["rate"], r["gross"], r["vat"]) for r in rows] == [(25, 30_000, 6_000)]

    campaign_id, campaign = await make_campaign(goal=1, price="212")
    await Campaign.update({Campaign.vat_rate: 6}).where(Campaign.id == campaign_id)
    reader = await make_member("Reader")
    await pledge_with_card(reader, campaign_id, campaign["variants"][0]["id"])
    assert await OrderVat.count().where(OrderVat.order.campaign_id == campaign_id) == 0  # nothing before the charge
    assert await campaigns.close_campaign(campaign_id, early=True) == "funded"
    await settlement.settle_campaign(campaign_id)
    await jobs.drain()
    book = await Order.select().where(Order.campaign_id == campaign_id).first()
    line = await OrderLine.select(OrderLine.vat_rate).where(OrderLine.order == book["id"]).first()
    assert line["vat_rate"] == 6
    assert [(r["rate"], r["gross"], r["vat"]) for r in await OrderVat.select().where(OrderVat.order == book["id"])] == [
        (6, 21_200, 1_200)]


async def test_staff_choose_the_rate_and_a_wrong_one_is_refused_by_the_field(client):
    staff = await make_member("Rate Staff", staff=True)
    made = await catalog.create_product(staff, {"name": "Cook book", "price": "249", "vat_rate": "6", "status": "active", **SAFETY,
                                                "variants": [{"name": "Hardback", "stock": 3}]})
    assert made["vat_rate"] == 6
    await login(client, staff.email)
    page = await client.get(f"/staff/products/{made['id']}/edit")
    assert '<option value="6" selected>6 %</option>' in page.text
    bad = await client.post(f"/staff/products/{made['id']}/edit", data={
        "_csrf_token": csrf_from(page.text), "name": "Cook book", "price": "249", "vat_rate": "7", "ships_in_days": "2",
        "variant_id_0": str(made["variants"][0]["id"]), "variant_name_0": "Hardback", **SAFETY})
    assert bad.status_code == 400 and "Choose a VAT rate: 25 %, 12 %, 6 %." in bad.text
    assert (await Product.select(Product.vat_rate).where(Product.id == made["id"]).first())["vat_rate"] == 6
    api = await client.get(f"/api/v1/products/{made['id']}")
    assert api.status_code == 200 and api.json()["vat_rate"] == 6


async def test_the_vat_report_lists_sales_and_refunds_per_rate(client, stripe):
    staff = await make_member("Report Staff", staff=True)
    buyer = await make_member("Report Buyer")
    coat = await make_product("Wool coat", price=125_000, variants={"M": 5})
    number = await _buy(buyer, [(coat["variants"]["M"], 1)])
    order = await Order.select().where(Order.number == number).first()
    await fulfilment.refund_order(staff, order["id"], 25_000, minor_units=True, key="report")
    await login(client, staff.email)
    page = await client.get("/staff/reports/vat")
    assert page.status_code == 200 and "25 %" in page.text and "Download CSV (2 rows)" in page.text
    bad = await client.get("/staff/reports/vat?from=2026-13-01")
    assert bad.status_code == 400 and "Use a date like 2026-12-01." in bad.text
    download = await client.get("/staff/reports/vat.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    sale, refund, total = rows
    assert (sale["type"], sale["order"], sale["vat_rate"]) == ("sale", number, "25")
    assert (sale["gross_incl_vat"], sale["vat"]) == ("1299.00", "259.80")  # 1 250 + 49 delivery
    assert (refund["type"], refund["gross_incl_vat"], refund["vat"]) == ("refund", "-250.00", "-50.00")
    assert (total["type"], total["gross_incl_vat"], total["vat"]) == ("total", "1049.00", "209.80")


async def test_the_audit_names_an_order_whose_vat_does_not_add_up(stripe):
    buyer = await make_member("Audit Buyer")
    number = await _buy(buyer, [((await make_product("Cap", price=19_900, variants={"One": 3}))["variants"]["One"], 1)])
    order = await Order.select(Order.id).where(Order.number == number).first()
    assert (await run_audit()).ok
    await OrderVat.update({OrderVat.gross: OrderVat.gross - 100}).where(OrderVat.order == order["id"])
    broken = {(v.check, v.subject) for v in (await run_audit()).violations}
    assert ("vat", f"order {number}") in broken


async def test_a_campaign_carries_its_rate_and_a_wrong_one_is_refused():
    terms = GreenlightTerms(price="499", goal_units=10, estimated_delivery=(utcnow() + dt.timedelta(days=120)).date(),
                            vat_rate="12")
    assert validate_terms(terms, utcnow())["vat_rate"] == 12
    terms.vat_rate = "7"
    with pytest.raises(FormError) as error:
        validate_terms(terms, utcnow())
    assert error.value.errors["vat_rate"] == "Choose a VAT rate: 25 %, 12 %, 6 %."


async def test_a_withdrawals_refund_carries_the_vat_of_the_lines_withdrawn(client, stripe):
    staff = await make_member("Mixed Staff", staff=True)
    buyer = await make_member("Mixed Buyer")
    coat = await make_product("Shell coat", price=100_000, variants={"M": 5})
    book = await make_product("Trail guide", price=21_200, variants={"Paperback": 5})
    await Product.update({Product.vat_rate: 6}).where(Product.id == book["id"])
    number = await _buy(buyer, [(coat["variants"]["M"], 1), (book["variants"]["Paperback"], 1)])
    order = await Order.select(Order.id).where(Order.number == number).first()
    line = await OrderLine.select(OrderLine.id).where((OrderLine.order == order["id"]) & (OrderLine.vat_rate == 6)).first()
    await withdrawal.withdraw_from_order(number, [str(line["id"])], member=buyer)
    await login(client, staff.email)
    rows = list(csv.DictReader(io.StringIO((await client.get("/staff/reports/vat.csv")).text)))
    refund = [r for r in rows if r["type"] == "refund"]
    assert [(r["vat_rate"], r["gross_incl_vat"], r["vat"]) for r in refund] == [("6", "-212.00", "-12.00")]
