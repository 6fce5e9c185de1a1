"""A spoofed X-Forwarded-For cannot spread login guesses over made-up addresses (issue 7):
without a trusted proxy the header is ignored; behind one, only the address the proxy saw counts."""

from __future__ import annotations

from app.settings import get_settings
from tests.factories import csrf_from, make_member


async def _guess(client, email: str, forwarded: str) -> int:
    token = csrf_from((await client.get("/login")).text)
    response = await client.post("/login", data={"email": email, "password": "wrong password 123",
                                                  "_csrf_token": token}, headers={"X-Forwarded-For": forwarded})
    return response.status_code


async def test_spoofed_forwarded_for_does_not_reset_the_address_limit(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_max_failures", 2)  # the address allows 4 times that
    limit = get_settings().login_max_failures * 4
    members = [await make_member(f"Target {n}") for n in range(limit // 2 + 2)]
    statuses = []
    for n in range(limit + 2):  # different accounts (so the per-account limit never trips) ...
        email = members[n % len(members)].email
        statuses.append(await _guess(client, email, f"203.0.113.{n}"))  # ... and a new "address" each time
    assert 429 not in statuses[:limit]  # wrong passwords, answered next to the field
    assert statuses[-1] == 429  # the real peer (127.0.0.1) ran out of guesses  # the real peer (127.0.0.1) ran out of guesses


async def test_behind_a_trusted_proxy_the_client_address_is_the_proxys_view(client, monkeypatch):
    settings = get_settings()
    monkeypatch.setattr(settings, "login_max_failures", 2)
    monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1")
    limit = settings.login_max_failures * 4
    members = [await make_member(f"Proxy target {n}") for n in range(limit // 2 + 2)]
    # An attacker prepends fake hops; the proxy appends the real one (198.51.100.7) last.
    statuses = [await _guess(client, members[n % len(members)].email, f"10.0.0.{n}, 198.51.100.7")
                for n in range(limit + 2)]
    assert statuses[-1] == 429
