"""Route guards: who may call what, and that checking it stays on the event loop."""

from __future__ import annotations

import inspect

from app.asgi import create_app
from tests.factories import login, make_member


def test_every_guard_is_a_coroutine():
    """Litestar runs a plain-function guard in a worker thread (sync_to_thread) on every request
    it guards; that hop cost ~12% of a web worker's CPU in the vote bench."""
    app = create_app(run_jobs=False, manage_database=False)
    guarded = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for guard in handler.guards or []:
                guarded += 1
                assert inspect.iscoroutinefunction(guard), (route.path, guard)
    assert guarded > 100  # the member, staff and mailbox guards were all seen


async def test_guards_still_refuse_and_admit(client):
    """Visitors are sent to log in, members reach member pages but not staff pages."""
    for path in ("/orders", "/staff/orders"):
        response = await client.get(path)
        assert response.status_code in (302, 303), path
        assert "/login" in response.headers["location"], path
    assert (await client.put("/api/v1/ideas/1/vote")).status_code == 401
    member = await make_member("Guarded Member")
    await login(client, member.email)
    assert (await client.get("/orders")).status_code == 200
    staff_page = await client.get("/staff/orders")
    assert staff_page.status_code == 403
    assert "Staff only." in staff_page.text
