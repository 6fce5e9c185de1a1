"""Hostile uploads (issue 7): a polyglot (a real image with a script appended) is re-encoded so
nothing of the script survives; a `../` file name cannot choose where the file goes; what is
served is an image with nosniff."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from app.ideas.tables import IdeaImage
from app.media.storage import KEY_RE, storage
from tests.factories import csrf_from, login, make_member

SCRIPT = b"<html><script>alert('polyglot')</script></html>"


def _polyglot() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue() + SCRIPT  # image readers stop at IEND; a browser sniffing HTML would not


async def test_polyglot_and_traversal_names_are_neutralised(client):
    member = await make_member("Uploader Mallory")
    await login(client, member.email)
    token = csrf_from((await client.get("/ideas/new")).text)
    data = {"title": "Glow-in-the-dark frisbee", "summary": "Night games", "description": "x" * 40,
            "category": "outdoor", "_csrf_token": token}
    response = await client.post("/ideas", data=data, files=[("images", ("../../../../tmp/owned.png", _polyglot(),
                                                                          "text/html"))])
    assert response.status_code in (200, 303), response.text[:300]
    image = await IdeaImage.select().first()
    assert image is not None
    for key in (image["key"], image["thumb_key"]):
        assert KEY_RE.match(key)  # our random name: the client's file name is not used at all
    assert not Path("/tmp/owned.png").exists()  # noqa: ASYNC240
    stored = storage().open(image["key"])
    assert SCRIPT not in stored and b"<script" not in stored
    assert Image.open(io.BytesIO(stored)).format == "JPEG"  # re-encoded, whatever was claimed
    served = await client.get(f"/media/{image['key']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    for bad in ("../secret_key", "..%2Fsecret_key", "%2e%2e/secret_key"):
        assert (await client.get(f"/media/{bad}")).status_code in (400, 404)
