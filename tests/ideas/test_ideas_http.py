"""Ideas over HTTP: drafts and access, uploads, review, voting pages and fragments, lists, API."""

from __future__ import annotations

import io

from PIL import Image

from app.ideas.tables import Idea, IdeaImage, Vote
from app.mail.tables import EmailMessage
from tests.factories import csrf_from, login, make_idea, make_member


def png_bytes(size=(64, 48), color=(200, 80, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (80, 60), (10, 120, 200))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (59.0, 19.0, 48.0)}  # GPSInfo
    exif[0x010F] = "SpyCam"  # Make
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


async def _form_token(client, path="/ideas/new"):
    return csrf_from((await client.get(path)).text)


async def test_create_draft_with_image_strips_exif_and_submit(client):
    member = await make_member("Drafty Dan")
    await login(client, member.email)
    token = await _form_token(client)
    data = jpeg_with_gps()
    assert b"SpyCam" in data
    response = await client.post(
        "/ideas",
        data={"title": "Packable rain poncho", "summary": "A poncho that packs into its own pocket",
              "description": "Ripstop nylon, a hood that stays put and a pocket it packs into.", "category": "outdoor",
              "action": "submit", "_csrf_token": token},
        files=[("images", ("poncho.jpg", data, "image/jpeg"))],
    )
    assert response.status_code == 303
    idea = await Idea.select().first()
    assert idea["status"] == "submitted"
    image = await IdeaImage.select().where(IdeaImage.idea == idea["id"]).first()
    served = await client.get(f"/media/{image['key']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert b"SpyCam" not in served.content
    assert not Image.open(io.BytesIO(served.content)).getexif().get(0x8825)
    assert (await client.get(f"/media/{image['thumb_key']}")).status_code == 200
    page = await client.get(f"/ideas/{idea['id']}")
    assert "Your idea is in review" in page.text


async def test_bad_uploads_are_refused_with_a_clear_message_and_nothing_written(client):
    member = await make_member("Uploader Uma")
    await login(client, member.email)
    token = await _form_token(client)
    base = {"title": "Reflective dog leash", "summary": "Night walks", "description": "x" * 40, "category": "outdoor",
            "_csrf_token": token}
    cases = [
        (("notes.png", b"this is plain text pretending to be a png", "image/png"), "not an image we can read"),
        (("big.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024 + 10), "image/png"), "images can be at most 5 MB"),
        (("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
         "not an image we can read"),
    ]
    for upload, message in cases:
        response = await client.post("/ideas", data=base, files=[("images", upload)])
        assert response.status_code == 400, upload[0]
        assert message in response.text, (upload[0], response.text[:300])
        assert 'class="field-error" id="f-images-error"' in response.text
        assert 'value="Reflective dog leash"' in response.text  # the rest of the form is kept
    assert await Idea.count() == 0
    assert await IdeaImage.count() == 0


async def test_too_many_images(client):
    member = await make_member("Many Pics")
    await login(client, member.email)
    token = await _form_token(client)
    files = [("images", (f"p{i}.png", png_bytes(), "image/png")) for i in range(6)]
    response = await client.post("/ideas", data={"title": "Six pictures", "_csrf_token": token}, files=files)
    assert response.status_code == 400 and "at most 5 images" in response.text
    assert await Idea.count() == 0


async def test_drafts_are_private_and_staff_routes_need_staff(client):
    author = await make_member("Secret Sue")
    other = await make_member("Nosy Ned")
    draft_id = await make_idea(author, title="My secret draft", status="draft")
    await login(client, other.email)
    assert (await client.get(f"/ideas/{draft_id}")).status_code == 404
    assert (await client.get(f"/ideas/{draft_id}/edit")).status_code == 404
    token = csrf_from((await client.get("/ideas")).text)
    edit = await client.post(f"/ideas/{draft_id}/edit", data={"title": "Hijacked", "_csrf_token": token})
    assert edit.status_code == 404
    submit = await client.post(f"/ideas/{draft_id}/submit", data={"_csrf_token": token})
    assert submit.status_code == 404
    assert (await Idea.select(Idea.title, Idea.status).where(Idea.id == draft_id).first()) == {
        "title": "My secret draft", "status": "draft"}
    listed = await client.get("/ideas?q=secret")
    assert "My secret draft" not in listed.text
    # staff pages
    assert (await client.get("/staff/review")).status_code == 403
    review = await client.post(f"/staff/ideas/{draft_id}/review", data={"action": "approve", "_csrf_token": token})
    assert review.status_code == 403
    # API
    api_token = (await client.post("/api/v1/auth/tokens", json={"email": other.email, "password": "correct horse battery"})).json()["token"]
    headers = {"Authorization": f"Bearer {api_token}"}
    assert (await client.get(f"/api/v1/ideas/{draft_id}", headers=headers)).status_code == 404
    assert (await client.patch(f"/api/v1/ideas/{draft_id}", json={"title": "x"}, headers=headers)).status_code == 404
    staff_api = await client.post(f"/api/v1/staff/ideas/{draft_id}/review", json={"action": "approve"}, headers=headers)
    assert staff_api.status_code == 403
    assert staff_api.json()["detail"]


async def test_script_title_is_shown_as_text(client):
    author = await make_member("Xss Xavier")
    idea_id = await make_idea(author, title="<script>alert(1)</script>")
    page = await client.get(f"/ideas/{idea_id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    listing = await client.get("/ideas")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text and "<script>alert(1)" not in listing.text


async def test_staff_review_flow_emails_author(client):
    author = await make_member("Author Alma")
    staff = await make_member("Staff Stina", staff=True)
    idea_id = await make_idea(author, title="Wool beanie with ear flaps", status="submitted")
    await login(client, staff.email)
    queue = await client.get("/staff/review")
    assert queue.status_code == 200 and "Wool beanie with ear flaps" in queue.text
    token = csrf_from(queue.text)
    no_reason = await client.post(f"/staff/ideas/{idea_id}/review", data={"action": "reject", "_csrf_token": token})
    assert no_reason.status_code == 303
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "submitted"
    changes = await client.post(f"/staff/ideas/{idea_id}/review",
                                data={"action": "request_changes", "message": "Please add a sketch of the flaps.",
                                      "_csrf_token": token})
    assert changes.status_code == 303
    email = await EmailMessage.select().where((EmailMessage.recipient == author.email) & (EmailMessage.kind == "idea_status")).first()
    assert "Changes requested" in email["subject"] and "Please add a sketch of the flaps." in email["text_body"]
    # The author sees the message on the idea page.
    await client.post("/logout", data={"_csrf_token": token})
    await login(client, author.email)
    page = await client.get(f"/ideas/{idea_id}")
    assert "Please add a sketch of the flaps." in page.text
    token = csrf_from(page.text)
    assert (await client.post(f"/ideas/{idea_id}/submit", data={"_csrf_token": token})).status_code == 303
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "submitted"


async def test_vote_button_fragment_vs_full_page(client):
    author = await make_member("Author Ari")
    voter = await make_member("Voter Vera")
    idea_id = await make_idea(author, title="Merino base layer")
    await login(client, voter.email)
    page = await client.get(f"/ideas/{idea_id}")
    assert "HX-Request" in page.headers["vary"]
    assert "<html" in page.text and "I want this" in page.text
    token = csrf_from(page.text)
    fragment = await client.post(f"/ideas/{idea_id}/vote", headers={"HX-Request": "true", "x-csrftoken": token})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'data-testid="vote-count">1<' in fragment.text and "You want this" in fragment.text
    # GET with htmx returns the same fragment, a boosted navigation the whole page.
    partial = await client.get(f"/ideas/{idea_id}", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and f'id="vote-{idea_id}"' in partial.text
    boosted = await client.get(f"/ideas/{idea_id}", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.text
    # Without JavaScript: a plain form post and a redirect back.
    plain = await client.post(f"/ideas/{idea_id}/unvote", data={"_csrf_token": token})
    assert plain.status_code == 303 and plain.headers["location"] == f"/ideas/{idea_id}"
    after = await client.get(f"/ideas/{idea_id}")
    assert 'data-testid="vote-count">0<' in after.text
    assert await Vote.count() == 0


async def test_list_fragment_filters_and_search(client):
    author = await make_member("Author Bo")
    await make_idea(author, title="Cotton candy machine", summary="Spin sugar at home", category="home")
    await make_idea(author, title="Cotton socks", summary="Organic cotton everyday socks", category="accessories")
    await make_idea(author, title="Trail running vest", summary="Light vest with bottles", category="outdoor")
    full = await client.get("/ideas")
    assert "<html" in full.text and "HX-Request" in full.headers["vary"]
    assert "3 ideas" in full.text
    fragment = await client.get("/ideas?category=outdoor", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert "Trail running vest" in fragment.text and "Cotton socks" not in fragment.text
    search = await client.get("/ideas?q=cotton+socks")
    assert search.text.index("Cotton socks") < search.text.find("Cotton candy machine") or "Cotton candy machine" not in search.text
    assert "Cotton socks" in search.text
    in_category = await client.get("/ideas?q=cotton&category=home")
    assert "Cotton candy machine" in in_category.text and "Cotton socks" not in in_category.text
    assert "1 idea" in in_category.text
    newest = await client.get("/ideas?q=cotton&sort=new")
    assert newest.text.index("Cotton socks") < newest.text.index("Cotton candy machine")  # the newer first
    assert "Trail running vest" not in newest.text and "2 ideas" in newest.text
    odd = await client.get('/ideas?q="unterminated AND (')  # never a 500 for odd input
    assert odd.status_code == 200


async def test_voting_rules(client):
    author = await make_member("Rule Author")
    unverified = await make_member("Unverified Una", verified=False)
    idea_id = await make_idea(author, title="Bike frame bag")
    await login(client, unverified.email)
    token = csrf_from((await client.get(f"/ideas/{idea_id}")).text)
    response = await client.post(f"/ideas/{idea_id}/vote", headers={"HX-Request": "true", "x-csrftoken": token})
    assert "Verify your email address to vote." in response.text
    await client.post("/logout", data={"_csrf_token": token})
    await login(client, author.email)
    token = csrf_from((await client.get(f"/ideas/{idea_id}")).text)
    own = await client.post(f"/ideas/{idea_id}/vote", data={"_csrf_token": token})
    assert own.status_code == 303
    assert await Vote.count() == 0


async def test_api_ideas_flow(client):
    author = await make_member("Api Author")
    staff = await make_member("Api Staff", staff=True)
    voter = await make_member("Api Voter")

    async def bearer(member):
        token = (await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": "correct horse battery"})).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    a, s, v = await bearer(author), await bearer(staff), await bearer(voter)
    created = await client.post("/api/v1/ideas", json={"title": "Insulated bottle", "category": "outdoor",
                                                      "status": "voting", "vote_count": 500}, headers=a)
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "draft" and body["vote_count"] == 0
    idea_id = body["id"]
    not_ready = await client.post(f"/api/v1/ideas/{idea_id}/submit", headers=a)
    assert not_ready.status_code == 400 and "summary" in not_ready.json()["extra"]["errors"]
    patched = await client.patch(f"/api/v1/ideas/{idea_id}", json={"summary": "Keeps drinks cold for 24 hours",
                                                                   "description": "Double wall steel, a leak-proof lid and a loop."}, headers=a)
    assert patched.status_code == 200 and patched.json()["summary"] == "Keeps drinks cold for 24 hours"
    assert (await client.post(f"/api/v1/ideas/{idea_id}/submit", headers=a)).json()["status"] == "submitted"
    bad = await client.post(f"/api/v1/staff/ideas/{idea_id}/review", json={"action": "explode"}, headers=s)
    assert bad.status_code == 400
    approved = await client.post(f"/api/v1/staff/ideas/{idea_id}/review", json={"action": "approve"}, headers=s)
    assert approved.status_code == 200 and approved.json()["status"] == "voting"
    for _ in range(2):
        voted = await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=v)
        assert voted.status_code == 200 and voted.json() == {"idea_id": idea_id, "voted": True, "vote_count": 1}
    own = await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=a)
    assert own.status_code == 403 and own.json()["detail"] == "You can't vote for your own idea."
    listed = await client.get("/api/v1/ideas?sort=top&limit=1")
    assert listed.status_code == 200 and listed.json()["items"][0]["id"] == idea_id
    for _ in range(2):
        withdrawn = await client.delete(f"/api/v1/ideas/{idea_id}/vote", headers=v)
        assert withdrawn.status_code == 200 and withdrawn.json()["vote_count"] == 0
    assert (await client.get("/api/v1/ideas?sort=sideways")).status_code == 400
    assert (await client.get("/api/v1/ideas?limit=1000")).status_code == 400
    points = await client.get("/api/v1/me/points", headers=v)
    assert [e["reason"] for e in points.json()["items"]] == ["vote_reversed", "vote"]
    assert points.json()["balance"] == 0


async def test_api_cursor_pagination(client):
    author = await make_member("Many Ideas")
    staff = await make_member("Pager Staff", staff=True)
    for n in range(5):
        await make_idea(author, title=f"Idea number {n}", staff=staff)
    seen = []
    url = "/api/v1/ideas?sort=new&limit=2"
    while url:
        page = (await client.get(url)).json()
        seen += [item["id"] for item in page["items"]]
        url = f"/api/v1/ideas?sort=new&limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert len(seen) == 5 and len(set(seen)) == 5
    assert (await client.get("/api/v1/ideas?cursor=!!!")).status_code == 400


async def test_openapi_document_and_error_pages(client):
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/ideas", "/api/v1/ideas/{idea_id}/vote", "/api/v1/auth/tokens", "/api/v1/me/points"):
        assert path in paths
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert (await client.get("/ideas/999999")).status_code == 404
    page = await client.get("/ideas/999999")
    assert "Page not found" in page.text and "<html" in page.text


async def test_a_request_over_the_body_limit_gets_a_clear_page(client):
    member = await make_member("Huge Upload")
    await login(client, member.email)
    token = await _form_token(client)
    blob = b"\x00" * (41 * 1024 * 1024)
    response = await client.post("/ideas", data={"title": "Too big", "_csrf_token": token},
                                 files=[("images", ("huge.png", blob, "image/png"))])
    assert response.status_code == 413
    assert "That upload is too large" in response.text
    assert await Idea.count() == 0


async def test_submitting_an_empty_form_shows_every_missing_field_at_once(client):
    member = await make_member("Hasty Harry")
    await login(client, member.email)
    token = await _form_token(client)
    response = await client.post("/ideas", data={"title": "", "action": "submit", "_csrf_token": token})
    assert response.status_code == 400
    for text in ("Give your idea a title", "Add a one-line summary", "Describe your idea", "Choose a category"):
        assert text in response.text
    assert await Idea.count() == 0
