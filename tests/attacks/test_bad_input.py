"""Bad input never reaches a 500 (issue 18): deeply nested JSON, NUL and other control characters,
numbers out of range for the database's integer column, on every JSON API operation that takes a
body and in forms, query strings and paths. After each bad request nothing changed."""

from __future__ import annotations

import pytest

from app.accounts import service as accounts
from app.accounts.tables import Member
from app.asgi import create_app
from app.community.tables import Comment
from app.db import raw
from app.ideas.tables import Idea
from app.tables import ALL_TABLES
from tests.campaigns.helpers import make_campaign
from tests.factories import csrf_from, login, make_idea, make_member
from tests.support.audit import assert_audit_clean

NESTED = b"[" * 5000 + b"]" * 5000
NESTED_OBJECTS = b'{"a":' * 3000 + b"1" + b"}" * 3000
APP = create_app(run_jobs=False, manage_database=False)
BODY_OPERATIONS = sorted(
    (method, route.path)
    for route in APP.routes
    if route.path.startswith("/api/v1/")
    for handler in getattr(route, "route_handlers", [])
    for method in handler.http_methods & {"POST", "PUT", "PATCH"}
)


async def _row_counts() -> dict[str, int]:
    counts = {}
    for table in ALL_TABLES:
        name = table._meta.tablename
        counts[name] = (await raw(f'SELECT COUNT(*) AS n FROM "{name}"'))[0]["n"]  # noqa: S608 (our table names)
    return counts


def _concrete(path: str, value: str = "1") -> str:
    import re

    return re.sub(r"\{[^}]+\}", value, path)


async def _token(member) -> dict[str, str]:
    return {"Authorization": f"Bearer {await accounts.create_api_token(member.id, 'bad input')}"}


def test_every_body_operation_is_covered():
    assert len(BODY_OPERATIONS) >= 15
    assert ("POST", "/api/v1/auth/signup") in BODY_OPERATIONS
    assert ("POST", "/api/v1/ideas") in BODY_OPERATIONS


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECTS], ids=["arrays", "objects"])
async def test_deeply_nested_json_is_a_400_on_every_operation(client, body):
    member = await make_member("Nested Nora")
    headers = {**await _token(member), "content-type": "application/json"}
    before = await _row_counts()
    for method, path in BODY_OPERATIONS:
        response = await client.request(method, _concrete(path), content=body, headers=headers)
        assert response.status_code == 400, (method, path, response.status_code, response.text[:200])
        assert response.json()["detail"] == "The JSON body is nested too deeply (at most 32 levels).", (method, path)
        assert response.headers["x-content-type-options"] == "nosniff"
    assert await _row_counts() == before
    await assert_audit_clean()


async def test_a_modestly_nested_body_is_still_read(client):
    """Depth up to the limit is fine: a normal body with a list in it works as before."""
    member = await make_member("Normal Nils")
    response = await client.post("/api/v1/ideas", headers=await _token(member),
                                 json={"title": "A tent with a porch", "summary": "Room for muddy boots"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("text", ["Tent\x00", "Te\x01nt", "Tent\x1b[31m", "Tent\x7f"])
async def test_control_characters_in_json_are_refused_next_to_the_field(client, text):
    member = await make_member("Control Carl")
    headers = await _token(member)
    before = await _row_counts()
    response = await client.post("/api/v1/ideas", headers=headers, json={"title": text, "summary": "ok"})
    assert response.status_code == 400
    assert "control characters" in response.json()["extra"]["errors"]["title"]
    idea_id = await make_idea(member, status="voting")
    before = await _row_counts()
    comment = await client.post(f"/api/v1/ideas/{idea_id}/comments", headers=headers, json={"body": f"Nice {text}"})
    assert comment.status_code == 400 and "body" in comment.json()["extra"]["errors"]
    nested = await client.post("/api/v1/auth/signup", json={"email": "x@example.com", "password": "long enough pass 1",
                                                           "display_name": ["ok", {"deep": text}]})
    assert nested.status_code == 400 and "display_name.1.deep" in nested.json()["extra"]["errors"]
    assert await _row_counts() == before
    await assert_audit_clean()


async def test_newlines_and_tabs_are_kept(client):
    member = await make_member("Tab Tina")
    idea_id = await make_idea(member, status="voting")
    response = await client.post(f"/api/v1/ideas/{idea_id}/comments", headers=await _token(member),
                                 json={"body": "Line one\r\n\tLine two"})
    assert response.status_code == 201, response.text
    stored = await Comment.select(Comment.body).first()
    assert stored["body"].replace("\r\n", "\n") == "Line one\n\tLine two"


@pytest.mark.parametrize("number", [2**31, -(2**31) - 1, 2**63, 10**30])
async def test_numbers_out_of_range_are_a_400(client, stripe, number):
    member = await make_member("Big Number Bo")
    campaign_id, campaign = await make_campaign(goal=5)
    headers = await _token(member)
    before = await _row_counts()
    response = await client.post(f"/api/v1/campaigns/{campaign_id}/pledges", headers=headers,
                                 json={"variant_id": campaign["variants"][0]["id"], "quantity": number})
    assert response.status_code == 400, response.text
    assert "out of range" in response.json()["extra"]["errors"]["quantity"]
    reply = await client.post(f"/api/v1/ideas/{campaign['idea']}/comments", headers=headers,
                              json={"body": "hi", "parent": number})
    assert reply.status_code == 400 and "parent" in reply.json()["extra"]["errors"]
    assert await _row_counts() == before
    await assert_audit_clean()


async def test_nul_in_forms_is_removed_before_it_is_stored(client):
    """A form's text loses its control characters (on PostgreSQL a NUL would be a 500)."""
    member = await make_member("Form Fia")
    await login(client, member.email)
    page = await client.get("/account")
    response = await client.post("/account", data={
        "_csrf_token": csrf_from(page.text), "display_name": "Fia\x00 Form", "handle": member.handle,
        "bio": "Likes\x00 tents\x07\nand lakes", "location": "Umeå\x1f"})
    assert response.status_code in (200, 303), response.text[:300]
    row = await Member.select(Member.display_name, Member.bio, Member.location).where(Member.id == member.id).first()
    assert row == {"display_name": "Fia Form", "bio": "Likes tents\nand lakes", "location": "Umeå"}

    page = await client.get("/ideas/new")
    response = await client.post("/ideas", data={"_csrf_token": csrf_from(page.text), "title": "Nul\x00 tent",
                                                 "summary": "A tent\x00", "description": "", "category": ""},
                                 files={"images": ("", b"", "application/octet-stream")})
    assert response.status_code == 303, response.text[:300]
    assert [(i["title"], i["summary"]) for i in await Idea.select(Idea.title, Idea.summary)] == [("Nul tent", "A tent")]
    idea_id = await make_idea(member, status="voting")
    page = await client.get(f"/ideas/{idea_id}")
    response = await client.post(f"/ideas/{idea_id}/comments", data={"_csrf_token": csrf_from(page.text),
                                                                    "body": "Great\x00 idea"})
    assert response.status_code < 500
    assert [c["body"] for c in await Comment.select(Comment.body)] == ["Great idea"]
    await assert_audit_clean()


@pytest.mark.parametrize("path", ["/ideas?q=%00tent", "/search?q=tent%00", "/shop?q=%00&sort=%01",
                                  "/api/v1/ideas?q=%00", "/ideas?page=99999999999999999999",
                                  "/api/v1/ideas?page=99999999999999999999"])
async def test_control_characters_and_huge_numbers_in_query_strings(client, path):
    response = await client.get(path)
    assert response.status_code in (200, 400, 404), (path, response.status_code)
    if response.status_code == 400:
        assert response.text


@pytest.mark.parametrize("path", ["/collections/%00", "/members/a%00b", "/shop/tote%00", "/api/v1/collections/%00x"])
async def test_a_path_with_a_control_character_is_a_404(client, path):
    response = await client.get(path)
    assert response.status_code == 404, (path, response.status_code)
