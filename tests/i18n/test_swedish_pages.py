"""Every page in Swedish (issue 8): the GET walk of tests/attacks/test_get_is_safe.py, as a
visitor, a member and staff who chose Swedish, renders every HTML page without an error and in
Swedish."""

from __future__ import annotations

import re

from app.asgi import create_app
from tests.attacks.test_get_is_safe import _browser, build_world
from tests.factories import csrf_from

ENGLISH_FRAME = ("Skip to content", ">Submit an idea<", ">Log out<", "Browse ideas")


async def test_every_page_renders_in_swedish(client, stripe):
    world = await build_world()
    app = create_app(run_jobs=False, manage_database=False)
    problems = []
    pages = 0
    for who in (None, world.buyer, world.staff):
        async with _browser(app, who) as browser:
            home = await browser.get("/")
            chosen = await browser.post("/language", data={"lang": "sv", "_csrf_token": csrf_from(home.text)})
            assert chosen.status_code == 303
            for path in world.paths.values():
                if path.startswith("/api/"):
                    continue
                response = await browser.get(path)
                if response.status_code >= 500:
                    problems.append(f"{path}: {response.status_code}")
                    continue
                if "text/html" not in response.headers.get("content-type", "") or "<html" not in response.text:
                    continue
                pages += 1
                if not re.search(r'<html lang="sv"', response.text):
                    problems.append(f"{path}: not in Swedish")
                problems += [f"{path}: English {text!r}" for text in ENGLISH_FRAME if text in response.text]
    assert problems == []
    assert pages > 60
