"""Every operation of the OpenAPI document, fuzzed with schemathesis (issue 7).

schemathesis reads the document the app serves at /schema/openapi.json (the JSON API; pages
and forms are not in it) and generates requests for each operation from it: valid and invalid
bodies, query strings, headers and path parameters. The requests go through the same in-process
client as the other tests (httpx's ASGI transport on the test's own event loop, where the
database pool lives), authenticated with a member's API token (a staff member's for /staff/
operations), and path parameters are often swapped for ids that exist and belong to that
member, so the handlers behind the guards run too. Each answer must:

- not be a server error (5xx),
- have a status code the document lists for the operation,
- have the documented content type and match the documented response schema.

Deterministic (derandomize) and small by default; `make fuzz` runs the same test with
FUZZ_MAX_EXAMPLES raised.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.accounts import service as accounts
from app.asgi import create_app
from app.db import raw
from app.shop import collections
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.conftest import clean_database
from tests.factories import make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

SCHEMA = schemathesis.openapi.from_dict(create_app(run_jobs=False, manage_database=False).openapi_schema.to_schema())
OPERATIONS = sorted(f"{op.method.upper()} {op.path}" for op in (r.ok() for r in SCHEMA.get_all_operations()))


@pytest.fixture
async def clean_tables():
    """Replaces the suite's per-test emptying of every table: the world below is built once for
    the module (building it per operation would cost more than the fuzzing itself)."""
    yield


@pytest.fixture(scope="module")
async def world(database, localstripe):
    """A member and a staff member with API tokens, and things that exist: the member's draft,
    an idea in voting, a live campaign the member backed, a product, the member's paid order,
    a published collection."""
    await clean_database()
    async with httpx.AsyncClient() as http:
        await http.delete(f"{localstripe}/_config/data")
    member = await make_member("Fuzz Member")
    staff = await make_member("Fuzz Staff", staff=True)
    draft = await make_idea(member, title="Fuzzed draft", status="draft")
    voting = await make_idea(await make_member("Fuzz Author"), title="Fuzzed voting idea", staff=staff)
    campaign_id, campaign = await make_campaign(goal=5, staff=staff)
    pledge_id = await pledge_with_card(member, campaign_id, campaign["variants"][0]["id"])
    product = await make_product("Fuzz tote")
    order_id = await make_order(member, [product], status="paid")
    number = (await raw("SELECT number FROM shop_order WHERE id = {}", order_id))[0]["number"]
    await collections.create_collection(staff, collections.CollectionInput(
        title="Fuzz picks", slug="fuzz-picks", body="Picked for the fuzzer.", published=True, featured=False))
    values = {"idea_id": [draft, voting, campaign["idea"]], "campaign_id": [campaign_id], "pledge_id": [pledge_id],
              "product_id": [product["id"]], "number": [number], "slug": ["fuzz-picks"]}
    yield {"member": {"Authorization": f"Bearer {await accounts.create_api_token(member.id, 'fuzz')}"},
           "staff": {"Authorization": f"Bearer {await accounts.create_api_token(staff.id, 'fuzz')}"},
           "values": values}
    await clean_database()


@pytest.fixture(scope="module")
async def api(world):
    """The app in-process on the test's event loop, as tests/conftest.py's `client`, for the module."""
    transport = httpx.ASGITransport(app=create_app(run_jobs=False, manage_database=False), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        yield client


def _httpx_kwargs(kwargs: dict) -> dict:
    """schemathesis serializes a case for `requests`; the same request for httpx."""
    out = {"headers": kwargs.get("headers") or {}, "params": kwargs.get("params") or None}
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    if "files" in kwargs:
        out["files"] = kwargs["files"]
        if isinstance(kwargs.get("data"), dict):
            out["data"] = kwargs["data"]
    elif isinstance(kwargs.get("data"), (bytes, str)):
        out["content"] = kwargs["data"]
    elif isinstance(kwargs.get("data"), dict):
        out["data"] = kwargs["data"]
    return out


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_operation_answers_as_documented(operation, data, api, world):
    method, path = operation.split(" ", 1)
    api_operation = SCHEMA[path][method]
    # Valid requests and, as often, requests the document says are invalid (wrong types, missing
    # fields, out-of-range values): both must get a documented answer, never a 5xx.
    case = data.draw(st.one_of(api_operation.as_strategy(GenerationMode.POSITIVE),
                               api_operation.as_strategy(GenerationMode.NEGATIVE)), label="case")
    for name in list(case.path_parameters or {}):
        known = world["values"].get(name)
        if known and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
    auth = world["staff"] if path.startswith("/api/v1/staff/") else world["member"]
    kwargs = case.as_transport_kwargs(base_url=str(api.base_url), headers=auth)
    response = await api.request(kwargs["method"], kwargs["url"], **_httpx_kwargs(kwargs))
    case.validate_response(response, checks=CHECKS)




HOSTILE_INTS = st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**70), 10**30])
HOSTILE_TEXT = st.sampled_from(["\x00", "a\x00b", "\x01\x02", "x\x1b[2J", "\x7f", "\x0b\x0c"])
NESTED_BODY = b"[" * 3000 + b"]" * 3000


def _poison(value, data, label: str):  # noqa: ANN001, ANN202 (JSON-shaped values)
    """The same value with its strings carrying control characters and its integers out of range."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return data.draw(HOSTILE_INTS, label=label)
    if isinstance(value, str):
        return value + data.draw(HOSTILE_TEXT, label=label)
    if isinstance(value, dict):
        return {k: _poison(v, data, f"{label}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_poison(v, data, f"{label}.{i}") for i, v in enumerate(value)]
    return value


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=max(4, MAX_EXAMPLES // 3), deadline=None, derandomize=True, database=None, print_blob=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_hostile_values_on_every_operation(operation, data, api, world):
    """Issue 18: every operation, sent a valid request whose body is nested thousands of levels
    deep, or whose strings carry NUL and other control characters, or whose integers do not fit
    the database's integer column (in the body, the query and the path): never a 5xx, and a
    refusal is a documented 4xx."""
    method, path = operation.split(" ", 1)
    api_operation = SCHEMA[path][method]
    case = data.draw(api_operation.as_strategy(GenerationMode.POSITIVE), label="case")
    for name in list(case.path_parameters or {}):
        known = world["values"].get(name)
        if known and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
    kind = data.draw(st.sampled_from(["nested", "poisoned"]), label="kind")
    auth = world["staff"] if path.startswith("/api/v1/staff/") else world["member"]
    if kind == "poisoned":
        if case.query:
            case.query = _poison(dict(case.query), data, "query")
        if case.path_parameters and data.draw(st.booleans(), label="poison path"):
            poisoned = _poison(dict(case.path_parameters), data, "path")  # percent-encoded, as a client would
            case.path_parameters = {k: quote(v, safe="") if isinstance(v, str) else v for k, v in poisoned.items()}
        if isinstance(case.body, (dict, list)):
            case.body = _poison(case.body, data, "body")
    kwargs = case.as_transport_kwargs(base_url=str(api.base_url), headers=auth)
    request = _httpx_kwargs(kwargs)
    if kind == "nested" and method.upper() in ("POST", "PUT", "PATCH") and "files" not in request:
        request.pop("json", None)
        request.pop("data", None)
        request["content"] = NESTED_BODY
        request["headers"] = {**request["headers"], "content-type": "application/json"}
    response = await api.request(kwargs["method"], kwargs["url"], **request)
    assert response.status_code < 500, (operation, response.status_code, response.text[:300])
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance])


async def test_the_document_served_is_the_one_fuzzed_and_lists_the_errors(api):
    served = (await api.get("/schema/openapi.json")).json()
    assert served["paths"] == SCHEMA.raw_schema["paths"]
    assert sorted({path.split("/")[1:3] == ["api", "v1"] for path in served["paths"]}) == [True]
    vote = served["paths"]["/api/v1/ideas/{idea_id}/vote"]["put"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "503"} <= set(vote)
    assert vote["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
